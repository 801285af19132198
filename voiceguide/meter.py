"""The meter: ITU-R BS.1770-4 loudness and true peak, for clips, sounds and the streaming track.

It takes float samples in [-1, 1] at audio.SAMPLE_RATE, mono. Filters run as FFT convolutions
with truncated impulse responses, and the true-peak interpolator as a dozen whole-array steps,
so nothing loops over samples in Python.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from voiceguide import audio

BLOCK_SECONDS = 0.4  # gating block
STEP_SECONDS = 0.1  # 75% overlap
STEPS_PER_BLOCK = round(BLOCK_SECONDS / STEP_SECONDS)
STEP = round(STEP_SECONDS * audio.SAMPLE_RATE)  # samples, at the internal rate
ABSOLUTE_GATE = -70.0  # LUFS
RELATIVE_GATE = -10.0  # LU below the loudness of the blocks that pass the absolute gate
OVERSAMPLING = 4  # for the true-peak estimate
IMPULSE_LENGTH = 4096  # K-weighting decays below 1e-9 within this many samples at 44.1 kHz
FFT_SIZE = 1 << 16  # K-weighting runs on chunks of FFT_SIZE - IMPULSE_LENGTH + 1 samples
INTERPOLATION_TAPS = 12  # per phase of the true-peak interpolator (48 in all, as in BS.1770-4)
PEAK_PIECE = 1024  # samples: the true-peak search rules out whole pieces this long at once
JOINED_SECONDS = 10.0  # a clip is measured repeated to at least this long (see joined_loudness)
ESTIMATE_BLOCK = 21  # samples: JoinedClip.estimate takes one gain for each this many (a limiter's barely moves within)
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
        weighted = np.concatenate([self._pending, _k_weighted(extended, self._spectrum)])
        whole = len(weighted) // self._step * self._step
        self._keep(np.mean(weighted[:whole].reshape(-1, self._step) ** 2, axis=1))
        self._pending = weighted[whole:]
        self._samples += len(samples)

    def _keep(self, energies: np.ndarray) -> None:
        """Keep step energies, joined now and then: one long array takes far less memory than many short ones."""
        self._energies.append(energies)
        if len(self._energies) >= 64:
            self._energies = [np.concatenate(self._energies)]

    def steps(self, ring_out: bool = False) -> np.ndarray:
        """The energy of every 100 ms step so far, the last one filled out with silence.

        With `ring_out`, the filter's response after the last sample counts too: all that the
        samples add to a longer stream of silence after them (see StretchLoudness).
        """
        if ring_out and self._history.any():
            self.feed(np.zeros(len(self._history)))
        tail = [np.array([np.sum(self._pending**2) / self._step])] if len(self._pending) else []
        return np.concatenate(self._energies + tail) if self._energies or tail else np.zeros(0)

    def integrated(self) -> float:
        """Gated loudness in LUFS; -inf for silence. Audio shorter than one block counts as one block."""
        steps = np.concatenate(self._energies) if self._energies else np.zeros(0)
        if len(steps) >= STEPS_PER_BLOCK:
            return _gated(_blocks(steps))
        if not self._samples:
            return -math.inf
        return _gated(np.array([(steps.sum() * self._step + np.sum(self._pending**2)) / self._samples]))


def _k_weighted(extended: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """`extended` (at most FFT_SIZE samples) K-weighted, less the first IMPULSE_LENGTH - 1, which only lead in."""
    return np.fft.irfft(np.fft.rfft(extended, FFT_SIZE) * spectrum, FFT_SIZE)[IMPULSE_LENGTH - 1 : len(extended)]


def _blocks(steps: np.ndarray) -> np.ndarray:
    """The mean square of every gating block: STEPS_PER_BLOCK steps, one step apart."""
    return np.lib.stride_tricks.sliding_window_view(steps, STEPS_PER_BLOCK).mean(axis=1)


def _gated(blocks: np.ndarray) -> float:
    """Integrated loudness in LUFS from gating blocks' mean squares, gated as BS.1770-4 says; -inf for silence."""
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
    return JoinedClip(samples).loudness()


