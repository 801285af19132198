"""Built-in sound library for voiceguide, synthesized from scratch.

Every sound a routine can name without supplying its own file (``chime``,
``bell``, ``bowl``, ``tick``, ``breathe-in``, ``breathe-out``, ``rain``,
``drone``) is generated here with numpy, so the project owns the audio and
its license outright: no recordings, no third-party samples.

The WAV files in the repository's ``sounds/`` folder are the output of this
module and must not be edited by hand. After changing anything here,
regenerate them with::

    python -m voiceguide.soundgen            # writes <repo>/sounds/
    python -m voiceguide.soundgen OTHER_DIR  # writes somewhere else

``tests/test_soundgen.py`` fails if the committed files differ from what this
code produces.

All sounds are 44100 Hz mono; ``write_library`` stores them as 16-bit PCM.
Every generator is deterministic (fixed seeds, fixed phases).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from voiceguide import audio
from voiceguide.files import atomic_path

SAMPLE_RATE = audio.SAMPLE_RATE

DEFAULT_FOLDER = Path(__file__).resolve().parent.parent / "sounds"

# Target levels. The renderer mixes these under a voice that peaks near full
# scale, so they are written well below it (and beds are turned down further
# at render time).
BELL_PEAK_DBFS = -6.0  # chime, bell, bowl
TICK_PEAK_DBFS = -10.0
BREATH_PEAK_DBFS = -12.0
BED_RMS_DBFS = -20.0  # rain, drone (measured as RMS: they have no single peak)

# Durations in seconds.
CHIME_SECONDS = 3.0
BELL_SECONDS = 2.5
BOWL_SECONDS = 6.0
TICK_SECONDS = 0.06
BREATH_SECONDS = 4.0
# Beds loop seamlessly, so their length only sets how often the pattern
# repeats. 24 s (rather than 30 s) keeps the whole library under ~6 MB.
BED_SECONDS = 24.0

# Bell-family partials (ratio to fundamental, relative amplitude, decay time
# constant in seconds). Higher partials are quieter and die faster, which is
# what makes a bell sound soft after the strike; it also keeps the
# fundamental the strongest spectral peak.
CHIME_FUNDAMENTAL_HZ = 660.0
CHIME_PARTIALS = (
    (1.00, 1.00, 0.90),
    (2.76, 0.40, 0.50),
    (5.40, 0.18, 0.28),
    (8.93, 0.08, 0.16),
)
CHIME_ATTACK_SECONDS = 0.008
CHIME_FADE_SECONDS = 0.6

BELL_FUNDAMENTAL_HZ = 1046.5  # C6: a small, higher bell
BELL_PARTIALS = (
    (1.00, 1.00, 0.75),
    (2.76, 0.60, 0.42),
    (5.40, 0.38, 0.24),
    (8.93, 0.20, 0.14),
)
BELL_ATTACK_SECONDS = 0.005
BELL_FADE_SECONDS = 0.5

# Singing bowl: each mode is a pair of nearly equal frequencies (the bowl is
# not perfectly round), heard as slow beating. (ratio, amplitude, decay s,
# beat Hz). The second tone of each pair is a bit quieter so the beating
# swells rather than cutting out completely.
BOWL_FUNDAMENTAL_HZ = 256.0
BOWL_MODES = (
    (1.00, 1.00, 3.2, 0.7),
    (2.71, 0.50, 2.2, 1.3),
    (5.15, 0.22, 1.2, 2.1),
    (8.43, 0.09, 0.7, 3.0),
)
BOWL_PAIR_BALANCE = 0.7
BOWL_ATTACK_SECONDS = 0.015
BOWL_FADE_SECONDS = 1.2

# Wooden tick: two damped resonances, no noise (noise is what makes clicks
# harsh). (frequency Hz, amplitude, decay s)
TICK_MODES = (
    (1750.0, 1.00, 0.008),
    (4150.0, 0.30, 0.004),
)
TICK_ATTACK_SECONDS = 0.001
TICK_FADE_SECONDS = 0.015

# Breath tones: a sine gliding between these pitches, with a soft octave.
BREATH_LOW_HZ = 220.0
BREATH_HIGH_HZ = 330.0
BREATH_HARMONICS = ((1, 1.0), (2, 0.2), (3, 0.05))  # (multiple, amplitude)
BREATH_FADE_SECONDS = 1.5

# Rain: pink noise band-limited to a soft hiss, plus a faint layer of
# "drops" (bursts of brighter noise), with slow level movement.
RAIN_SEED = 20240611
RAIN_HIGHPASS_HZ = 120.0
RAIN_LOWPASS_HZ = 3500.0
RAIN_DROP_BAND_HZ = (1500.0, 6000.0)
RAIN_DROPS_PER_SECOND = 30.0
RAIN_DROP_ATTACK_SECONDS = 0.001  # a soft onset, so drops patter rather than click
RAIN_DROP_DECAY_SECONDS = 0.010
RAIN_DROP_STRENGTH = (0.2, 1.0)  # uniform range; no heavy tail of loud drops
RAIN_DROP_LEVEL = 0.2  # drop layer RMS relative to the hiss RMS
# (cycles per loop, depth) of the slow level movement; integer cycles keep
# the modulation periodic in the loop length.
RAIN_MOVEMENT = ((2, 0.12), (5, 0.06))

# Drone: (target Hz, amplitude, movement cycles per loop, movement depth).
# Close pairs (110/110.125, 220/219.75) beat slowly; every frequency is
# rounded to a whole number of cycles per loop so the bed loops exactly.
DRONE_PARTIALS = (
    (55.0, 0.30, 1, 0.20),
    (110.0, 1.00, 2, 0.10),
    (110.125, 0.30, 3, 0.20),
    (165.0, 0.30, 1, 0.30),
    (220.0, 0.45, 5, 0.20),
    (219.75, 0.25, 2, 0.30),
    (330.0, 0.15, 3, 0.40),
    (440.0, 0.06, 4, 0.40),
)
DRONE_SEED = 110


def db_to_amplitude(db: float) -> float:
    return float(10.0 ** (db / 20.0))


# --------------------------------------------------------------------------
# Shared helpers


def _num_samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


def _times(seconds: float) -> np.ndarray:
    return np.arange(_num_samples(seconds)) / SAMPLE_RATE


def _fade(signal: np.ndarray, fade_in: float, fade_out: float) -> np.ndarray:
    """Apply raised-cosine fades; the first and last samples become exactly 0."""
    out = signal.copy()
    n_in, n_out = _num_samples(fade_in), _num_samples(fade_out)
    out[:n_in] *= audio.rise(n_in, np.float64)
    out[len(out) - n_out :] *= audio.rise(n_out, np.float64)[::-1]
    return out


def _to_peak(signal: np.ndarray, peak_dbfs: float) -> np.ndarray:
    scaled = signal * (db_to_amplitude(peak_dbfs) / np.max(np.abs(signal)))
    return scaled.astype(np.float32)


def _to_rms(signal: np.ndarray, rms_dbfs: float) -> np.ndarray:
    rms = np.sqrt(np.mean(signal**2))
    scaled = signal * (db_to_amplitude(rms_dbfs) / rms)
    return scaled.astype(np.float32)


def _struck(
    fundamental: float,
    partials: tuple[tuple[float, float, float], ...],
    seconds: float,
    attack: float,
    fade_out: float,
) -> np.ndarray:
    """Sum of exponentially decaying partials: the core of a struck bell."""
    t = _times(seconds)[None, :]
    ratios, amps, taus = (np.array(col)[:, None] for col in zip(*partials, strict=True))
    tones = amps * np.exp(-t / taus) * np.sin(2 * np.pi * fundamental * ratios * t)
    return _fade(tones.sum(axis=0), attack, fade_out)


def _loop_phase(cycles_per_loop: int, n: int) -> np.ndarray:
    """Phase (radians) of a tone making a whole number of cycles in n samples.

    Uses integer arithmetic so sample n wraps exactly onto sample 0.
    """
    k = np.arange(n, dtype=np.int64)
    return 2 * np.pi * ((cycles_per_loop * k) % n) / n


def _shaped_noise(n: int, gain: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Circular noise with magnitude response ``gain`` (one value per rfft bin).

    Built in the frequency domain over exactly n samples, so it is periodic:
    the last sample flows into the first like any other pair of samples.
    """
    bins = n // 2 + 1
    spectrum = rng.standard_normal(bins) + 1j * rng.standard_normal(bins)
    return np.fft.irfft(spectrum * gain, n)


