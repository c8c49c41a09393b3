#!/usr/bin/env python3
"""Render the README's generated parts from the real code, so the documentation cannot drift from it.

    .venv/bin/python scripts/render_examples.py          rewrite docs/examples.md, docs/settings.md, README
    .venv/bin/python scripts/render_examples.py --check  exit 1 if one is out of date (tests/test_docs.py)

- docs/examples.md: the job card through its states and the result, built with `bot.discord_side.cards` for a
  sample job and shown as text the way Discord displays it (mentions as @names, timestamps as "in 2 minutes").
- README.md, between `<!-- BEGIN example -->` / `<!-- END example -->`: one card and the result.
- docs/settings.md, between `<!-- BEGIN settings -->` / `<!-- END settings -->`: every setting, from
  `.env.example` (which tests/test_docs.py checks against bot/core/settings.py, defaults included).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.core import quota  # noqa: E402 - after the path is set
from bot.core.models import ChargeState, Job, JobState  # noqa: E402
from bot.core.policy import MemberPolicy, UsageSnapshot  # noqa: E402
from bot.core.settings import Period  # noqa: E402
from bot.discord_side import cards  # noqa: E402

README = ROOT / "README.md"
EXAMPLES = ROOT / "docs" / "examples.md"
SETTINGS = ROOT / "docs" / "settings.md"
ENV_EXAMPLE = ROOT / ".env.example"

NOW = datetime(2026, 1, 15, 18, 0, tzinfo=UTC)
NAMES = {1111: "Alice"}
SETTING_LINE = re.compile(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$")


# Cards as text ------------------------------------------------------------------------------------------


def relative(when: datetime, now: datetime = NOW) -> str:
    """Discord's relative timestamp wording, close enough for documentation."""
    seconds = (when - now).total_seconds()
    future, s = seconds >= 0, abs(seconds)
    if s < 45:
        text = "a few seconds"
    elif s < 90:
        text = "a minute"
    elif s < 45 * 60:
        text = f"{round(s / 60)} minutes"
    elif s < 90 * 60:
        text = "an hour"
    elif s < 22 * 3600:
        text = f"{round(s / 3600)} hours"
    else:
        text = f"{round(s / 86400)} days"
    return f"in {text}" if future else f"{text} ago"


def as_displayed(text: str) -> str:
    text = re.sub(r"<@!?(\d+)>", lambda m: "@" + NAMES.get(int(m.group(1)), "someone"), text)
    return re.sub(r"<t:(\d+):R>", lambda m: relative(datetime.fromtimestamp(int(m.group(1)), UTC)), text)


def embed_text(embed: object, content: str = "", attachment: str | None = None) -> str:
    """An embed as Discord shows it, in a text block: title, description, fields, footer."""
    data = embed.to_dict()  # type: ignore[attr-defined]
    lines: list[str] = []
    if content:
        lines += [as_displayed(content), ""]
    lines.append(f"│ **{data['title']}**")
    if data.get("description"):
        lines.append(f"│ {as_displayed(data['description'])}")
    for field in data.get("fields", []):
        lines += ["│", f"│ {field['name']}"]
        lines += [f"│ {line}" for line in as_displayed(field["value"]).splitlines()]
    if data.get("footer"):
        lines += ["│", f"│ {data['footer']['text']}"]
    if attachment:
        lines += ["", f"📎 {attachment}  (the video plays inline)"]
    return "```text\n" + "\n".join(lines) + "\n```"


def sample_job(**changes: object) -> Job:
    created = NOW - timedelta(minutes=2)
    job = Job(
        id=17, state=JobState.QUEUED, guild_id=1, channel_id=2, user_id=1111,
        prompt="a paper boat on a stormy sea at dusk, waves crashing, cinematic lighting",
        duration=6, resolution="768P", prompt_expansion=True, credits=1, cost_usd=0.28,
        charge_state=ChargeState.RESERVED, created_at=created, updated_at=created, camera="Push in",
    )  # fmt: skip
    for name, value in changes.items():
        setattr(job, name, value)
    return job


@dataclass(frozen=True)
class Example:
    title: str
    note: str
    block: str


