"""The spam page's chart geometry: curves and bars land where their values say, on a log scale
for counts, and missing or malformed curves draw nothing rather than fail."""

from __future__ import annotations

from postdesk.web import charts


def test_the_roc_curve_runs_from_the_bottom_left_to_the_top_right_of_its_plot():
    chart = charts.roc([[0.0, 0.0], [0.0, 0.5], [0.25, 1.0], [1.0, 1.0]])
    left, top, width, height = charts.ROC_BOX
    xy = [tuple(float(v) for v in p.split(",")) for p in chart.points.split()]
    assert xy == [(left, top + height), (left, top + height / 2), (left + width / 4, top), (left + width, top)]
    assert [t.text for t in chart.x_ticks] == ["0", "0.25", "0.5", "0.75", "1"]
    assert chart.y_ticks[0].at == top + height and chart.y_ticks[-1].at == top  # 0 at the bottom


def test_histogram_bars_stand_side_by_side_with_log_heights_and_the_cutoffs_are_marked():
    chart = charts.histogram({"bins": 2, "ham": [99, 0], "spam": [9, 999]}, 0.2, 0.99)
    left, top, width, height = charts.HIST_BOX
    ham_low, spam_low, ham_high, spam_high = chart.bars
    assert (ham_low.label, ham_low.x, ham_low.width) == ("ham", left, width / 4)
    assert (spam_low.label, spam_low.x) == ("spam", left + width / 4)
    assert spam_high.height == height and ham_high.height == 0
    assert ham_low.height == round(height * 2 / 3, 2) and spam_low.height == round(height / 3, 2)  # log10: 2 of 3
    assert (ham_low.low, ham_low.high, spam_high.low, spam_high.high) == (0.0, 0.5, 0.5, 1.0)
    assert [c.text for c in chart.cutoffs] == ["ham ≤ 0.2", "spam ≥ 0.99"]
    assert chart.cutoffs[1].at == round(left + 0.99 * width, 2)
    assert [t.text for t in chart.y_ticks] == ["0", "1", "10", "100"]


def test_without_curves_there_is_nothing_to_draw():
    assert charts.roc([]) is None and charts.roc([[0, 0]]) is None
    assert charts.histogram({}, 0.2, 0.99) is None
    assert charts.histogram({"bins": 3, "ham": [1], "spam": [1, 2, 3]}, 0.2, 0.99) is None
