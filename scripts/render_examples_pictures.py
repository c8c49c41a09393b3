#!/usr/bin/env python3
"""Draw every example message (scripts/example_messages.py) as Discord shows it, for docs/examples.md.

    .venv/bin/python scripts/render_examples_pictures.py              HTML sources and PNG screenshots
    .venv/bin/python scripts/render_examples_pictures.py --html-only  only the HTML (no Chromium needed)
    .venv/bin/python scripts/render_examples_pictures.py --check      exit 1 if an HTML source is stale

Each message's real payload (embeds, components, content) becomes a small HTML page styled like Discord's
dark theme, under docs/pictures/src/; headless Chromium screenshots it to docs/pictures/<name>.png. The job
card is also drawn in every language the bot speaks (`card-generating.<locale>.png`).
tests/test_docs.py checks that the HTML sources match the code, so the pictures never silently drift
(the screenshots themselves are made by hand with this script, not in CI). Chromium, on Debian or Ubuntu:
`sudo apt-get install -y chromium fonts-noto-color-emoji fonts-noto-cjk`.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import example_messages
from babel.dates import format_datetime, format_timedelta
from example_messages import CHANNELS, NAMES, NOW, Example
from render_examples import relative

from bot.core.i18n import babel_locale

ROOT = example_messages.ROOT
PICTURES = ROOT / "docs" / "pictures"
SOURCES = PICTURES / "src"
DEFAULT_LOCALE = "en"
STYLESHEET = "discord.css"
WIDTH = 760
BUTTON_STYLES = {1: "primary", 2: "secondary", 3: "success", 4: "danger", 5: "secondary"}

CSS = """
body { margin: 0; background: #313338; color: #dbdee1; width: 760px;
  font: 16px/1.375 "gg sans", "Noto Sans", "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; }
.msg { display: flex; padding: 16px 16px 16px 16px; }
.avatar { width: 40px; height: 40px; border-radius: 50%; background: #5865f2; color: #fff; flex: none;
  display: flex; align-items: center; justify-content: center; font-weight: 700; margin-right: 16px; }
.body { min-width: 0; flex: 1; }
.head .name { color: #f2f3f5; font-weight: 600; }
.head .app { background: #5865f2; color: #fff; font-size: 10px; font-weight: 600; border-radius: 3px;
  padding: 1px 4px; margin-left: 4px; vertical-align: 2px; }
.head .time { color: #949ba4; font-size: 12px; margin-left: 6px; }
.content { white-space: pre-wrap; }
.embed { background: #2b2d31; border-left: 4px solid #5865f2; border-radius: 4px; max-width: 520px;
  padding: 8px 16px 16px 12px; margin-top: 4px; }
.embed .title { color: #f2f3f5; font-weight: 600; margin-top: 8px; }
.embed .desc { font-size: 14px; margin-top: 8px; white-space: pre-wrap; }
.fields { display: grid; grid-template-columns: repeat(3, 1fr); gap: 8px; margin-top: 8px; }
.field { grid-column: 1 / 4; font-size: 14px; }
.field.inline { grid-column: auto; }
.field .fname { color: #f2f3f5; font-weight: 600; margin-bottom: 2px; }
.field .fvalue { white-space: pre-wrap; }
.embed img { display: block; max-width: 100%; border-radius: 4px; margin-top: 16px; }
.footer { color: #dbdee1; font-size: 12px; margin-top: 8px; }
.mention { background: rgba(88,101,242,.3); color: #c9cdfb; border-radius: 3px; padding: 0 2px; }
code { background: #1e1f22; border-radius: 3px; padding: 0 3px; font-size: 85%; }
.file { background: #2b2d31; border: 1px solid #1e1f22; border-radius: 8px; padding: 12px; margin-top: 8px;
  max-width: 400px; color: #00a8fc; }
.row { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 8px; }
.button { border-radius: 3px; padding: 2px 16px; height: 32px; display: flex; align-items: center; gap: 6px;
  font-size: 14px; font-weight: 500; color: #fff; }
.primary { background: #5865f2; } .secondary { background: #4e5058; } .success { background: #248046; }
.danger { background: #da373c; }
.ephemeral { color: #949ba4; font-size: 12px; margin-top: 6px; }
.ephemeral a { color: #00a8fc; }
"""


def inline(text: str, locale: str = DEFAULT_LOCALE) -> str:
    """Discord's markdown subset the bot uses, as HTML: **bold**, `code`, mentions, channels, timestamps."""
    out = html.escape(text, quote=False)
    out = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", out)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(
        r"&lt;@!?(\d+)&gt;",
        lambda m: f'<span class="mention">@{NAMES.get(int(m.group(1)), "Hailuo Bot")}</span>',
        out,
    )
    out = re.sub(
        r"&lt;#(\d+)&gt;",
        lambda m: f'<span class="mention">#{CHANNELS.get(int(m.group(1)), "channel")}</span>',
        out,
    )
    return re.sub(
        r"&lt;t:(\d+)(?::([a-zA-Z]))?&gt;",
        lambda m: html.escape(_time(int(m.group(1)), m.group(2) or "f", locale)),
        out,
    )


def _time(stamp: int, style: str, locale: str) -> str:
    """A Discord timestamp as the member's client shows it (in their language)."""
    when = datetime.fromtimestamp(stamp, UTC)
    if locale == DEFAULT_LOCALE or locale.startswith("en"):
        return relative(when, NOW) if style == "R" else when.strftime("%d %B %Y %H:%M")
    where = babel_locale(locale)
    if style == "R":
        return format_timedelta(when - NOW, add_direction=True, locale=where)
    return format_datetime(when, "medium", locale=where)


def embed_html(data: dict[str, Any], locale: str = DEFAULT_LOCALE) -> str:
    colour = f"#{int(data.get('color', 0x5865F2)):06x}"
    parts = [f'<div class="embed" style="border-left-color:{colour}">']
    if data.get("title"):
        parts.append(f'<div class="title">{inline(data["title"], locale)}</div>')
    if data.get("description"):
        parts.append(f'<div class="desc">{inline(data["description"], locale)}</div>')
    if data.get("fields"):
        parts.append('<div class="fields">')
        for f in data["fields"]:
            kind = "field inline" if f.get("inline") else "field"
            parts.append(
                f'<div class="{kind}"><div class="fname">{inline(f["name"], locale)}</div>'
                f'<div class="fvalue">{inline(f["value"], locale)}</div></div>'
            )
        parts.append("</div>")
    image = data.get("image", {}).get("url", "")
    if image.startswith("attachment://"):
        parts.append(f'<img src="{html.escape(image.removeprefix("attachment://"))}" alt="chart">')
    if data.get("footer"):
        parts.append(f'<div class="footer">{inline(data["footer"]["text"], locale)}</div>')
    parts.append("</div>")
    return "".join(parts)


def components_html(rows: list[dict[str, Any]]) -> str:
    out = []
    for row in rows:
        buttons = []
        for b in row.get("components", []):
            emoji = (b.get("emoji") or {}).get("name") or ""
            style = BUTTON_STYLES.get(b.get("style", 2), "secondary")
            buttons.append(
                f'<div class="button {style}">{html.escape(emoji)} {html.escape(b.get("label", ""))}</div>'
            )
        out.append(f'<div class="row">{"".join(buttons)}</div>')
    return "".join(out)


def page(example: Example, locale: str) -> str:
    """One message as a standalone HTML page (deterministic: the drift test compares it)."""
    body = [
        '<div class="msg"><div class="avatar">H</div><div class="body">',
        '<div class="head"><span class="name">Hailuo Bot</span><span class="app">APP</span>'
        f'<span class="time">Today at {NOW:%H:%M}</span></div>',
    ]
    if example.content:
        body.append(f'<div class="content">{inline(example.content, locale)}</div>')
    body += [embed_html(e, locale) for e in example.embeds]
    for name in example.attachments:
        if name not in example.images:
            body.append(f'<div class="file">📎 {html.escape(name)}</div>')
    body.append(components_html(example.components))
    if example.ephemeral:
        body.append('<div class="ephemeral">👁 Only you can see this · <a>Dismiss message</a></div>')
    body.append("</div></div>")
    return (
        f'<!DOCTYPE html>\n<html lang="{html.escape(locale)}"><head><meta charset="utf-8">'
        f"<title>{html.escape(example.title)}</title>\n"
        "<!-- Generated by scripts/render_examples_pictures.py from the bot's real payloads: "
        "do not edit by hand. -->\n"
        f'<link rel="stylesheet" href="{STYLESHEET}"></head>\n<body>{"".join(body)}</body></html>\n'
    )


def sources() -> dict[Path, str]:
    """Every page: the examples in English, then the job card in each language (its page in that language)."""
    pages = {SOURCES / STYLESHEET: CSS.lstrip()}  # one stylesheet, Discord's dark theme, for every page
    pages.update({SOURCES / f"{e.slug}.html": page(e, DEFAULT_LOCALE) for e in example_messages.examples()})
    for example in example_messages.language_examples():
        pages[SOURCES / f"{example.slug}.html"] = page(example, example.slug.rsplit(".", 1)[1])
    return pages


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit(
        "Chromium is needed for the screenshots. On Debian or Ubuntu: "
        "sudo apt-get install -y chromium fonts-noto-color-emoji fonts-noto-cjk  (or use --html-only)"
    )


def screenshot(browser: str, source: Path, target: Path) -> None:
    """Headless Chromium draws the page at a generous height; Pillow trims the empty bottom."""
    from PIL import Image, ImageChops

    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--window-size={WIDTH},2000", "--force-device-scale-factor=1",
             f"--screenshot={target}", source.as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    with Image.open(target) as image:
        shot = image.convert("RGB")
    background = Image.new("RGB", shot.size, shot.getpixel((0, shot.height - 1)))
    box = ImageChops.difference(shot, background).getbbox()
    if box:
        shot = shot.crop((0, 0, shot.width, min(shot.height, box[3] + 16)))
    shot.save(target, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--html-only", action="store_true", help="write the HTML sources, no screenshots")
    parser.add_argument(
        "--check", action="store_true", help="only report whether the HTML sources are current"
    )
    args = parser.parse_args(argv)
    pages = sources()
    stale = [p for p, text in pages.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        if stale:
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            print(f"Out of date: {names}. Run: .venv/bin/python scripts/render_examples_pictures.py")
            return 1
        print("The pictures' HTML sources are up to date.")
        return 0
    SOURCES.mkdir(parents=True, exist_ok=True)
    for path, text in pages.items():
        path.write_text(text, encoding="utf-8")
    for example in example_messages.examples():
        for name, data in example.images.items():
            (SOURCES / name).write_bytes(data)
    if args.html_only:
        print(f"Wrote {len(pages)} HTML sources under {SOURCES.relative_to(ROOT)}.")
        return 0
    browser = chromium()
    drawn = [path for path in pages if path.suffix == ".html"]
    for path in drawn:
        screenshot(browser, path, PICTURES / f"{path.stem}.png")
    print(f"Wrote {len(drawn)} pictures under {PICTURES.relative_to(ROOT)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