class JoinedClip:
    """A clip K-weighted once as joined_loudness measures it: its loudness, and estimates of its
    loudness with a slowly moving gain applied (a limiter's), given for each ESTIMATE_BLOCK samples.

    The repeats cost little more than the clip: once the K-weighting filter has heard
    IMPULSE_LENGTH samples of them, its output repeats as they do, so the first IMPULSE_LENGTH - 1
    + len(samples) samples of it hold the energy of every 100 ms step. A gain that barely moves
    within the filter's response passes through it as if applied after it: an estimate weighs
    those samples' energy by the gain's square (a few hundredths of a LU off, for the limiter's).
    """

    def __init__(self, samples: np.ndarray):
        self._count = len(samples)
        self._repeats = math.ceil(JOINED_SECONDS * audio.SAMPLE_RATE / max(self._count, 1))
        self._heard = IMPULSE_LENGTH - 1 + self._count  # samples of the repeats that hold every step's energy
        self._energy = _k_weighted_repeats(samples, self._heard) ** 2 if self._count else np.zeros(0)

    def loudness(self) -> float:
        return self._loudness(self._energy, 1) if self._count else -math.inf

    def estimate(self, gains: np.ndarray) -> float:
        """The loudness with gains[i] applied to the clip's samples from i * ESTIMATE_BLOCK to the next block."""
        if not self._count:
            return -math.inf
        return self._loudness(self._block_energy * gains[self._block_gain] ** 2, ESTIMATE_BLOCK)

    @functools.cached_property
    def _block_energy(self) -> np.ndarray:
        return np.add.reduceat(self._energy, np.arange(0, self._heard, ESTIMATE_BLOCK))

    @functools.cached_property
    def _block_gain(self) -> np.ndarray:
        """Which of the clip's blocks each block of the repeats takes its gain from: the one its first sample is in."""
        return np.arange(0, self._heard, ESTIMATE_BLOCK) % self._count // ESTIMATE_BLOCK

    def _loudness(self, energy: np.ndarray, block: int) -> float:
        """The gated loudness of the repeats, from the energy in each `block` samples of the first self._heard."""
        lead, step = IMPULSE_LENGTH - 1, STEP
        sums = np.concatenate([[0.0], np.cumsum(energy)])

        def before(position: np.ndarray) -> np.ndarray:
            """The energy before each of these samples of the first self._heard, spread evenly over each block."""
            whole, part = np.divmod(position, block)
            return sums[whole] + part / block * energy[np.minimum(whole, len(energy) - 1)]

        ends = np.arange(self._repeats * self._count // step + 1) * step
        periods, into = np.divmod(np.maximum(ends - lead, 0), self._count)
        per_period = np.diff(before(np.array([lead, self._heard])))
        at_ends = before(np.minimum(ends, lead) + into) + periods * per_period
        return _gated(_blocks(np.maximum(np.diff(at_ends), 0.0) / step))  # rounding may leave a silent step under 0


def _k_weighted_repeats(samples: np.ndarray, count: int) -> np.ndarray:
    """The first `count` samples of `samples` repeated end to end, K-weighted from silence."""
    lead = IMPULSE_LENGTH - 1
    extended = np.concatenate([np.zeros(lead)] + [samples] * -(-count // len(samples)))[: lead + count]
    spectrum = _k_weighting_spectrum(audio.SAMPLE_RATE)
    starts = range(0, count, FFT_SIZE - lead)
    return np.concatenate([_k_weighted(extended[start : start + FFT_SIZE], spectrum) for start in starts])


def loudness_in_track(samples: np.ndarray) -> float:
    """A clip's loudness as it counts in a track: between pauses, whose gating blocks take in its edges."""
    pause = np.zeros(round(BLOCK_SECONDS * audio.SAMPLE_RATE))
    return integrated_loudness(np.concatenate([pause, samples, pause]))


@dataclass(frozen=True)
class StretchLoudness:
    """What a stretch of a track (an island of sound, see islands.py) adds to the track's loudness.

    Each array holds the K-weighted energy of consecutive 100 ms steps, metered from silence on a
    grid that starts with the stretch: `whole` over all of it and the filter's ring-out after it,
    `speech` over the samples inside its speech spans, joined end to end. Kept with the stretch's
    MP3 frames, so an unchanged stretch is never metered again.
    """

    whole: np.ndarray
    speech: np.ndarray


class StretchMeter:
    """Meters one stretch of int16 samples fed in pieces, and the samples inside `spans` of it apart.

    `spans` are [start, end) positions from the stretch's start, in order and apart (its speech).
    Pieces are gathered into whole FFTs of the K-weighting before they are metered.
    """

    def __init__(self, spans: Sequence[tuple[int, int]]):
        self._whole, self._speech = _Gathered(), _Gathered()
        self._spans = spans
        self._span = 0
        self._position = 0

    def feed(self, samples: np.ndarray) -> None:
        self._whole.feed(samples)
        end = self._position + len(samples)
        while self._span < len(self._spans) and self._spans[self._span][0] < end:
            first, last = self._spans[self._span]
            if last > self._position:
                offset = self._position
                self._speech.feed(samples[max(first, offset) - offset : min(last, end) - offset])
            if last > end:
                break
            self._span += 1
        self._position = end

    def loudness(self) -> StretchLoudness:
        return StretchLoudness(self._whole.steps(ring_out=True), self._speech.steps())


class _Gathered:
    """A LoudnessMeter fed int16 samples gathered into pieces of one whole FFT of the K-weighting."""

    def __init__(self) -> None:
        self._meter = LoudnessMeter()
        self._pieces: list[np.ndarray] = []
        self._gathered = 0

    def feed(self, samples: np.ndarray) -> None:
        self._pieces.append(samples)
        self._gathered += len(samples)
        if self._gathered >= FFT_SIZE - IMPULSE_LENGTH + 1:
            self._flush()

    def _flush(self) -> None:
        if self._pieces:
            self._meter.feed(np.concatenate(self._pieces) / audio.FULL_SCALE)
        self._pieces, self._gathered = [], 0

    def steps(self, ring_out: bool = False) -> np.ndarray:
        self._flush()
        return self._meter.steps(ring_out)


class TrackLoudness:
    """A track's loudness, gathered from its stretches of sound metered apart (the silence between adds nothing).

    The whole track's steps are each stretch's at its place; the speech's are every stretch's
    speech steps in order, as if all the speech were joined end to end. Metering each stretch
    from silence on a grid of its own moves its gating blocks by under one 100 ms step, and its
    speech's filter starts afresh: hundredths of a LU at most.
    """

    def __init__(self) -> None:
        self._whole: list[tuple[int, np.ndarray]] = []  # (first step's index in the track, steps)
        self._speech: list[np.ndarray] = []

    def add(self, start: int, stretch: StretchLoudness) -> None:
        """The stretch that starts at sample `start` of the track."""
        self._whole.append((round(start / STEP), stretch.whole))
        self._speech.append(stretch.speech)

    def whole(self) -> float:
        """The integrated loudness of the whole track, in LUFS."""
        steps = np.zeros(max((first + len(steps) for first, steps in self._whole), default=0))
        for first, stretch in self._whole:
            steps[first : first + len(stretch)] += stretch
        return _steps_loudness(steps)

    def speech(self) -> float:
        """The integrated loudness of the speech alone, joined end to end, in LUFS."""
        return _steps_loudness(np.concatenate(self._speech) if self._speech else np.zeros(0))


def _steps_loudness(steps: np.ndarray) -> float:
    if len(steps) >= STEPS_PER_BLOCK:
        return _gated(_blocks(steps))
    return _gated(np.array([steps.mean()])) if len(steps) else -math.inf  # shorter than a block: one block
