"""The meter: ITU-R BS.1770-4 loudness and true peak, for clips, sounds and the streaming track.

It takes float samples in [-1, 1] at audio.SAMPLE_RATE, mono. Filters run as FFT convolutions
with truncated impulse responses, and the true-peak interpolator as a dozen whole-array steps,
so nothing loops over samples in Python.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from voiceguide import audio, streams

BLOCK_SECONDS = 0.4  # gating block
STEP_SECONDS = 0.1  # 75% overlap
ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = -10.0  # LU below the loudness of the blocks that pass the absolute gate
OVERSAMPLING = 4  # for the true-peak estimate
IMPULSE_LENGTH = 4096  # K-weighting decays below 1e-9 within this many samples at 44.1 kHz
FFT_SIZE = 1 << 16  # K-weighting runs on chunks of FFT_SIZE - IMPULSE_LENGTH + 1 samples
INTERPOLATION_TAPS = 12  # per phase of the true-peak interpolator (48 in all, as in BS.1770-4)
PEAK_PIECE = 1024  # samples: the true-peak search rules out whole pieces this long at once
JOINED_SECONDS = 10.0  # a clip is measured repeated to at least this long (see joined_loudness)
TRUE_PEAK_ACCURACY = 0.05  # dB this 4x estimate may read under one with a longer interpolator (scipy's, say)


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
def overshoot_bound() -> float:
    """How far above the largest sample an interpolated point can be, at most."""
    return float(np.abs(_interpolator()).sum(axis=1).max())


@functools.cache
def _forward_taps() -> np.ndarray:
    """The interpolator's phases reversed (so output i sums taps times inputs i, i + 1, ...), in float32."""
    return np.ascontiguousarray(_interpolator()[:, ::-1], dtype=np.float32)


def oversampled_peaks(extended: np.ndarray) -> np.ndarray:
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
    overshoot_bound), the loudest few first, so a long stretch costs little more than finding
    its largest sample.
    """
    magnitudes = np.abs(extended)
    peak = max(floor, float(magnitudes.max(initial=0.0)))
    windows = len(extended) - INTERPOLATION_TAPS + 1
    if windows <= 0 or magnitudes.max() * overshoot_bound() <= peak:
        return peak
    pieces = -(-windows // PEAK_PIECE)
    padded = np.pad(extended, (0, (pieces + 1) * PEAK_PIECE - len(extended)))
    largest = np.abs(padded).reshape(-1, PEAK_PIECE).max(axis=1)
    reach = np.maximum(largest[:-1], largest[1:])  # a piece's windows reach into the next piece
    views = np.lib.stride_tricks.sliding_window_view(padded, PEAK_PIECE + INTERPOLATION_TAPS - 1)[::PEAK_PIECE]
    order = np.argsort(reach)[::-1]
    for chosen in (order[:4], order[4:]):  # the loudest raise `peak`, so fewer of the rest need a look
        chosen = chosen[reach[chosen] * overshoot_bound() > peak]
        if len(chosen):
            points = oversampled_peaks(views[chosen])
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


def _lufs(mean_squares):
    with np.errstate(divide="ignore"):
        return -0.691 + 10 * np.log10(mean_squares)


def integrated_loudness(samples: np.ndarray) -> float:
    meter = LoudnessMeter()
    meter.feed(samples)
    return meter.integrated()


def joined_loudness(samples: np.ndarray) -> float:
    """A clip's loudness as it counts in the voice's, which is measured over all the speech joined end to end.

    The clip is measured repeated end to end (JOINED_SECONDS at least), so each of its samples
    counts alike, as among other lines, and its own pauses are gated as they are in the whole.
    Alone, a short line's gating blocks would count its middle more than its ends.
    """
    repeats = max(1, math.ceil(JOINED_SECONDS * audio.SAMPLE_RATE / max(len(samples), 1)))
    return integrated_loudness(np.tile(samples, repeats))


def loudness_in_track(samples: np.ndarray) -> float:
    """A clip's loudness as it counts in a track: between pauses, whose gating blocks take in its edges."""
    pause = np.zeros(round(BLOCK_SECONDS * audio.SAMPLE_RATE))
    return integrated_loudness(np.concatenate([pause, samples, pause]))


def _in_chunks(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The blocks with sound in them joined into pieces of about one FFT of the K-weighting
    (fewer, fuller FFTs: the same result, sooner); silent blocks as they are, for _feed to skip."""
    pending: list[np.ndarray] = []
    for block in blocks:
        if block.any():
            pending.append(block)
            if sum(len(part) for part in pending) < FFT_SIZE - IMPULSE_LENGTH + 1:
                continue
        if pending:
            yield np.concatenate(pending)
            pending = []
        if not block.any():
            yield block
    if pending:
        yield np.concatenate(pending)


def _feed(meter: LoudnessMeter, samples: np.ndarray) -> None:
    """Meter int16 samples; digital silence costs next to nothing."""
    if samples.any():
        meter.feed(samples / audio.FULL_SCALE)
    else:
        meter.skip(len(samples))


class StreamMeter:
    """The loudness of int16 blocks streaming past: of all of them, and of the samples inside `spans` alone.

    `spans` are [start, end) sample positions, in order and apart (the speech in a track); the
    samples inside them are metered as one stream, joined end to end.
    """

    def __init__(self, spans: Sequence[tuple[int, int]]):
        self._whole = LoudnessMeter()
        self._inside = LoudnessMeter()
        self._spans = spans

    def watch(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """The blocks, unchanged, metered on their way past: the whole and the spans each on a thread of
        its own (numpy's FFTs let go of the GIL), so metering keeps pace with the encoder."""
        yield from streams.beside(streams.beside(blocks, self._meter_whole), self._meter_inside)

    def _meter_whole(self, blocks: Iterable[np.ndarray]) -> None:
        for block in _in_chunks(blocks):
            _feed(self._whole, block)

    def _meter_inside(self, blocks: Iterable[np.ndarray]) -> None:
        for block in _in_chunks(self._inside_spans(blocks)):
            _feed(self._inside, block)

    def _inside_spans(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        position, span = 0, 0
        for block in blocks:
            end = position + len(block)
            while span < len(self._spans) and self._spans[span][0] < end:
                first, last = self._spans[span]
                if last > position:
                    yield block[max(first, position) - position : min(last, end) - position]
                if last > end:
                    break
                span += 1
            position = end

    def whole(self) -> float:
        """The integrated loudness of every block given out, in LUFS."""
        return self._whole.integrated()

    def inside(self) -> float:
        """The integrated loudness of the samples inside the spans, in LUFS."""
        return self._inside.integrated()