def examples() -> list[Example]:
    usage = quota.MemberUsage(
        policy=MemberPolicy(5, Period.DAY, False, 2, 10, None),
        usage=UsageSnapshot(
            used_credits=2, granted_credits=0, user_active=0, guild_active=0, guild_month_usd=0
        ),
        period_start=NOW.replace(hour=0),
        reset_at=NOW.replace(hour=0) + timedelta(days=1),
    )
    done = sample_job(
        state=JobState.DELIVERED, charge_state=ChargeState.CHARGED, delivered_at=NOW + timedelta(seconds=14)
    )
    return [
        Example(
            "Waiting in the local queue",
            "Answered at once (well inside Discord's 3 seconds); the requester can cancel while it waits.",
            embed_text(cards.job_card(sample_job(), queue_position=2, now=NOW)),
        ),
        Example(
            "Generating",
            "Edited every few seconds with Novita's progress and estimate.",
            embed_text(
                cards.job_card(
                    sample_job(
                        state=JobState.PROCESSING, progress=42.0, eta_s=95, novita_status="PROCESSING"
                    ),
                    now=NOW,
                )
            ),
        ),
        Example(
            "The result",
            "The card becomes the result: the video is attached, with the requester's remaining credits.",
            embed_text(cards.result_card(done, usage.summary()), attachment=f"hailuo-{done.id}.mp4"),
        ),
        Example(
            "The result, after Discord's 15-minute interaction window",
            "Posted as a new message that replies to the card and mentions only the requester.",
            embed_text(
                cards.result_card(done, usage.summary()),
                content=cards.ready_text(done),
                attachment=f"hailuo-{done.id}.mp4",
            ),
        ),
        Example(
            "A failed video",
            "Novita's reason is quoted as it came; the credits are returned.",
            embed_text(
                cards.job_card(
                    sample_job(
                        state=JobState.FAILED,
                        charge_state=ChargeState.REFUNDED,
                        error="The video service couldn't make this video: “The content may violate our "
                        "policies”. Your credits were returned.",
                    ),
                    now=NOW,
                )
            ),
        ),
        Example(
            "Trial mode (NOVITA_MODE=simulate)",
            "Every card and result of a simulated job says so in its footer.",
            embed_text(
                cards.result_card(
                    sample_job(state=JobState.DELIVERED, simulated=True, delivered_at=NOW), usage.summary()
                ),
                attachment="hailuo-17.mp4",
            ),
        ),
        Example(
            "From a first to a last frame, with another model",
            "A `last_frame` (Hailuo-02 only) shows as “first → last frame”; the footer names the model.",
            embed_text(
                cards.job_card(
                    sample_job(
                        state=JobState.PROCESSING,
                        progress=10.0,
                        eta_s=200,
                        novita_status="PROCESSING",
                        image_path="first.jpg",
                        last_frame_path="last.jpg",
                    ),
                    now=NOW,
                )
            )
            + "\n\n"
            + embed_text(cards.job_card(sample_job(model="hailuo-2.3-fast", image_path="a.jpg"), now=NOW)),
        ),
        Example(
            "Waiting while the video account is out of credit",
            "After Novita says the account is out of credit, new submits pause and queued jobs say why.",
            embed_text(
                cards.job_card(
                    sample_job(),
                    queue_position=1,
                    now=NOW,
                    notice="The server's video account is out of credit, so jobs are waiting; the moderators "
                    f"have been told. Next try <t:{int((NOW + timedelta(minutes=5)).timestamp())}:R>.",
                )
            ),
        ),
    ]


def examples_markdown() -> str:
    parts = [
        "# What members see",
        "",
        "<!-- Generated by scripts/render_examples.py from bot/discord_side/cards.py: "
        "do not edit by hand. -->",
        "",
        "Each block is the real message the bot sends for a sample job, shown the way Discord displays it",
        "(embeds as text, `@Alice` for the mention, relative times as Discord words them).",
    ]
    for example in examples():
        parts += ["", f"## {example.title}", "", example.note, "", example.block]
    return "\n".join(parts) + "\n"


def readme_example() -> str:
    chosen = examples()
    return "\n\n".join(chosen[i].block for i in (1, 2))


# Settings table -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    name: str
    value: str  # as written in .env.example ('' = unset)
    required: bool  # an uncommented line: must be filled in
    description: str
    section: str


def parse_env_example(text: str) -> list[Setting]:
    """Settings in `.env.example`: `NAME=` (required) or `# NAME=default`, described by the comments above."""
    settings: list[Setting] = []
    comment: list[str] = []
    section = ""
    for raw in text.splitlines():
        line = raw.rstrip()
        match = SETTING_LINE.match(line)
        if match:
            name, value = match.groups()
            description = " ".join(comment)
            settings.append(Setting(name, value.strip(), not line.startswith("#"), description, section))
            comment = []
        elif line.startswith("# ──"):
            section = line.strip("#─ ").strip()
            comment = []
        elif line.startswith("#"):
            comment.append(line.lstrip("#").strip())
        else:
            comment = []
    return settings


def settings_markdown(settings: list[Setting]) -> str:
    out: list[str] = []
    section = None
    for s in settings:
        if s.section != section:
            section = s.section
            out += ["", f"**{section}**", "", "| Variable | Default | What it does |", "|---|---|---|"]
        default = "*required*" if s.required else (f"`{s.value}`" if s.value else "—")
        description = s.description.replace("|", "\\|")
        out.append(f"| `{s.name}` | {default} | {description} |")
    return "\n".join(out).strip()


# Writing ------------------------------------------------------------------------------------------------


def replace_block(text: str, name: str, body: str, where: str = "README.md") -> str:
    pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{where} has no <!-- BEGIN {name} --> ... <!-- END {name} --> block")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def rendered() -> dict[Path, str]:
    readme = README.read_text(encoding="utf-8")
    readme = replace_block(readme, "example", readme_example())
    table = settings_markdown(parse_env_example(ENV_EXAMPLE.read_text(encoding="utf-8")))
    settings = replace_block(SETTINGS.read_text(encoding="utf-8"), "settings", table, "docs/settings.md")
    return {EXAMPLES: examples_markdown(), README: readme, SETTINGS: settings}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the files are current")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if current != text:
            stale.append(path.relative_to(ROOT))
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    if args.check and stale:
        print(f"Out of date: {', '.join(map(str, stale))}. Run: .venv/bin/python scripts/render_examples.py")
        return 1
    print("Updated: " + ", ".join(map(str, stale)) if stale else "Everything is up to date.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