def _butterworth_gain(freqs: np.ndarray, low_hz: float, high_hz: float, order: int = 2) -> np.ndarray:
    """Magnitude of a Butterworth-style band-pass (high-pass low_hz, low-pass high_hz)."""
    with np.errstate(divide="ignore"):
        highpass = 1 / np.sqrt(1 + (low_hz / freqs) ** (2 * order))
    lowpass = 1 / np.sqrt(1 + (freqs / high_hz) ** (2 * order))
    return highpass * lowpass  # highpass is 0 at DC (1/inf)


# --------------------------------------------------------------------------
# The sounds


def chime() -> np.ndarray:
    """Soft bell, ~660 Hz: the default transition between steps."""
    tone = _struck(
        CHIME_FUNDAMENTAL_HZ, CHIME_PARTIALS, CHIME_SECONDS, CHIME_ATTACK_SECONDS, CHIME_FADE_SECONDS
    )
    return _to_peak(tone, BELL_PEAK_DBFS)


def bell() -> np.ndarray:
    """Brighter, higher small bell."""
    tone = _struck(BELL_FUNDAMENTAL_HZ, BELL_PARTIALS, BELL_SECONDS, BELL_ATTACK_SECONDS, BELL_FADE_SECONDS)
    return _to_peak(tone, BELL_PEAK_DBFS)


