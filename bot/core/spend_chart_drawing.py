"""Drawing the spend chart with matplotlib (Agg): kept apart from `spend_chart.py` so that matplotlib and
numpy are imported only when a chart is first drawn, not every time the bot starts."""

from __future__ import annotations

import functools
import io
import threading
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: no display, safe in any thread

from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from .i18n import CATALOGS, catalog_for
from .spend_chart import SIZE_PX, ChartLabels, SpendSeries, tick_positions

# DejaVu Sans (matplotlib's own, always there) first; the CJK families after it are used glyph by glyph for
# what DejaVu lacks. Only installed families are listed: a missing one would log a warning on every text.
CJK_FAMILIES = ("Noto Sans CJK JP", "Noto Sans CJK SC", "Noto Sans CJK TC", "Noto Sans CJK KR")
CJK_FIRST = {"zh_CN": "Noto Sans CJK SC", "ko": "Noto Sans CJK KR", "ja": "Noto Sans CJK JP"}

BACKGROUND = "#1e1f22"
FOREGROUND = "#f2f3f5"
GRID = "#3f4147"
COLOURS = ("#56b4e9", "#e69f00", "#009e73", "#f0e442", "#cc79a7", "#0072b2")
OTHERS_COLOUR = "#d5d7db"
BUDGET_COLOUR = "#ff5a5f"


_FONTS_LOCK = threading.Lock()


@functools.cache
def _installed_families() -> frozenset[str]:
    """The font families matplotlib can use. Its font list is cached on disk when it first runs, so CJK
    fonts installed later (`apt install fonts-noto-cjk` on a running server) are looked for on the system
    and added, once."""
    with _FONTS_LOCK:
        known = {font.name for font in font_manager.fontManager.ttflist}
        if not known.intersection(CJK_FAMILIES):
            for path in font_manager.findSystemFonts():
                if "CJK" in Path(path).name and "Sans" in Path(path).name and "Mono" not in Path(path).name:
                    try:
                        font_manager.fontManager.addfont(path)
                    except (OSError, RuntimeError, ValueError):
                        continue  # an unreadable font file: Latin text still draws
            known = {font.name for font in font_manager.fontManager.ttflist}
        return frozenset(known)


@functools.cache
def font_families(locale: str | None = None) -> tuple[str, ...]:
    """DejaVu Sans, then the installed Noto CJK families, the reader's own script's first: matplotlib draws
    each glyph with the first family that has it."""
    installed = _installed_families()
    preferred = CJK_FIRST.get(locale if locale in CATALOGS else catalog_for(locale))
    cjk = sorted(CJK_FAMILIES, key=lambda family: family != preferred)
    return ("DejaVu Sans", *(family for family in cjk if family in installed))


def draw(series: SpendSeries, text: ChartLabels, fonts: list[str]) -> bytes:
    """Fonts are given to each text (not through the global rcParams): charts are drawn in threads."""
    figure = Figure(figsize=(SIZE_PX[0] / 100, SIZE_PX[1] / 100), dpi=100, facecolor=BACKGROUND)
    ax = figure.add_subplot()
    ax.set_facecolor(BACKGROUND)
    x = list(range(len(series.days)))
    bottom = [0.0] * len(x)
    handles: list[Any] = []
    width = 0.8 if len(x) <= 62 else 1.0
    stacks = [values for _uid, _name, values in series.members]
    if any(series.others):
        stacks.append(series.others)
    for i, values in enumerate(stacks):
        colour = OTHERS_COLOUR if i >= len(series.members) else COLOURS[i % len(COLOURS)]
        ax.bar(x, values, width=width, bottom=bottom, color=colour, linewidth=0)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        handles.append(Patch(color=colour))
    if series.budget_per_day is not None:
        (line,) = ax.step(
            [x[0] - 0.5, *x, x[-1] + 0.5] if x else [],
            [series.budget_per_day[0], *series.budget_per_day, series.budget_per_day[-1]] if x else [],
            where="mid",
            color=BUDGET_COLOUR,
            linewidth=2,
            linestyle="--",
        )
        handles.append(line)
    title = ax.set_title(text.title, color=FOREGROUND, fontsize=17, fontfamily=fonts, loc="left", pad=12)
    title.set_parse_math(False)
    ax.set_ylabel(text.y_axis, color=FOREGROUND, fontsize=14, fontfamily=fonts)
    ax.set_xlabel(text.x_axis, color=FOREGROUND, fontsize=14, fontfamily=fonts)
    ax.set_xticks(tick_positions(series.days), text.ticks)
    ax.set_xlim(-0.6, len(x) - 0.4)
    ax.set_ylim(0, max([*bottom, *(series.budget_per_day or []), 0.01]) * 1.15)
    if series.unit == "usd":
        ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: text.money(value)))
    else:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.tick_params(colors=FOREGROUND, labelsize=13, labelfontfamily=fonts)
    ax.grid(axis="y", color=GRID, linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(GRID)
    if handles:
        legend = ax.legend(
            handles,
            text.legend,
            loc="upper left",
            bbox_to_anchor=(1.01, 1),
            frameon=False,
            prop={"family": fonts, "size": 13},
            labelcolor=FOREGROUND,
        )
        legend.set_in_layout(True)
        for label in legend.get_texts():
            label.set_parse_math(False)  # a display name with two "$" is not a formula
    figure.set_layout_engine("constrained")
    out = io.BytesIO()
    figure.savefig(out, format="png", facecolor=BACKGROUND, metadata={"Software": None})
    return out.getvalue()
