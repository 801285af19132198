"""Loudness: an ITU-R BS.1770-4 meter, a true-peak estimate, and levelling of clips and tracks.

Levels are set where the parts are made: every speech clip is brought to the target loudness
and peak-limited when it enters the clip cache, and every sound is set a fixed number of LU
below the voice, so the mix is even. The finished track then differs from the target only by
what its pauses and sounds do to the gated measure, so the build meters a first rendering
(cheap: no encoding), streams the second one through a gain and a true-peak limiter into the
encoder, and meters the MP3 as a player decodes it. Memory stays flat in every pass.

The meter takes float samples in [-1, 1] at audio.SAMPLE_RATE, mono; level() takes and returns
int16 clips. Filters run as FFT convolutions with truncated impulse responses, so nothing loops
over samples in Python.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from voiceguide import audio

TARGET_LUFS = -16.0  # integrated loudness of the voice, and so of the track (spoken-word standard)
TRUE_PEAK_LIMIT = -1.0  # dBTP, for the finished track
TRACK_PEAK = TRUE_PEAK_LIMIT - 1.5  # before encoding: MP3 coding lifts peaks, by up to about 1.5 dB
SPEECH_PEAK = TRACK_PEAK - 0.5  # clips stay a little lower, so the track's gain seldom needs the limiter
RETRY_MARGIN = 0.3  # dB below the limit for a track encoded again because MP3 coding lifted a peak
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


def _oversampled_peaks(extended: np.ndarray) -> np.ndarray:
    """Largest magnitude among the oversampled points of each window of INTERPOLATION_TAPS inputs."""
    return np.max([np.abs(np.convolve(extended, phase, mode="valid")) for phase in _interpolator()], axis=0)


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
        self._energies.append(np.mean(weighted[:whole].reshape(-1, self._step) ** 2, axis=1))
        self._pending = weighted[whole:]
        self._samples += len(samples)

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
        largest = float(np.abs(extended).max())
        if largest * _overshoot_bound() > self._peak:  # else no point between these samples can be higher
            self._peak = max(self._peak, float(_oversampled_peaks(extended).max()), largest)
        super().feed(samples)

    def true_peak(self) -> float:
        """The highest point of the 4x oversampled signal, in dBTP; -inf for silence."""
        return 20 * math.log10(self._peak) if self._peak else -math.inf


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


def boost_to_target(blocks: Iterable[np.ndarray]) -> float:
    """The gain in dB that brings a stream of int16 blocks to TARGET_LUFS (none for silence)."""
    meter = LoudnessMeter()
    for block in blocks:
        meter.feed(block / 32768)
    measured = meter.integrated()
    return TARGET_LUFS - measured if math.isfinite(measured) else 0.0


def measure_file(path: Path) -> Meter:
    """Loudness and true peak of an audio file as a player decodes it, read a second at a time."""
    meter = Meter()
    for block in audio.stream_file(path):
        meter.feed(block / 32768)
    return meter


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


def normalize(blocks: Iterable[np.ndarray], boost: float, ceiling: float) -> Iterator[np.ndarray]:
    """int16 blocks raised by `boost` dB and true-peak limited to `ceiling` dBTP, streamed.

    The limiter looks a little ahead, so the output runs a few milliseconds behind the input
    (its pieces are not the input's); the total length is the same.
    """
    context = 3 * round(LIMITER_SECONDS * audio.SAMPLE_RATE) + INTERPOLATION_TAPS  # what one output depends on
    before, pending = np.zeros(0), np.zeros(0)
    for block in blocks:
        pending = np.concatenate([pending, block * gain(boost) / 32768])
        if len(pending) > context:
            ready, pending = pending[:-context], pending[-context:]
            yield _to_int16(_limited(before, ready, pending, ceiling))
            before = np.concatenate([before, ready])[-context:]
    yield _to_int16(_limited(before, pending, np.zeros(0), ceiling))


def _to_int16(samples: np.ndarray) -> np.ndarray:
    return np.clip(np.round(samples * 32768), -32768, 32767).astype(np.int16)


def level(samples: np.ndarray, loudness: float, ceiling: float) -> np.ndarray:
    """int16 samples brought to `loudness` LUFS, peak-limited to `ceiling` dBTP."""
    original = samples.astype(np.float64) / 32768
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
