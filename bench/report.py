"""The printed table: each figure beside its target, pass / MISS, then notes and bounds."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from bench.common import Section

WIDTH = 110


def table(sections: Sequence[Section], machine: dict[str, str], command: str, elapsed: float) -> str:
    rows = [("Figure", "Measured", "Target", "")]
    for section in sections:
        if section.error:
            rows.append((f"[{section.name}] did not finish", section.error[:40], "", "ERROR"))
        rows += [(f.name, f.measured, f.target, f.verdict) for f in section.figures]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    line = "  ".join("-" * w for w in widths)
    out = [
        f"Hailuo Bot benchmark — {command}",
        f"{machine['cpus']} CPUs ({machine['cpu']}), {machine['memory']}, Python {machine['python']}, "
        f"{machine['os']}; load average at the end {machine['load']}; {elapsed:.0f} s",
        "",
    ]
    for i, row in enumerate(rows):
        out.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            out.append(line)
    figures = [f for s in sections for f in s.figures if f.ok is not None]
    missed = [f for f in figures if not f.ok]
    errors = [s for s in sections if s.error]
    out += [
        line,
        f"{len(figures) - len(missed)}/{len(figures)} targets met"
        + (f"; missed: {', '.join(f.name for f in missed)}" if missed else "")
        + (f"; {len(errors)} section(s) failed" if errors else ""),
        "",
        "Notes",
    ]
    for section in sections:
        for note in section.notes:
            out += textwrap.wrap(note, WIDTH, initial_indent="- ", subsequent_indent="  ")
        if section.error:
            out += textwrap.wrap(f"{section.name}: {section.error}", WIDTH, initial_indent="! ",
                                 subsequent_indent="  ")  # fmt: skip
    out += ["", "What bounds each figure"]
    for section in sections:
        for f in section.figures:
            if f.bound:
                out += textwrap.wrap(f"{f.name.strip()}: {f.bound}", WIDTH, initial_indent="- ",
                                     subsequent_indent="  ")  # fmt: skip
    return "\n".join(out)