def bowl() -> np.ndarray:
    """Singing bowl: low modes as detuned pairs that beat slowly, long decay."""
    t = _times(BOWL_SECONDS)
    out = np.zeros_like(t)
    for ratio, amp, tau, beat in BOWL_MODES:
        freq = BOWL_FUNDAMENTAL_HZ * ratio
        pair = np.sin(2 * np.pi * freq * t) + BOWL_PAIR_BALANCE * np.sin(2 * np.pi * (freq + beat) * t)
        out += amp * np.exp(-t / tau) * pair
    return _to_peak(_fade(out, BOWL_ATTACK_SECONDS, BOWL_FADE_SECONDS), BELL_PEAK_DBFS)


def tick() -> np.ndarray:
    """Soft wooden tick for countdowns."""
    t = _times(TICK_SECONDS)
    out = np.zeros_like(t)
    for freq, amp, tau in TICK_MODES:
        out += amp * np.exp(-t / tau) * np.sin(2 * np.pi * freq * t)
    return _to_peak(_fade(out, TICK_ATTACK_SECONDS, TICK_FADE_SECONDS), TICK_PEAK_DBFS)


def _breath(start_hz: float, end_hz: float, seconds: float) -> np.ndarray:
    """Smooth glide from start_hz to end_hz with soft harmonics.

    The pitch moves along a smoothstep curve (on a log scale) so it starts and
    ends without a jolt; the phase is the running integral of the frequency.
    """
    t = _times(seconds)
    x = t / seconds
    smooth = x * x * (3 - 2 * x)
    freq = start_hz * (end_hz / start_hz) ** smooth
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    tone = sum((amp * np.sin(mult * phase) for mult, amp in BREATH_HARMONICS), start=np.zeros_like(phase))
    fade = min(BREATH_FADE_SECONDS, seconds * BREATH_FADE_SECONDS / BREATH_SECONDS)
    return _to_peak(_fade(tone, fade, fade), BREATH_PEAK_DBFS)


def breathe_in(seconds: float = BREATH_SECONDS) -> np.ndarray:
    """Gentle rising tone for an in-breath; the renderer makes one as long as each breath."""
    return _breath(BREATH_LOW_HZ, BREATH_HIGH_HZ, seconds)


def breathe_out(seconds: float = BREATH_SECONDS) -> np.ndarray:
    """Gentle falling tone for an out-breath."""
    return _breath(BREATH_HIGH_HZ, BREATH_LOW_HZ, seconds)


