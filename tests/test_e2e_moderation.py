"""The moderators' view end to end: run-time permission checks, server rules, the moderation log, spoilers,
undelivered jobs and the CSV export, against the real bot process and the fake Discord."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from bot.core.reports import CSV_COLUMNS
from tests.fakes.fake_discord import Interaction, Message, User
from tests.fakes.novita import Timeline
from tests.support.harness import World, running_world

pytestmark = pytest.mark.e2e

NOT_MODERATOR = "Only moderators can use this command"
MANAGE_GUILD = 1 << 5


def answer(inter: Interaction, timeout: float = 5) -> Message:
    inter.wait_response(timeout)
    return inter.wait_original(lambda m: not m.loading, timeout)


def run(world: World, name: str, sub: str | None, options: dict[str, Any], user: User) -> Interaction:
    return world.discord.slash(name, options, subcommand=sub, user=user)


def mod(world: World, name: str, sub: str | None, options: dict[str, Any] | None = None) -> str:
    inter = run(world, name, sub, options or {}, world.discord.moderator)
    text = answer(inter).text
    assert inter.ephemeral, text
    assert NOT_MODERATOR not in text, text
    return text


def video(world: World, user: User, prompt: str = "a kite over a beach", **kw: Any) -> Interaction:
    inter = world.discord.slash("video", {"prompt": prompt}, user=user, **kw)
    inter.wait_response()
    return inter


def test_only_moderators_can_use_moderator_commands(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        d = world.discord
        alice, other = d.member, d.moderator
        general = d.channel
        role = d.add_role(None, "Helpers")
        commands = [
            ("server-usage", None, {"csv": True}),
            ("quota", "show", {}),
            ("quota", "set-default", {"credits": "unlimited"}),
            ("quota", "set-role", {"role": role, "credits": "100"}),
            ("quota", "set-user", {"member": alice, "credits": "unlimited"}),
            ("quota", "grant", {"member": alice, "credits": 50}),
            ("quota", "reset", {"member": alice}),
            ("quota", "budget", {"usd": 0}),
            ("quota", "set-cost", {"video": "768P/6", "credits": "0"}),
            ("settings", "show", {}),
            ("settings", "block", {"member": other}),
            ("settings", "unblock", {"member": alice}),
            ("settings", "channels", {"action": "add", "channel": general}),
            ("settings", "blocklist", {"action": "list"}),
            ("settings", "modlog", {"channel": general}),
            ("settings", "spoiler", {"enabled": True}),
            ("settings", "modrole", {"role": role}),
            ("settings", "models", {"model": "hailuo-2.3", "allowed": False}),
        ]
        synced = d.commands
        for name in ("server-usage", "quota", "settings"):  # hidden from members by default in Discord
            assert int(synced[name].payload["default_member_permissions"]) == MANAGE_GUILD
        for name, sub, options in commands:  # ...but a member can still invoke them: refused at run time
            inter = run(world, name, sub, options, alice)
            assert inter.wait_response().ephemeral
            assert inter.response.content.startswith(NOT_MODERATOR), (name, sub, inter.response.content)
        other_usage = d.slash("usage", {"member": other}, user=alice)
        assert "Only moderators can see another member's usage" in answer(other_usage).text
        assert world.rows("SELECT * FROM policy_changes") == []
        assert world.rows("SELECT * FROM ledger") == []
        assert world.rows("SELECT * FROM guild_settings") == []

        # A configured moderator role is enough, without Manage Server.
        helper = d.add_member(None, "helper", roles=[role]).user
        assert answer(run(world, "quota", "show", {}, helper)).text.startswith(NOT_MODERATOR)
        assert "Helpers" not in mod(world, "settings", "modrole", {"role": role})
        shown = answer(run(world, "quota", "show", {"member": alice}, helper)).text
        assert "Quota rules" in shown
        assert "left today" in shown
        assert "Video credits of Alice" in answer(run(world, "usage", None, {"member": alice}, helper)).text


def test_blocked_members_blocklist_and_allowed_channels(tmp_path: Path) -> None:
    timeline = Timeline(queued_s=0.1, processing_s=0.3)
    with running_world(tmp_path, timeline=timeline) as world:
        d = world.discord
        alice = d.member
        art = d.add_channel(None, "art")
        mod(world, "quota", "set-default", {"member_jobs": 10})

        mod(world, "settings", "block", {"member": alice})
        refused = video(world, alice)
        assert refused.ephemeral
        assert "You can't make videos on this server" in refused.response.content
        mod(world, "settings", "unblock", {"member": alice})
        assert not video(world, alice).ephemeral

        assert "Added" in mod(world, "settings", "blocklist", {"action": "add", "entry": "dragon"})
        assert "Added" in mod(world, "settings", "blocklist", {"action": "add", "entry": r"re:\bfl(y|ies)\b"})
        for bad, reason in [
            ("re:(a+)+b", "Nested repetition"),
            ("re:(cat|dog)+s", "repeated group"),
            (r"re:.*a.*b", "repeats too freely"),
            ("re:x*", "matches an empty prompt"),
            ("re:(unclosed", "isn't a valid regular expression"),
            (r"re:(a)\1", "Backreferences"),
        ]:
            assert reason in mod(world, "settings", "blocklist", {"action": "add", "entry": bad}), bad
        for prompt, shown in [("A DRAGON at dawn", "“dragon”"), ("birds fly south", "a blocked pattern")]:
            refused = video(world, alice, prompt)
            assert refused.ephemeral
            assert f"Your prompt contains {shown}" in refused.response.content
        assert not video(world, alice, "dragonfruit on a table").ephemeral  # whole words only
        listing = mod(world, "settings", "blocklist", {"action": "list"})
        assert "dragon" in listing
        assert "(a+)+b" not in listing

        assert "<#" in mod(world, "settings", "channels", {"action": "add", "channel": art})
        refused = video(world, alice, "a quiet harbour")
        assert refused.ephemeral
        assert "Videos can't be made in this channel" in refused.response.content
        assert not video(world, alice, "a quiet harbour", channel=art).ephemeral
        shown = mod(world, "settings", "show")
        assert f"<#{art.id}>" in shown
        assert "Prompt blocklist (2)" in shown

        world.wait_for(lambda: all(j["state"] == "delivered" for j in world.rows("SELECT state FROM jobs")))
        assert len(world.novita.created_submits) == len(world.rows("SELECT id FROM jobs")) == 3
        moderators = {r["actor_id"] for r in world.rows("SELECT actor_id FROM policy_changes")}
        assert moderators == {d.moderator.id}


def test_modlog_spoilers_undelivered_and_csv(tmp_path: Path) -> None:
    timeline = Timeline(queued_s=0.1, processing_s=0.3)
    # The interaction token counts as dead at once: results are posted to the channel, where we can refuse.
    with running_world(tmp_path, timeline=timeline, INTERACTION_TOKEN_MINUTES="0.05") as world:
        d = world.discord
        alice = d.member
        modlog = d.add_channel(None, "mod-log")
        locked = d.add_channel(None, "locked")
        d.deny(locked, "send_messages")
        d.refuse_dms(alice)
        mod(world, "settings", "modlog", {"channel": modlog})
        mod(world, "settings", "spoiler", {"enabled": True})

        tricky = 'Ping @everyone and <@&1> "quoted", commas, **bold**'
        delivered = video(world, alice, tricky)
        formula = video(world, alice, '=HYPERLINK("http://x","y") a cat', channel=locked)
        assert not delivered.ephemeral
        assert not formula.ephemeral

        result = d.wait_for_message(lambda m: m.attachments and m.channel_id == d.channel.id, timeout=20)
        assert result.attachments[0].filename.startswith("SPOILER_")
        lines = world.wait_for(
            lambda: len(d.bot_messages(modlog)) >= 3 and d.bot_messages(modlog), what="modlog"
        )
        done = next(m for m in lines if "#1" in m.content)
        lost = next(m for m in lines if "#2" in m.content)
        assert "✅" in done.content
        assert f"<@{alice.id}>" in done.content
        assert "768P" in done.content
        assert "$0.28" in done.content
        assert f"https://discord.com/channels/{d.guild.id}/{d.channel.id}/{result.id}" in done.content
        assert "@\u200beveryone" in done.content
        assert not done.mention_everyone
        assert done.mentions == []
        assert done.mention_roles == []
        assert "undelivered" in lost.content

        report = answer(d.slash("server-usage", {"period": "day", "csv": True}, user=d.moderator))
        assert report.ephemeral
        assert "2 videos" in report.text
        assert "Undelivered" in report.text
        assert "#2 by" in report.text
        data = d.cdn_bytes(report.attachments[0])
        assert data.startswith(b"\xef\xbb\xbf")  # a BOM, so spreadsheets read UTF-8
        table = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        assert tuple(table[0]) == CSV_COLUMNS
        assert len(table) == 2
        first, second = table
        assert first["prompt"] == tricky
        assert first["outcome"] == "delivered"
        assert first["cost_usd"] == "0.28"
        assert first["channel"] == "#general"
        assert first["result_link"].endswith(f"/{result.id}")
        assert first["timeline"].startswith("accepted +0.0s > queued")
        assert second["prompt"].startswith("'=HYPERLINK(")  # a formula would run in a spreadsheet
        assert second["outcome"] == "undelivered"
        text = data.decode("utf-8-sig")
        assert delivered.token not in text
        assert formula.token not in text
        assert "/cdn/" not in text
