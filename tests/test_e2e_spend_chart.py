"""/server-usage end to end with its chart: the real bot process against the fake Discord and Novita."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from bot.core.spend_chart import MAX_BYTES, SIZE_PX
from tests.fakes.fake_discord import Interaction, Message
from tests.support.harness import running_world

pytestmark = pytest.mark.e2e


def answer(inter: Interaction, timeout: float = 10) -> Message:
    inter.wait_response(timeout)
    return inter.wait_original(lambda m: not m.loading, timeout)


def test_server_usage_answers_with_the_spend_chart_attached(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        d = world.discord
        empty = answer(d.slash("server-usage", {"period": "week"}, user=d.moderator))
        assert "Nothing was spent this week, so there is no chart." in empty.content
        assert empty.attachments == []

        assert not d.slash("video", {"prompt": "a kite over a beach"}).wait_response().ephemeral
        world.wait_job_state("delivered", job_id=1)

        report = answer(d.slash("server-usage", {"period": "week", "csv": True}, user=d.moderator))
        assert report.ephemeral
        names = [a.filename for a in report.attachments]
        assert names[0].endswith(".csv")  # the CSV option stays
        chart = next(a for a in report.attachments if a.filename.endswith(".png"))
        assert report.embeds[0]["image"]["url"].endswith(chart.filename)  # shown inside the report
        data = d.cdn_bytes(chart)
        assert len(data) < MAX_BYTES
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG"
            assert image.size == SIZE_PX
