"""Loudness: an ITU-R BS.1770-4 meter, a true-peak estimate, and levelling of clips and tracks.

Levels are set where the parts are made: every speech clip is brought to the target loudness
and peak-limited when it enters the clip cache, and every sound is set a fixed number of LU
below the voice, so the mix is even. The finished track then differs from the target only by
what its pauses and sounds do to the gated measure, so the build meters a first rendering
(cheap: no encoding, and silence costs next to nothing), then streams the second one through a
gain and a true-peak limiter into the encoder. Memory stays flat in every pass.

The meter takes float samples in [-1, 1] at audio.SAMPLE_RATE, mono; level() takes and returns
int16 clips. Filters run as FFT convolutions with truncated impulse responses, so nothing loops
over samples in Python.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from itertools import chain
from typing import Iterable, Iterator

import numpy as np

from voiceguide import audio

TARGET_LUFS = -16.0  # integrated loudness of the voice, and so of the track (spoken-word standard)
TRUE_PEAK_LIMIT = -1.0  # dBTP, for the finished track as a player decodes it
# MP3 coding lifts true peaks: in the bundled routines by 0.6 to 1.8 dB, and once by 2.6 dB (in a
# sibilant, which the coder may code with little accuracy). The build checks the MP3 where it
# could pass the limit, and encodes again if it does; this headroom makes that rare.
TRACK_PEAK = TRUE_PEAK_LIMIT - 2.0  # before encoding
# Clips stay lower still: a track's gain (its sounds and pauses ask for up to 1 dB) seldom needs the limiter.
SPEECH_PEAK = TRACK_PEAK - 1.0
RETRY_MARGIN = 0.5  # dB below the limit for a track encoded again because MP3 coding lifted a peak
TRUE_PEAK_ACCURACY = 0.05  # dB this 4x estimate may read under one with a longer interpolator (scipy's, say)
SOUND_LUFS = TARGET_LUFS - 8.0  # chimes and cues: clearly heard, but softer than the voice
SOUND_PEAK = -8.0  # dBTP: and their strike never peaks near the voice's peaks

BLOCK_SECONDS = 0.4  # gating block
STEP_SECONDS = 0.1  # 75% overlap
ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = -10.0  # LU below the loudness of the blocks that pass the absolute gate
OVERSAMPLING = 4  # for the true-peak estimate
IMPULSE_LENGTH = 4096  # K-weighting decays below 1e-9 within this many samples at 44.1 kHz
FFT_SIZE = 1 << 16  # K-weighting runs on chunks of FFT_SIZE - IMPULSE_LENGTH + 1 samples
INTERPOLATION_TAPS = 12  # per phase of the true-peak interpolator (48 in all, as in BS.1770-4)
PEAK_PIECE = 1024  # samples: the true-peak search rules out whole pieces this long at once
LIMITER_SECONDS = 0.01  # how fast the limiter's gain moves


def gain(db: float) -> float:
    return 10 ** (db / 20)


def _biquad_response(b: np.ndarray, a: np.ndarray, frequencies: np.ndarray) -> np.ndarray:
    z = np.exp(-1j * frequencies)  # z^-1
    return np.polyval(b[::-1], z) / np.polyval(a[::-1], z)


def k_weighting_coefficients(rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two K-weighting biquads (b, a) at `rate`, by the bilinear transform of their analog
    prototypes (as in libebur128); at 48 kHz they reproduce the coefficients tabled in BS.1770-4.
    """
    # Stage 1: the head's acoustic effect, a +4 dB high shelf.
    k = math.tan(math.pi * 1681.974450955533 / rate)
    q = 0.7071752369554196
    high = 10 ** (3.999843853973347 / 20)
    band = high**0.4996667741545416
    shelf_b = np.array([high + band * k / q + k * k, 2 * (k * k - high), high - band * k / q + k * k])
    shelf_a = np.array([1 + k / q + k * k, 2 * (k * k - 1), 1 - k / q + k * k])
    # Stage 2: the RLB high pass; BS.1770 keeps its numerator at [1, -2, 1].
    k = math.tan(math.pi * 38.13547087602444 / rate)
    q = 0.5003270373238773
    pass_a = np.array([1 + k / q + k * k, 2 * (k * k - 1), 1 - k / q + k * k])
    return [(shelf_b / shelf_a[0], shelf_a / shelf_a[0]), (np.array([1.0, -2.0, 1.0]), pass_a / pass_a[0])]


