"""The markdown bench/spam_accuracy.py writes: tables per protocol and the issue's targets, Postdesk vs bogofilter."""

from __future__ import annotations

from collections.abc import Sequence

from bench.spam_drift import SourceLine, Swap, kept
from classifier.evaluate import Figures

FILTERS = ("Postdesk", "bogofilter")
Rows = list[tuple[str, str, Figures]]  # (protocol, filter, figures)


def batch_table(rows: Rows) -> list[str]:
    lines = [
        "| protocol | filter | ham | spam | FP | FP % (decided ham) | FN | FN % (decided spam) "
        "| unsure ham | unsure spam | 1-ROCA % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for protocol, name, f in rows:
        lines.append(
            f"| {protocol} | {name} | {f.n_ham} | {f.n_spam} | {f.fp} | {f.fp_rate:.2f} | {f.fn} | {f.fn_rate:.2f} "
            f"| {f.unsure_ham} | {f.unsure_spam} | {f.one_minus_roca:.3f} |"
        )
    return lines


def verdict_table(rows: Rows) -> list[str]:
    """Where the mail went: ham and spam each into Spam, Review and the inbox."""
    lines = [
        "| protocol | filter | ham | ham in Spam | ham in Review | spam | spam in Spam | spam left in Review | "
        "spam left in the inbox | spam left, % | 1-ROCA % |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for protocol, name, f in rows:
        lines.append(
            f"| {protocol} | {name} | {f.n_ham} | {f.fp} | {f.unsure_ham} | {f.n_spam} | "
            f"{f.n_spam - f.fn - f.unsure_spam} | {f.unsure_spam} | {f.fn} | {left(f):.1f} | {f.one_minus_roca:.3f} |"
        )
    return lines


def source_table(lines_by_filter: dict[str, list[SourceLine]]) -> list[str]:
    out = [
        "| held-out source | ham | spam | "
        + " | ".join(f"{name}: ham in Spam % | {name}: ham in Review % | {name}: spam left % " for name in FILTERS)
        + " |",
        "|---|---:|---:|" + "---:|" * 3 * len(FILTERS),
    ]
    for row in zip(*(lines_by_filter[name] for name in FILTERS), strict=True):
        first = row[0]
        cells = " | ".join(
            f"{r.ham_in_spam:.1f} | {r.ham_in_review:.1f} | {_or_dash(r.spam_left, r.n_spam)}" for r in row
        )
        out.append(f"| {first.source} | {first.n_ham} | {first.n_spam} | {cells} |")
    return out


def swap_lines(swaps_by_filter: dict[str, Sequence[Swap]], n_pairs: int) -> list[str]:
    out = [
        f"{n_pairs} pairs, {2 * n_pairs} swapped messages: the share that gets the verdict its body alone gets "
        "(the same message without channel headers).",
        "",
        "| filter | all | spam body under a ham list's headers | ham body under a spam's headers |",
        "|---|---:|---:|---:|",
    ]
    for name in FILTERS:
        swaps = swaps_by_filter[name]
        spam = [s for s in swaps if s.label == "spam"]
        ham = [s for s in swaps if s.label == "ham"]
        out.append(f"| {name} | {kept(swaps):.1f} % | {kept(spam):.1f} % | {kept(ham):.1f} % |")
    return out


def family_table(by_filter: dict[str, dict[float, Figures]]) -> list[str]:
    """The (d) family: 1-ROCA % at each cut and their mean, ham in Spam and spam left over all cuts."""
    cuts = list(next(iter(by_filter.values())))
    out = [
        "| filter | "
        + " | ".join(f"oldest {cut * 100:.0f} % → rest" for cut in cuts)
        + " | mean | ham in Spam | spam left |",
        "|---|" + "---:|" * (len(cuts) + 3),
    ]
    for name in FILTERS:
        family = by_filter[name]
        rocs = [family[cut].one_minus_roca for cut in cuts]
        cells = " | ".join(f"{r:.3f}" for r in rocs)
        fp = sum(f.fp for f in family.values())
        spam_left = sum(f.fn + f.unsure_spam for f in family.values())
        out.append(f"| {name} | {cells} | {sum(rocs) / len(rocs):.3f} | {fp} | {spam_left} |")
    return out


def batch_targets(rows: Rows) -> list[str]:
    """(a)-(c): no worse than bogofilter; a difference of one or two messages is called a tie."""
    by = {(protocol, name): f for protocol, name, f in rows}
    out = []
    for protocol in sorted({p for p, _, _ in rows}):
        ours, theirs = by[(protocol, "Postdesk")], by[(protocol, "bogofilter")]
        out.append(
            f"- {protocol}: 1-ROCA {ours.one_minus_roca:.3f} vs {theirs.one_minus_roca:.3f} % "
            f"({_lower(ours.one_minus_roca, theirs.one_minus_roca)}); FP {ours.fp} vs {theirs.fp} "
            f"({_compare(ours.fp, theirs.fp)}); FN {ours.fn} vs {theirs.fn} ({_compare(ours.fn, theirs.fn)}); "
            f"unsure {ours.unsure} vs {theirs.unsure}."
        )
    return out


def drift_target(protocol: str, ours: Figures, theirs: Figures) -> str:
    """(d), (e): pooled 1-ROCA, and spam left in Review or the inbox at no more ham in Spam."""
    met = ours.one_minus_roca <= theirs.one_minus_roca and ours.fp <= theirs.fp and left(ours) <= left(theirs)
    return (
        f"- {protocol}: 1-ROCA {ours.one_minus_roca:.3f} vs {theirs.one_minus_roca:.3f} % "
        f"({_lower(ours.one_minus_roca, theirs.one_minus_roca)}); ham in Spam {ours.fp} vs {theirs.fp}; "
        f"spam left in Review or the inbox {ours.fn + ours.unsure_spam} vs {theirs.fn + theirs.unsure_spam} "
        f"({left(ours):.1f} vs {left(theirs):.1f} %): {'MET' if met else 'NOT MET'}."
    )


def swap_target(swaps: Sequence[Swap]) -> str:
    share = kept(swaps)
    verdict = "MET" if share >= 95 else "NOT MET"
    return f"- (f) channel swap: {share:.1f} % keep the body's verdict (target 95 %): {verdict}."


def left(f: Figures) -> float:
    """% of spam left in Review or the inbox."""
    return 100.0 * (f.fn + f.unsure_spam) / f.n_spam if f.n_spam else 0.0


def _lower(a: float, b: float) -> str:
    return "lower" if a < b else "equal" if a == b else "HIGHER"


def _compare(a: int, b: int) -> str:
    if a == b:
        return "equal"
    more = f"{abs(a - b)} {'fewer' if a < b else 'more'}"
    return f"a tie, {more}" if abs(a - b) <= 2 else ("better" if a < b else "WORSE")


def _or_dash(value: float, n: int) -> str:
    return f"{value:.1f}" if n else "–"
