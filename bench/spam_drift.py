"""The drift protocols of bench/spam_accuracy.py: what a filter meets after it was trained.

(d) time: train on the oldest half by date, judge the newest half (`classifier.evaluate.time_split`).
(e) source shift: for each of the ten largest sources (the List-Id, else the sending domain), train on
    every other source and judge this one (`classifier.evaluate.source_shift`), pooled.
(f) channel swap: a spam body under a ham message's list and relay headers, and a ham body under a
    spam's (`bench.channel_swap`); the share of swapped messages that get the verdict their body
    alone gets, trained as in (d) and judged on mail of (d)'s newest half.
(d) family: (d) at five cuts (train on the oldest 30 ... 70 %), so that a default chosen by (d) does
    not rest on one cut of 137 spam.
Each protocol takes the same `fit(train) -> judge` as the others, so Postdesk and bogofilter are
measured by the same code on the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bench import channel_swap
from classifier.evaluate import Example, Figures, Outcome, figures, source_shift, time_split
from models.mail.message import ParsedMessage

N_SOURCES = 10
FAMILY_CUTS = (0.3, 0.4, 0.5, 0.6, 0.7)


def source_of(msg: ParsedMessage) -> str:
    """Where a message came from: its list (List-Id), or else the domain of its From address."""
    list_id = msg.header("list-id")
    if list_id:
        return "list " + list_id.lower().rpartition("<")[2].strip(" >")
    return "domain " + (msg.from_.address.rpartition("@")[2] if msg.from_ else "(none)")


def halves(examples: Sequence[Example]) -> tuple[list[int], list[int]]:
    """Indices of the oldest and the newest half by time, as `time_split(examples, fit, 0.5)` cuts them."""
    order = sorted(range(len(examples)), key=lambda i: examples[i][2])  # stable, as `in_time_order`
    cut = int(round(len(order) * 0.5))
    return order[:cut], order[cut:]


def by_source(examples: Sequence[Example], sources: Sequence[str], fit) -> dict[str, list[Outcome]]:
    """(e): outcomes per held-out source, largest first."""
    return source_shift(examples, sources, fit, N_SOURCES)


@dataclass(frozen=True)
class SourceLine:
    """One held-out source under one filter: its size and where its mail went."""

    source: str
    n_ham: int
    ham_in_spam: float  # % of the source's ham
    ham_in_review: float
    n_spam: int
    spam_left: float  # % of the source's spam left in Review or the inbox


def source_lines(per_source: dict[str, list[Outcome]]) -> list[SourceLine]:
    lines = []
    for source, outcomes in per_source.items():
        f = figures(outcomes)
        lines.append(
            SourceLine(
                source,
                f.n_ham,
                _pct(f.fp, f.n_ham),
                _pct(f.unsure_ham, f.n_ham),
                f.n_spam,
                _pct(f.fn + f.unsure_spam, f.n_spam),
            )
        )
    return lines


def pooled(per_source: dict[str, list[Outcome]]) -> Figures:
    return figures([o for outcomes in per_source.values() for o in outcomes])


@dataclass(frozen=True)
class Swap:
    """One swapped message: its label, the verdict its body alone gets and the verdict under the swap."""

    label: str
    alone: str
    swapped: str


def channel_swaps(
    raws: Sequence[bytes], examples: Sequence[Example], newest: Sequence[int], n_pairs: int, seed: int = 0
) -> list[tuple[str, bytes, bytes]]:
    """(label, body alone, body under the other's channel) for `n_pairs` (ham, spam) pairs of the newest half:
    the ham is one that came through a list, so its channel is one the model has learned as ham."""
    ham = [i for i in newest if examples[i][1] == "ham" and channel_swap.has_list_headers(raws[i])]
    spam = [i for i in newest if examples[i][1] == "spam"]
    out = []
    for h, s in channel_swap.pairs(ham, spam, n_pairs, seed):
        for body, donor in ((s, h), (h, s)):
            out.append(
                (
                    examples[body][1],
                    channel_swap.without_channel(raws[body]),
                    channel_swap.swapped(raws[body], raws[donor]),
                )
            )
    return out


def judge_swaps(judge: Callable, swaps: Sequence[tuple[str, object, object]]) -> list[Swap]:
    """`swaps` hold what `judge` takes (features, or a file path) for the body alone and for the swap."""
    return [Swap(label, judge(alone)[1], judge(under)[1]) for label, alone, under in swaps]


def kept(swaps: Sequence[Swap]) -> float:
    """% of swapped messages whose verdict is the one their body alone gets."""
    return _pct(sum(s.alone == s.swapped for s in swaps), len(swaps))


def time_and_swaps(
    examples: Sequence[Example], fit, swap_inputs: Sequence[tuple[str, object, object]]
) -> tuple[list[Outcome], list[Swap]]:
    """(d) and (f): one filter, fitted on the oldest half, judges the newest half and the swapped messages."""
    oldest, newest = halves(examples)
    judge = fit([examples[i] for i in oldest])
    return [Outcome(examples[i][1], *judge(examples[i][0])) for i in newest], judge_swaps(judge, swap_inputs)


def time_family(examples: Sequence[Example], fit) -> dict[float, Figures]:
    """The (d) family: figures of the newest part at each of `FAMILY_CUTS`, trained on the oldest."""
    return {cut: figures(time_split(examples, fit, train_fraction=cut)) for cut in FAMILY_CUTS}


def time_outcomes(examples: Sequence[Example], fit) -> list[Outcome]:
    """(d) alone."""
    return time_split(examples, fit, train_fraction=0.5)


def _pct(part: int, whole: int) -> float:
    return 100.0 * part / whole if whole else 0.0
