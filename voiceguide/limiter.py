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
WINDOW = round(LIMITER_SECONDS * audio.SAMPLE_RATE)
# What one output sample depends on: the gain's hold and average on each side, and the interpolator.
CONTEXT = 3 * WINDOW + meter.INTERPOLATION_TAPS
PEAK_PIECE = 32768  # samples _sample_peaks oversamples at once
TOLERANCE = 0.05  # LU: how near level() brings a clip to the loudness asked for


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
    """At each sample, the largest magnitude of the oversampled signal near it.

    A piece at a time: the interpolator's steps then work in the processor's cache, three times faster.
    """
    half = meter.INTERPOLATION_TAPS // 2
    extended = np.pad(samples, (half, half - 1))
    reach = PEAK_PIECE + meter.INTERPOLATION_TAPS - 1
    starts = range(0, max(len(samples), 1), PEAK_PIECE)
    points = np.concatenate([meter.oversampled_peaks(extended[start : start + reach]) for start in starts])
    return np.maximum(points, np.abs(samples))


def _headroom(peaks: np.ndarray, ceiling: float) -> np.ndarray:
    """The most gain each sample could take with every peak within WINDOW of it staying under `ceiling`
    dBTP (`peaks` from _sample_peaks); WINDOW more on each side, for _gains to smooth."""
    room = meter.gain(ceiling) / np.maximum(peaks, 1e-12)
    return _moving_min(np.pad(room, WINDOW, constant_values=np.inf), 2 * WINDOW + 1)


def _gains(headroom: np.ndarray, boost: float) -> np.ndarray:
    """The limiter's gain at each sample of a signal made `boost` times louder: never more than the
    headroom allows, and moving smoothly (it never takes the gain above 1)."""
    return _moving_mean(np.minimum(1.0, headroom / boost), WINDOW + 1)[: len(headroom) - 2 * WINDOW]


def limit(samples: np.ndarray, ceiling: float, peaks: np.ndarray) -> np.ndarray:
    """Float samples turned down smoothly wherever their `peaks` (from _sample_peaks) pass `ceiling` dBTP."""
    return samples * _gains(_headroom(peaks, ceiling), 1.0)


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
    """int16 samples brought to `loudness` LUFS as `measure` reads it, true-peak limited to `ceiling` dBTP.

    Limiting takes some loudness away, so the boost is searched for on an estimate of what the
    limited clip measures (meter.JoinedClip's, from the clip K-weighted once); `measure` then
    checks the boost found, and what it reads corrects the estimate if the search must go on.
    The estimate is close: one check usually does.
    """
    original = samples.astype(np.float64) / audio.FULL_SCALE
    clip = meter.JoinedClip(original)
    measured = clip.loudness()
    if not math.isfinite(measured):
        return samples
    headroom = _headroom(_sample_peaks(original), ceiling)
    coarse = _block_means(headroom[: len(original) + WINDOW], meter.ESTIMATE_BLOCK)  # as far as _gains reads

    def estimate(boost: float) -> float:
        return clip.estimate(meter.gain(boost) * _coarse_gains(coarse, meter.gain(boost)))

    boost, correction = loudness - measured, 0.0
    for _ in range(4):
        boost = _boost_for(estimate, loudness - correction, boost)
        out = original * meter.gain(boost) * _gains(headroom, meter.gain(boost))
        reached = measure(out)
        if not math.isfinite(reached):
            return samples
        if abs(loudness - reached) < TOLERANCE:
            break
        correction = reached - estimate(boost)  # the estimate's error here
    if headroom.min() < meter.gain(boost):  # the limiter acted; it follows peaks only closely
        excess = 20 * math.log10(_sample_peaks(out).max()) - ceiling
        if excess > 0:
            out *= meter.gain(-excess)
    return _to_int16(out)


def _block_means(values: np.ndarray, block: int) -> np.ndarray:
    starts = np.arange(0, len(values), block)
    return np.add.reduceat(values, starts) / np.diff(starts, append=len(values))


def _coarse_gains(coarse: np.ndarray, boost: float) -> np.ndarray:
    """_gains for each meter.ESTIMATE_BLOCK samples, from the headroom's mean in each block (`coarse`)."""
    return _moving_mean(np.minimum(1.0, coarse / boost), round((WINDOW + 1) / meter.ESTIMATE_BLOCK))


def _boost_for(estimate: Callable[[float], float], loudness: float, boost: float) -> float:
    """The boost at which `estimate` reads `loudness` (within a fifth of TOLERANCE), by secant steps from `boost`.

    More boost never takes loudness away, nor adds more than itself: slopes outside (0, 1] are noise.
    """
    slope, last = 1.0, None
    for _ in range(20):
        reached = estimate(boost)
        if abs(loudness - reached) < TOLERANCE / 5:
            break
        if last is not None:
            slope = min(1.0, max(0.05, (reached - last[1]) / (boost - last[0])))
        last = (boost, reached)
        boost += (loudness - reached) / slope
    return boost
