"""Fitting holds to a length: pure arithmetic on sample counts, no routine or audio involved.

Every flexible hold moves from its natural length in proportion to that length and its weight,
so a two-minute stroke sequence stretches more than a ten-second pause. A hold that reaches a
bound stops there and the others keep absorbing the difference. The result sums exactly to the
target, to the sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BISECTION_STEPS = 200


@dataclass(frozen=True)
class Hold:
    natural: int
    minimum: int
    maximum: int
    weight: float = 1.0

    def __post_init__(self):
        if not 0 <= self.minimum <= self.natural <= self.maximum:
            raise ValueError(f"bounds out of order: {self}")


class Unreachable(ValueError):
    """The target is outside what the holds' bounds allow."""

    def __init__(self, shortest: int, longest: int):
        self.shortest, self.longest = shortest, longest
        super().__init__(f"holds can total {shortest} to {longest} samples")


def fit(holds: list[Hold], target: int) -> list[int]:
    """Hold lengths within their bounds that sum exactly to `target`."""
    natural = np.array([hold.natural for hold in holds], dtype=np.float64)
    low = np.array([hold.minimum for hold in holds], dtype=np.float64)
    high = np.array([hold.maximum for hold in holds], dtype=np.float64)
    rate = natural * np.array([hold.weight for hold in holds], dtype=np.float64)
    if not low.sum() <= target <= high.sum():
        raise Unreachable(int(low.sum()), int(high.sum()))

    def lengths(scale: float) -> np.ndarray:
        return np.clip(natural + scale * rate, low, high)

    # The total grows with `scale`; find the scale whose total is the target.
    below, above = -1.0, 1.0
    while lengths(below).sum() > target:
        below *= 2
    while lengths(above).sum() < target:
        above *= 2
    for _ in range(BISECTION_STEPS):
        middle = (below + above) / 2
        if lengths(middle).sum() < target:
            below = middle
        else:
            above = middle
    return _round_exactly(lengths(above), low, high, target)


def _round_exactly(lengths: np.ndarray, low: np.ndarray, high: np.ndarray, target: int) -> list[int]:
    """Whole samples summing to `target`: round down, then hand the remainder to the largest fractions."""
    whole = np.floor(lengths)
    fractions = lengths - whole
    remainder = int(target - whole.sum())
    if remainder > 0:
        order = [i for i in np.argsort(-fractions, kind="stable") if whole[i] < high[i]]
        for index in order[:remainder]:
            whole[index] += 1
    elif remainder < 0:
        order = [i for i in np.argsort(fractions, kind="stable") if whole[i] > low[i]]
        for index in order[:-remainder]:
            whole[index] -= 1
    result = [int(value) for value in whole]
    assert sum(result) == target, (sum(result), target)
    return result
