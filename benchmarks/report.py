"""Writing a benchmark's section into docs/benchmarks.md between its own markers."""

from __future__ import annotations

import statistics
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\nWritten by the scripts in `benchmarks/`; each section is replaced "
    "when its script runs again. These machines are shared and noisy: compare the rows "
    "of one run, not runs of different days.\n"
)


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(values: list[float]) -> tuple[float, float, float]:
    """p50, p95 and max, in milliseconds, of values in seconds."""
    ms = [v * 1000 for v in values]
    return statistics.median(ms), percentile(ms, 95), max(ms)


def write_section(name: str, body: str) -> None:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = DOC.read_text() if DOC.exists() else HEADER
    block = f"{start}\n{body.rstrip()}\n{end}"
    if start in text and end in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text)