def rain() -> np.ndarray:
    """Soft rain bed that loops seamlessly.

    Everything is circular over exactly BED_SECONDS: the noise is shaped with
    an FFT of the loop length, the drops are placed by circular convolution,
    and the level movement makes whole cycles per loop.
    """
    n = _num_samples(BED_SECONDS)
    rng = np.random.default_rng(RAIN_SEED)
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    with np.errstate(divide="ignore"):
        pink = np.where(freqs > 0, 1 / np.sqrt(freqs), 0.0)

    hiss = _shaped_noise(n, pink * _butterworth_gain(freqs, RAIN_HIGHPASS_HZ, RAIN_LOWPASS_HZ), rng)
    hiss /= np.sqrt(np.mean(hiss**2))

    # Drops: bright noise gated by a train of short decaying envelopes at
    # random positions. The envelope train is a circular convolution of
    # random impulses with one decay shape.
    drop_noise = _shaped_noise(n, _butterworth_gain(freqs, *RAIN_DROP_BAND_HZ), rng)
    impulses = np.zeros(n)
    count = int(RAIN_DROPS_PER_SECOND * BED_SECONDS)
    np.add.at(impulses, rng.integers(0, n, count), rng.uniform(*RAIN_DROP_STRENGTH, count))
    k = np.arange(n) / SAMPLE_RATE
    shape = (1 - np.exp(-k / RAIN_DROP_ATTACK_SECONDS)) * np.exp(-k / RAIN_DROP_DECAY_SECONDS)
    envelope = np.fft.irfft(np.fft.rfft(impulses) * np.fft.rfft(shape), n)
    drops = drop_noise * envelope
    drops *= RAIN_DROP_LEVEL / np.sqrt(np.mean(drops**2))

    movement = np.ones(n)
    for i, (cycles, depth) in enumerate(RAIN_MOVEMENT):
        movement += depth * np.sin(_loop_phase(cycles, n) + i)
    return _to_rms((hiss + drops) * movement, BED_RMS_DBFS)


def drone() -> np.ndarray:
    """Warm low drone around 110 Hz with slow beating; loops seamlessly."""
    n = _num_samples(BED_SECONDS)
    rng = np.random.default_rng(DRONE_SEED)
    # Random (but fixed) starting phases, so the loop point is not special:
    # with all partials at phase 0 their slopes would line up exactly there.
    phases = rng.uniform(0, 2 * np.pi, (len(DRONE_PARTIALS), 2))
    out = np.zeros(n)
    for (freq, amp, move_cycles, depth), (phase, move_phase) in zip(DRONE_PARTIALS, phases, strict=True):
        cycles = int(round(freq * BED_SECONDS))
        movement = 1 + depth * np.sin(_loop_phase(move_cycles, n) + move_phase)
        out += amp * movement * np.sin(_loop_phase(cycles, n) + phase)
    return _to_rms(out, BED_RMS_DBFS)


SOUNDS: dict[str, Callable[[], np.ndarray]] = {
    "chime": chime,
    "bell": bell,
    "bowl": bowl,
    "tick": tick,
    "breathe-in": breathe_in,
    "breathe-out": breathe_out,
    "rain": rain,
    "drone": drone,
}


# --------------------------------------------------------------------------
# Writing


def _write_wav(path: Path, samples: np.ndarray) -> None:
    """Write float samples in [-1, 1] as a 16-bit WAV; a reader never sees a half-written file."""
    with atomic_path(path) as temporary:
        audio.write_wav(temporary, [audio.to_int16(samples * audio.FULL_SCALE)])


def write_library(folder: Path) -> list[Path]:
    """Synthesize every sound and write it to ``folder/<name>.wav``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in SOUNDS.items():
        path = folder / f"{name}.wav"
        _write_wav(path, make())
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m voiceguide.soundgen",
        description="Regenerate voiceguide's built-in sound library.",
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help=f"output folder (default: {DEFAULT_FOLDER})"
    )
    args = parser.parse_args(argv)
    for path in write_library(args.folder):
        print(f"{path}  ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