@functools.cache
def _k_weighting_spectrum(rate: int) -> np.ndarray:
    """The K-weighting filter's impulse response, truncated, as an rfft of FFT_SIZE.

    The response comes from the filter's frequency response on a grid fine enough that it dies
    out long before it could wrap around.
    """
    size = 16 * IMPULSE_LENGTH
    frequencies = np.linspace(0, math.pi, size // 2 + 1)
    response = np.ones_like(frequencies, dtype=complex)
    for b, a in k_weighting_coefficients(rate):
        response *= _biquad_response(b, a, frequencies)
    return np.fft.rfft(np.fft.irfft(response, size)[:IMPULSE_LENGTH], FFT_SIZE)


@functools.cache
def _interpolator() -> np.ndarray:
    """Kaiser-windowed sinc phases for OVERSAMPLING x interpolation, as (phase, tap).

    With 'valid' convolution, output i of phase p is the signal at input i + INTERPOLATION_TAPS / 2 + p / 4.
    """
    centre = INTERPOLATION_TAPS // 2 - 1
    positions = np.arange(INTERPOLATION_TAPS)[None, :] - centre + np.arange(OVERSAMPLING)[:, None] / OVERSAMPLING
    half_width = INTERPOLATION_TAPS / 2 + 1
    window = np.i0(8.0 * np.sqrt(1 - (positions / half_width) ** 2)) / np.i0(8.0)
    return np.sinc(positions) * window


@functools.cache
def _overshoot_bound() -> float:
    """How far above the largest sample an interpolated point can be, at most."""
    return float(np.abs(_interpolator()).sum(axis=1).max())


@functools.cache
def _forward_taps() -> np.ndarray:
    """The interpolator's phases reversed (so output i sums taps times inputs i, i + 1, ...), in float32."""
    return np.ascontiguousarray(_interpolator()[:, ::-1], dtype=np.float32)


def _oversampled_peaks(extended: np.ndarray) -> np.ndarray:
    """Largest magnitude among the oversampled points of each window of INTERPOLATION_TAPS inputs.

    Along the last axis; in float32, as a dozen whole-array steps (numpy's convolve is several times slower).
    """
    extended = np.asarray(extended, dtype=np.float32)
    count = extended.shape[-1] - INTERPOLATION_TAPS + 1
    taps = _forward_taps().reshape((OVERSAMPLING, INTERPOLATION_TAPS) + (1,) * extended.ndim)
    points = taps[:, 0] * extended[..., :count]
    for k in range(1, INTERPOLATION_TAPS):
        points += taps[:, k] * extended[..., k : k + count]
    return np.abs(points).max(axis=0)


def _highest_point(extended: np.ndarray, floor: float) -> float:
    """max(floor, the largest sample, the highest oversampled point the samples determine).

    Only pieces that could hold a point above the highest known are oversampled (see
    _overshoot_bound), the loudest few first, so a long stretch costs little more than finding
    its largest sample.
    """
    magnitudes = np.abs(extended)
    peak = max(floor, float(magnitudes.max(initial=0.0)))
    windows = len(extended) - INTERPOLATION_TAPS + 1
    if windows <= 0 or magnitudes.max() * _overshoot_bound() <= peak:
        return peak
    pieces = -(-windows // PEAK_PIECE)
    padded = np.pad(extended, (0, (pieces + 1) * PEAK_PIECE - len(extended)))
    largest = np.abs(padded).reshape(-1, PEAK_PIECE).max(axis=1)
    reach = np.maximum(largest[:-1], largest[1:])  # a piece's windows reach into the next piece
    views = np.lib.stride_tricks.sliding_window_view(padded, PEAK_PIECE + INTERPOLATION_TAPS - 1)[::PEAK_PIECE]
    order = np.argsort(reach)[::-1]
    for chosen in (order[:4], order[4:]):  # the loudest raise `peak`, so fewer of the rest need a look
        chosen = chosen[reach[chosen] * _overshoot_bound() > peak]
        if len(chosen):
            points = _oversampled_peaks(views[chosen])
            points[np.arange(PEAK_PIECE) >= windows - chosen[:, None] * PEAK_PIECE] = 0  # past the last window
            peak = max(peak, float(points.max()))
    return peak


def _dbtp(peak: float) -> float:
    return 20 * math.log10(peak) if peak else -math.inf


def true_peak(samples: np.ndarray, at_least: float = -math.inf) -> float:
    """The highest point of float `samples`, 4x oversampled, in dBTP, or `at_least` if that is higher.

    Only the points the samples determine count, so give a few samples of context on each side.
    A high `at_least` saves work: no stretch that cannot pass it is oversampled.
    """
    return _dbtp(_highest_point(np.asarray(samples, dtype=np.float64), gain(at_least)))


class LoudnessMeter:
    """Integrated loudness (BS.1770-4, mono) of a stream fed in pieces of any size.

    It keeps the mean square of every 100 ms of K-weighted audio (ten numbers a second), so a
    long track needs little memory.
    """

    def __init__(self, rate: int = audio.SAMPLE_RATE):
        self._spectrum = _k_weighting_spectrum(rate)
        self._step = round(STEP_SECONDS * rate)
        self._history = np.zeros(IMPULSE_LENGTH - 1)  # the last inputs, which the filter still needs
        self._pending = np.zeros(0)  # K-weighted samples not yet making a whole 100 ms step
        self._energies: list[np.ndarray] = []
        self._samples = 0

    def feed(self, samples: np.ndarray) -> None:
        chunk = FFT_SIZE - len(self._history)
        for start in range(0, len(samples), chunk):
            self._filter(np.asarray(samples[start : start + chunk], dtype=np.float64))

    def _filter(self, samples: np.ndarray) -> None:
        extended = np.concatenate([self._history, samples])
        self._history = extended[len(samples) :]
        filtered = np.fft.irfft(np.fft.rfft(extended, FFT_SIZE) * self._spectrum, FFT_SIZE)
        weighted = np.concatenate([self._pending, filtered[IMPULSE_LENGTH - 1 : len(extended)]])
        whole = len(weighted) // self._step * self._step
        self._keep(np.mean(weighted[:whole].reshape(-1, self._step) ** 2, axis=1))
        self._pending = weighted[whole:]
        self._samples += len(samples)

    def skip(self, count: int) -> None:
        """Take `count` samples of digital silence: once the filter has rung out, they only add steps of no energy."""
        settle = min(count, len(self._history)) if self._history.any() else 0
        if settle:
            self.feed(np.zeros(settle))
        steps, left = divmod(len(self._pending) + count - settle, self._step)
        if steps:
            energies = np.zeros(steps)
            energies[0] = np.sum(self._pending**2) / self._step
            self._keep(energies)
            self._pending = np.zeros(left)
        else:
            self._pending = np.concatenate([self._pending, np.zeros(count - settle)])
        self._samples += count - settle

    def _keep(self, energies: np.ndarray) -> None:
        """Keep step energies, joined now and then: one long array takes far less memory than many short ones."""
        self._energies.append(energies)
        if len(self._energies) >= 64:
            self._energies = [np.concatenate(self._energies)]

    def integrated(self) -> float:
        """Gated loudness in LUFS; -inf for silence. Audio shorter than one block counts as one block."""
        steps = np.concatenate(self._energies) if self._energies else np.zeros(0)
        per_block = round(BLOCK_SECONDS / STEP_SECONDS)
        if len(steps) >= per_block:
            blocks = np.lib.stride_tricks.sliding_window_view(steps, per_block).mean(axis=1)
        elif self._samples:
            blocks = np.array([(steps.sum() * self._step + np.sum(self._pending**2)) / self._samples])
        else:
            return -math.inf
        gated = blocks[_lufs(blocks) > ABSOLUTE_GATE]
        if not gated.size:
            return -math.inf
        threshold = _lufs(gated.mean()) + RELATIVE_GATE
        return float(_lufs(gated[_lufs(gated) > threshold].mean()))


class Meter(LoudnessMeter):
    """Integrated loudness and true peak of a stream."""

    def __init__(self, rate: int = audio.SAMPLE_RATE):
        super().__init__(rate)
        self._peak = 0.0

    def feed(self, samples: np.ndarray) -> None:
        if not len(samples):
            return
        samples = np.asarray(samples, dtype=np.float64)
        extended = np.concatenate([self._history[len(self._history) - INTERPOLATION_TAPS + 1 :], samples])
        self._peak = _highest_point(extended, self._peak)
        super().feed(samples)

    def true_peak(self) -> float:
        """The highest point of the 4x oversampled signal, in dBTP; -inf for silence."""
        return _dbtp(self._peak)


def _lufs(mean_squares):
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(mean_squares)


def integrated_loudness(samples: np.ndarray) -> float:
    meter = LoudnessMeter()
    meter.feed(samples)
    return meter.integrated()


def loudness_in_track(samples: np.ndarray) -> float:
    """A clip's loudness as it counts in a track: between pauses, whose gating blocks take in its edges."""
    pause = np.zeros(round(BLOCK_SECONDS * audio.SAMPLE_RATE))
    return integrated_loudness(np.concatenate([pause, samples, pause]))


@dataclass(frozen=True)
class Level:
    """How loud a stream is."""

    loudness: float  # LUFS, integrated
    true_peak: float  # dBTP

    def boost(self) -> float:
        """The gain in dB that brings the stream to TARGET_LUFS (none for silence)."""
        return TARGET_LUFS - self.loudness if math.isfinite(self.loudness) else 0.0


def _feed(meter: LoudnessMeter, block: np.ndarray) -> None:
    """Meter an int16 block; digital silence costs next to nothing."""
    if block.any():
        meter.feed(block / audio.FULL_SCALE)
    else:
        meter.skip(len(block))


def measure(blocks: Iterable[np.ndarray]) -> Level:
    """The level of a stream of int16 blocks."""
    meter = Meter()
    for block in blocks:
        _feed(meter, block)
    return Level(meter.integrated(), meter.true_peak())


class Levelled:
    """A stream measured as `mix`, brought to TARGET_LUFS and true-peak limited to `ceiling` dBTP.

    Its loudness is the mix's plus the gain; where the limiter has to work, it takes a little of
    that away, so then the stream is metered on its way out.
    """

    def __init__(self, blocks: Iterable[np.ndarray], mix: Level, ceiling: float):
        boost = mix.boost()
        self._blocks = normalize(blocks, boost, ceiling, mix.true_peak)
        self._loudness = mix.loudness + boost
        self._meter = None if _gain_fits(mix.true_peak, boost, ceiling) else LoudnessMeter()

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self._blocks:
            if self._meter:
                _feed(self._meter, block)
            yield block

    def loudness(self) -> float:
        """The integrated loudness, in LUFS, of the blocks given out."""
        return self._meter.integrated() if self._meter else self._loudness


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
    half = INTERPOLATION_TAPS // 2
    return np.maximum(_oversampled_peaks(np.pad(samples, (half, half - 1))), np.abs(samples))


def limit(samples: np.ndarray, ceiling: float, peaks: np.ndarray) -> np.ndarray:
    """Samples turned down smoothly wherever their `peaks` (from _sample_peaks) pass `ceiling` dBTP.

    The gain at each sample is the smallest gain needed anywhere near it, averaged over a short
    window, so it lets no peak through and never jumps (no clicks).
    """
    needed = np.minimum(1.0, gain(ceiling) / np.maximum(peaks, 1e-12))
    if needed.min() >= 1.0:
        return samples
    window = round(LIMITER_SECONDS * audio.SAMPLE_RATE)
    held = _moving_min(np.pad(needed, window, constant_values=1.0), 2 * window + 1)
    return samples * _moving_mean(held, window + 1)[: len(samples)]


def _limited(before: np.ndarray, samples: np.ndarray, after: np.ndarray, ceiling: float) -> np.ndarray:
    """`samples` limited as they would be inside the whole signal; `before` and `after` are its context."""
    around = np.concatenate([before, samples, after])
    if np.abs(around).max() * _overshoot_bound() <= gain(ceiling):
        return samples
    return limit(around, ceiling, _sample_peaks(around))[len(before) : len(before) + len(samples)]


def _gain_fits(true_peak: float, boost: float, ceiling: float) -> bool:
    """Whether a stream peaking at `true_peak` dBTP, raised by `boost` dB, stays under `ceiling` dBTP."""
    return true_peak + boost <= ceiling


def normalize(
    blocks: Iterable[np.ndarray], boost: float, ceiling: float, true_peak: float = math.inf
) -> Iterator[np.ndarray]:
    """int16 blocks raised by `boost` dB and true-peak limited to `ceiling` dBTP, streamed.

    Given the input's `true_peak`, a gain that keeps it under the ceiling only scales. Otherwise
    the limiter runs near blocks loud enough that a point could pass the ceiling (see
    _overshoot_bound), and as it looks a little ahead, a block comes out once the next is in.
    Blocks shorter than that look-ahead are joined first; the total length is the same.
    """
    scale = gain(boost)
    if _gain_fits(true_peak, boost, ceiling):
        yield from (audio.scaled(block, scale) for block in blocks)
        return
    context = 3 * round(LIMITER_SECONDS * audio.SAMPLE_RATE) + INTERPOLATION_TAPS  # what one output depends on
    quiet = gain(ceiling) / (scale * _overshoot_bound()) * audio.FULL_SCALE  # no point near samples this soft needs limiting
    marked = ((block, audio.peak(block) > quiet) for block in _joined(blocks, context))
    before = current = None  # (block, whether it is loud)
    for after in chain(marked, [None]):
        if current is not None:
            near = [entry for entry in (before, current, after) if entry is not None]
            if not any(loud for _, loud in near):
                yield audio.scaled(current[0], scale)
            else:
                head = before[0][-context:] if before else current[0][:0]
                tail = after[0][:context] if after else current[0][:0]
                yield _to_int16(_limited(*(part * scale / audio.FULL_SCALE for part in (head, current[0], tail)), ceiling))
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


def level(samples: np.ndarray, loudness: float, ceiling: float) -> np.ndarray:
    """int16 samples brought to `loudness` LUFS, peak-limited to `ceiling` dBTP."""
    original = samples.astype(np.float64) / audio.FULL_SCALE
    measured = loudness_in_track(original)
    if not math.isfinite(measured):
        return samples
    peaks = _sample_peaks(original)
    boost, slope, last = loudness - measured, 1.0, None
    for _ in range(6):  # limiting takes some loudness away, so search for the boost (secant steps)
        out = limit(original * gain(boost), ceiling, peaks * gain(boost))
        reached = loudness_in_track(out)
        if abs(loudness - reached) < 0.05:
            break
        if last:
            slope = max(0.1, (reached - last[1]) / (boost - last[0]))
        last = (boost, reached)
        boost += (loudness - reached) / slope
    excess = 20 * math.log10(_sample_peaks(out).max()) - ceiling  # limit() follows peaks only closely
    if excess > 0:
        out *= gain(-excess)
    return _to_int16(out)
