"""Markdown tables and number cells, one format for every table ganbench writes (summary,
report, evidence, profile): floats to four significant digits, everything else as is."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence


def _text(s: str) -> str:
    return s.replace("|", "/").replace("\n", " ")


def _number(v: float) -> str:
    if math.isnan(v):
        return ""
    return f"{v:.0f}" if 1e4 <= abs(v) < 1e9 else f"{v:.4g}"  # 15203, not 1.52e+04


def cell(x: object) -> str:
    """One table cell: '' for missing values, 4 significant digits for floats (a CSV's text too)."""
    if x is None:
        return ""
    if isinstance(x, str):
        try:
            x = int(x) if x.lstrip("-").isdigit() else float(x)
        except ValueError:
            return _text(x)
    if isinstance(x, numbers.Integral) and not isinstance(x, bool):
        return str(int(x))
    if isinstance(x, numbers.Real) and not isinstance(x, bool):
        return _number(float(x))
    return _text(str(x))


def markdown(columns: Sequence[str], rows: Iterable[Sequence[object]], empty: str = "none") -> str:
    """A Markdown table of `rows` (each a sequence in `columns` order); `_empty_` when there are none."""
    body = ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows]
    if not body:
        return f"_{empty}_\n"
    return "\n".join(["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns), *body]) + "\n"


def markdown_dicts(rows: Sequence[dict], columns: Sequence[str] | None = None, empty: str = "none") -> str:
    """rows as dicts; columns default to every key in first-seen order."""
    cols = list(columns) if columns is not None else list(dict.fromkeys(k for r in rows for k in r))
    return markdown(cols, ([r.get(c) for c in cols] for r in rows), empty)
