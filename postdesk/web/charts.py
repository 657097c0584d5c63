"""The spam page's charts, drawn on the server: the geometry of an SVG ROC curve and score
histogram (the template writes the markup), from the curves a retrain saved with its version.

Both come from that retrain's cross-validation (`classifier.versions.evaluate_examples`): every
labelled message scored by a model that never saw it. The histogram's bar heights are on a log
scale: chi-square scores pile up at 0 and 1, and a linear scale would hide the unsure middle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Plot areas inside each SVG's viewBox: left, top, width, height (room for the axes' labels around).
ROC_BOX = (44, 12, 256, 256)
ROC_SIZE = (316, 310)
HIST_BOX = (48, 12, 440, 200)
HIST_SIZE = (500, 252)


@dataclass(frozen=True)
class Tick:
    at: float  # the coordinate in the viewBox
    text: str


@dataclass(frozen=True)
class RocChart:
    points: str  # the curve as an SVG polyline's "x,y x,y …"
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    box: tuple[int, int, int, int] = ROC_BOX
    size: tuple[int, int] = ROC_SIZE


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str  # ham | spam
    count: int
    low: float  # the scores the bar counts, low <= score < high
    high: float


@dataclass(frozen=True)
class HistogramChart:
    bars: list[Bar]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    cutoffs: list[Tick]  # the ham and spam cutoffs, as vertical lines
    box: tuple[int, int, int, int] = HIST_BOX
    size: tuple[int, int] = HIST_SIZE


def _fraction_ticks(start: float, length: float, flip: bool = False) -> list[Tick]:
    return [Tick(round(start + (1 - f if flip else f) * length, 2), f"{f:g}") for f in (0, 0.25, 0.5, 0.75, 1)]


def roc(points: list[list[float]]) -> RocChart | None:
    """The ROC curve (false positive rate across, true positive rate up), or None without one."""
    if len(points) < 2:
        return None
    left, top, width, height = ROC_BOX
    drawn = " ".join(f"{left + fpr * width:.2f},{top + (1 - tpr) * height:.2f}" for fpr, tpr in points)
    return RocChart(drawn, _fraction_ticks(left, width), _fraction_ticks(top, height, flip=True))


def _log_height(count: int, most: int) -> float:
    return math.log10(1 + count) / math.log10(1 + most) if most else 0.0


def histogram(counts: dict, ham_cutoff: float, spam_cutoff: float) -> HistogramChart | None:
    """Side-by-side ham and spam bars for each score slice, or None without counts."""
    bins, ham, spam = counts.get("bins", 0), counts.get("ham", []), counts.get("spam", [])
    if not bins or len(ham) != bins or len(spam) != bins:
        return None
    left, top, width, height = HIST_BOX
    most = max(ham + spam)
    slot = width / bins
    bars = []
    for i in range(bins):
        for j, (label, count) in enumerate((("ham", ham[i]), ("spam", spam[i]))):
            tall = height * _log_height(count, most)
            bars.append(
                Bar(
                    round(left + i * slot + j * slot / 2, 2),
                    round(top + height - tall, 2),
                    round(slot / 2, 2),
                    round(tall, 2),
                    label,
                    count,
                    i / bins,
                    (i + 1) / bins,
                )
            )
    y_ticks = [
        Tick(round(top + height * (1 - _log_height(n, most)), 2), f"{n:,}")
        for n in (0, 1, 10, 100, 1_000, 10_000, 100_000)
        if n <= most
    ]
    cutoffs = [
        Tick(round(left + c * width, 2), f"{name} {c:g}")
        for name, c in (("ham ≤", ham_cutoff), ("spam ≥", spam_cutoff))
    ]
    return HistogramChart(bars, _fraction_ticks(left, width), y_ticks, cutoffs)
