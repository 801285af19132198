"""The true-peak limiter: clips and sounds brought to a loudness under a peak ceiling, and the track
kept under its ceiling as it streams into the encoder.

The gain at each sample is the smallest gain needed anywhere near it, averaged over a short
window, so the limiter lets no peak through and never jumps (no clicks). Clips and sounds take
int16 samples in and give int16 samples out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from itertools import chain

import numpy as np

from voiceguide import audio, meter

LIMITER_SECONDS = 0.01  # how fast the limiter's gain moves
# What one output sample depends on: the gain's hold and average on each side, and the interpolator.
CONTEXT = 3 * round(LIMITER_SECONDS * audio.SAMPLE_RATE) + meter.INTERPOLATION_TAPS


def _moving_min(values: np.ndarray, size: int) -> np.ndarray:
    """min(values[i : i + size]) for every i, in linear time (van Herk / Gil-Werman)."""
    count = len(values)
    padded = np.concatenate([values, np.full(-count % size + size, np.inf)])
    blocks = padded.reshape(-1, size)
    prefix = np.minimum.accumulate(blocks, axis=1).ravel()
    suffix = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(suffix[:count], prefix[size - 1 : size - 1 + count])


def _moving_mean(values: np.ndarray, size: int) -> np.ndarray:
    sums = np.concatenate([[0.0], np.cumsum(values)])
    return (sums[size:] - sums[:-size]) / size


def _sample_peaks(samples: np.ndarray) -> np.ndarray:
    """At each sample, the largest magnitude of the oversampled signal near it."""
    half = meter.INTERPOLATION_TAPS // 2
    return np.maximum(meter.oversampled_peaks(np.pad(samples, (half, half - 1))), np.abs(samples))


def limit(samples: np.ndarray, ceiling: float, peaks: np.ndarray) -> np.ndarray:
    """Float samples turned down smoothly wherever their `peaks` (from _sample_peaks) pass `ceiling` dBTP."""
    needed = np.minimum(1.0, meter.gain(ceiling) / np.maximum(peaks, 1e-12))
    if needed.min() >= 1.0:
        return samples
    window = round(LIMITER_SECONDS * audio.SAMPLE_RATE)
    held = _moving_min(np.pad(needed, window, constant_values=1.0), 2 * window + 1)
    return samples * _moving_mean(held, window + 1)[: len(samples)]


def _limited(before: np.ndarray, samples: np.ndarray, after: np.ndarray, ceiling: float) -> np.ndarray:
    """Float `samples` limited as they would be inside the whole signal; `before` and `after` are its context."""
    around = np.concatenate([before, samples, after])
    if meter.true_peak(around) <= ceiling:
        return samples
    return limit(around, ceiling, _sample_peaks(around))[len(before) : len(before) + len(samples)]


def limit_stream(blocks: Iterable[np.ndarray], ceiling: float) -> Iterator[np.ndarray]:
    """int16 blocks true-peak limited to `ceiling` dBTP, streamed, at unity gain everywhere else.

    The limiter looks only near blocks loud enough that a point could pass the ceiling (see
    meter.overshoot_bound), and as it looks a little ahead, a block comes out once the next is
    in. Blocks shorter than that look-ahead are joined first; the total length is the same.
    """
    quiet = meter.gain(ceiling) / meter.overshoot_bound() * audio.FULL_SCALE  # nothing near samples this soft can pass
    marked = ((block, audio.peak(block) > quiet) for block in _joined(blocks, CONTEXT))
    before = current = None  # (block, whether it is loud)
    for after in chain(marked, [None]):
        if current is not None:
            near = [entry for entry in (before, current, after) if entry is not None]
            if not any(loud for _, loud in near):
                yield current[0]
            else:
                head = before[0][-CONTEXT:] if before else current[0][:0]
                tail = after[0][:CONTEXT] if after else current[0][:0]
                scaled = [part / audio.FULL_SCALE for part in (head, current[0], tail)]
                yield _to_int16(_limited(scaled[0], scaled[1], scaled[2], ceiling))
        before, current = current, after


def _joined(blocks: Iterable[np.ndarray], size: int) -> Iterator[np.ndarray]:
    """The blocks, each joined with the ones after it while shorter than `size` (the last may stay shorter)."""
    pending: list[np.ndarray] = []
    for block in blocks:
        pending.append(block)
        if sum(len(part) for part in pending) >= size:
            yield pending[0] if len(pending) == 1 else np.concatenate(pending)
            pending = []
    if pending:
        yield np.concatenate(pending)


def _to_int16(samples: np.ndarray) -> np.ndarray:
    return audio.to_int16(samples * audio.FULL_SCALE)


def level(samples: np.ndarray, loudness: float, ceiling: float, measure: Callable[[np.ndarray], float]) -> np.ndarray:
    """int16 samples brought to `loudness` LUFS as `measure` reads it, true-peak limited to `ceiling` dBTP."""
    original = samples.astype(np.float64) / audio.FULL_SCALE
    measured = measure(original)
    if not math.isfinite(measured):
        return samples
    peaks = _sample_peaks(original)
    boost, slope, last = loudness - measured, 1.0, None
    for _ in range(6):  # limiting takes some loudness away, so search for the boost (secant steps)
        out = limit(original * meter.gain(boost), ceiling, peaks * meter.gain(boost))
        reached = measure(out)
        if abs(loudness - reached) < 0.05:
            break
        if last:
            slope = max(0.1, (reached - last[1]) / (boost - last[0]))
        last = (boost, reached)
        boost += (loudness - reached) / slope
    excess = 20 * math.log10(_sample_peaks(out).max()) - ceiling  # limit() follows peaks only closely
    if excess > 0:
        out *= meter.gain(-excess)
    return _to_int16(out)
