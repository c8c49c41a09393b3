"""Members are served in their own language, end to end: the real bot against the fake Discord, whose
interactions carry `locale` and `guild_locale` like Discord's. A Japanese and a Brazilian member get their
card, a refusal and /usage in their language, an en-US member's stay English, the modlog follows the
server's preferred locale, and the slash commands are registered with their localizations."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.i18n import _, render
from bot.core.jobs import REFUNDED
from tests.fakes.novita import Timeline
from tests.support.harness import running_world

pytestmark = pytest.mark.e2e

KANA_OR_KANJI = set(range(0x3040, 0x30FF + 1)) | set(range(0x4E00, 0x9FFF + 1))


def japanese(text: str) -> bool:
    return any(ord(ch) in KANA_OR_KANJI for ch in text)


def embed_text(embeds: list[dict[str, object]] | None) -> str:
    parts: list[str] = []
    for embed in embeds or []:
        parts += [str(embed.get("title", "")), str(embed.get("description", ""))]
        for field in embed.get("fields", []):  # type: ignore[attr-defined]
            parts += [field["name"], field["value"]]
        parts.append(str((embed.get("footer") or {}).get("text", "")))  # type: ignore[attr-defined]
    return "\n".join(parts)


def test_each_member_reads_the_card_refusals_and_usage_in_their_language(tmp_path: Path) -> None:
    timeline = Timeline(queued_s=0.1, processing_s=0.3)
    with running_world(tmp_path, timeline=timeline, start=False) as world:
        d = world.discord
        d.guild.locale = "fr"  # the server's preferred locale: the modlog's language
        ja = d.add_member(d.guild, d.add_user("hanako", locale="ja")).user
        pt = d.add_member(d.guild, d.add_user("joao", locale="pt-BR")).user
        en = d.member  # en-US
        modlog = d.add_channel(None, "mod-log")
        world.start_bot()
        d.slash("settings", {"channel": modlog}, subcommand="modlog", user=d.moderator).wait_response()

        answers: dict[str, dict[str, str]] = {}
        for name, user in (("ja", ja), ("pt", pt), ("en", en)):
            video = d.slash("video", {"prompt": f"a lighthouse for {name}"}, user=user)
            card = video.wait_response()
            assert not card.ephemeral
            refused = d.slash("video", {"prompt": "x", "duration": 10, "resolution": "1080P"}, user=user)
            refusal = refused.wait_response()
            assert refusal.ephemeral
            done = video.wait_original(lambda m: m.attachments, timeout=30)
            usage = d.slash("usage", user=user).wait_response()
            answers[name] = {
                "card": embed_text(card.data["embeds"]),
                "result": embed_text(done.embeds),
                "refusal": refusal.data["content"],
                "usage": embed_text(usage.data["embeds"]),
            }

        english = answers["en"]
        assert english["card"].startswith("🎞️ Video")
        assert "Requested by" in english["card"]
        assert english["refusal"].startswith("1080P is only available for 6-second videos")
        assert "Your video credits" in english["usage"]
        assert "left today" in english["usage"]
        assert "left today" in english["result"]  # remaining credits, the same words as /usage

        for text in answers["ja"].values():
            assert japanese(text), text
        assert "1080P" in answers["ja"]["refusal"]  # the option names stay as Discord shows them

        brazilian = answers["pt"]
        for key, text in brazilian.items():
            assert not japanese(text)
            assert text != english[key].replace("for en", "for pt")
        assert "Requested by" not in brazilian["card"]
        assert not brazilian["refusal"].startswith("1080P is only available")
        assert "Your video credits" not in brazilian["usage"]
        for locale, said in (("ja", answers["ja"]), ("pt-BR", brazilian)):  # the catalog's own words
            assert render(_("Requested by"), locale) in said["card"]
            assert render(_("🎟️ Your video credits"), locale) in said["usage"]

        lines = world.wait_for(lambda: len(d.bot_messages(modlog)) >= 4 and d.bot_messages(modlog))
        results = [m.content for m in lines if m.content.startswith("✅")]
        assert len(results) == 3
        for line in results:  # French, whoever asked: the log answers no one in particular
            french = [
                render(_(outcome), "fr") for outcome in ("delivered", "posted in the channel", "sent by DM")
            ]
            assert any(words in line for words in french), line
            assert "posted in the channel" not in line

        rows = world.rows("SELECT user_id, locale FROM jobs ORDER BY id")
        assert [(r["user_id"], r["locale"]) for r in rows] == [
            (ja.id, "ja"),
            (pt.id, "pt-BR"),
            (en.id, "en-US"),
        ]


def test_a_stored_failure_is_shown_in_the_requesters_language_after_a_restart(tmp_path: Path) -> None:
    timeline = Timeline(queued_s=0.1, processing_s=0.2, outcome="fail", reason="Sensitive content detected")
    with running_world(tmp_path, timeline=timeline) as world:
        d = world.discord
        ja = d.add_member(d.guild, d.add_user("hanako", locale="ja")).user
        video = d.slash("video", {"prompt": "a storm"}, user=ja)
        video.wait_response()
        world.wait_for(lambda: world.rows("SELECT state FROM jobs")[0]["state"] == "failed", what="failure")
        world.bot.stop()
        world.restart_bot()
        listed = d.slash("jobs", user=ja).wait_response()
        text = embed_text(listed.data["embeds"])
        assert "Sensitive content detected" in text  # Novita's words, quoted exactly as written
        assert japanese(text)
        assert render(REFUNDED, "ja") in text
        assert "。 " not in text  # Japanese sentences follow each other without a space


def test_slash_commands_are_registered_with_their_localizations(tmp_path: Path) -> None:
    with running_world(tmp_path) as world:
        commands = {
            name: c.payload for name, c in world.discord.wait_for_commands("video", "Animate image").items()
        }
        video = commands["video"]
        assert video["name"] == "video"  # names stay English: what members type and the docs quote
        assert not video.get("name_localizations")
        descriptions = video["description_localizations"]
        assert set(descriptions) >= {"ja", "pt-BR", "zh-CN", "ko", "es-ES", "es-419", "fr", "de", "ru"}
        assert japanese(descriptions["ja"])
        duration = next(o for o in video["options"] if o["name"] == "duration")
        assert japanese(duration["choices"][0]["name_localizations"]["ja"])
        menu = next(c for c in commands.values() if c["type"] == 3)
        assert menu["name"] == "Animate image"
        assert japanese(menu["name_localizations"]["ja"])
