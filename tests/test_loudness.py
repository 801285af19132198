"""The BS.1770 meter, the true-peak estimate and the levelling, against an independent meter."""

from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
from scipy.signal import resample_poly

from voiceguide import loudness

from conftest import SAMPLE_RATE, measure

RNG = np.random.default_rng(7)


def tone(hz: float, seconds: float, amplitude: float = 0.5, phase: float = 0.3) -> np.ndarray:
    """A sine with 10 ms fades, so its edges add no peaks of their own."""
    length = round(seconds * SAMPLE_RATE)
    fade = np.minimum(1, np.minimum(np.arange(length), np.arange(length)[::-1]) / (0.01 * SAMPLE_RATE))
    return fade * amplitude * np.sin(2 * np.pi * hz * np.arange(length) / SAMPLE_RATE + phase)


def reference_true_peak(samples: np.ndarray) -> float:
    """dBTP as BS.1770 defines it (4x oversampling), with scipy's polyphase resampler."""
    return float(20 * np.log10(np.abs(resample_poly(samples, 4, 1)).max()))


def speech_like(seconds: float = 6.0) -> np.ndarray:
    """Noise shaped into syllables of varying loudness, with pauses: peaky, like a voice."""
    length = round(seconds * SAMPLE_RATE)
    envelope = np.repeat(RNG.uniform(0.05, 1.0, length // 8820 + 1), 8820)[:length]
    envelope *= np.sin(np.pi * (np.arange(length) % 8820) / 8820) ** 2
    envelope[int(0.4 * length) : int(0.5 * length)] = 0
    spectrum = np.fft.rfft(RNG.normal(size=length))
    spectrum[np.fft.rfftfreq(length, 1 / SAMPLE_RATE) > 5000] = 0  # a voice's band
    return 0.1 * envelope * np.fft.irfft(spectrum, length)


def test_k_weighting_reproduces_the_coefficients_tabled_in_bs1770():
    (shelf_b, shelf_a), (pass_b, pass_a) = loudness.k_weighting_coefficients(48_000)
    np.testing.assert_allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-10)
    np.testing.assert_allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-10)
    np.testing.assert_allclose(pass_b, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(pass_a, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-10)


def test_full_scale_997_hz_sine_reads_minus_3_01_lufs():
    meter = loudness.Meter(rate=48_000)
    meter.feed(np.sin(2 * np.pi * 997 * np.arange(5 * 48_000) / 48_000))
    assert meter.integrated() == pytest.approx(-3.01, abs=0.01)


@pytest.mark.parametrize(
    "name, samples",
    [
        ("noise", RNG.normal(0, 0.05, 10 * SAMPLE_RATE)),
        ("low tone", tone(60, 5)),
        ("high tone", tone(10_000, 5)),
        ("speech-like", speech_like()),
        ("loud then quiet", np.concatenate([tone(1000, 4), tone(1000, 4, amplitude=0.01), np.zeros(SAMPLE_RATE)])),
    ],
)
def test_integrated_loudness_agrees_with_pyloudnorm(name, samples):
    ours = measure(samples).integrated()
    # pyloudnorm's "DeMan" filter is the same K-weighting: only the gating is compared.
    same_filter = pyloudnorm.Meter(SAMPLE_RATE, filter_class="DeMan")
    assert ours == pytest.approx(same_filter.integrated_loudness(samples), abs=0.02)
    # Its default filter approximates K-weighting a little differently.
    assert ours == pytest.approx(pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(samples), abs=0.2)


def test_gates_leave_out_silence_and_quiet_passages():
    loud = tone(1000, 4)
    reference = measure(np.concatenate([loud, np.zeros(SAMPLE_RATE)])).integrated()
    with_silence = np.concatenate([loud, np.zeros(20 * SAMPLE_RATE)])
    with_murmur = np.concatenate([loud, np.zeros(SAMPLE_RATE), tone(1000, 20, amplitude=0.5 * 10 ** (-25 / 20))])
    assert measure(with_silence).integrated() == pytest.approx(reference, abs=0.05)
    assert measure(with_murmur).integrated() == pytest.approx(reference, abs=0.05)
    assert measure(np.zeros(SAMPLE_RATE)).integrated() == -np.inf


def test_a_stream_fed_in_pieces_reads_as_a_whole():
    samples = speech_like(8)
    whole = measure(samples)
    pieces = loudness.Meter()
    for start in range(0, len(samples), 12_345):
        pieces.feed(samples[start : start + 12_345])
    assert pieces.integrated() == pytest.approx(whole.integrated(), abs=1e-9)
    assert pieces.true_peak() == pytest.approx(whole.true_peak(), abs=1e-9)


@pytest.mark.parametrize("hz, phase", [(1000, 0.3), (SAMPLE_RATE / 4, np.pi / 4), (9000, 1.1)])
def test_true_peak_finds_peaks_between_samples(hz, phase):
    samples = tone(hz, 1, amplitude=0.5, phase=phase)
    measured = measure(samples).true_peak()
    assert measured == pytest.approx(reference_true_peak(samples), abs=0.15)
    assert measured == pytest.approx(20 * np.log10(0.5), abs=0.15)


def test_level_sets_loudness_and_keeps_true_peak_under_the_ceiling():
    clip = np.round(speech_like() * 32767).astype(np.int16)
    levelled = loudness.level(clip, -16.0, -3.0)
    samples = levelled / 32768
    assert loudness.loudness_in_track(samples) == pytest.approx(-16.0, abs=0.1)
    assert reference_true_peak(samples) <= -3.0 + 0.05
    assert len(levelled) == len(clip)


def test_normalize_streams_a_gain_and_limits_peaks_without_changing_length():
    track = np.concatenate([speech_like(5), np.zeros(SAMPLE_RATE // 3), speech_like(4)])
    track = np.round(track * 32767).astype(np.int16)
    blocks = [track[start : start + SAMPLE_RATE] for start in range(0, len(track), SAMPLE_RATE)]
    boost = 6.0
    streamed = np.concatenate(list(loudness.normalize(blocks, boost, ceiling=-2.0)))
    assert len(streamed) == len(track)
    assert reference_true_peak(streamed / 32768) <= -2.0 + 0.1
    quiet = np.abs(track) < 0.05 * 32767  # where no limiting is needed, the gain is exactly the boost
    quiet &= np.convolve(~quiet, np.ones(2001), mode="same") == 0
    np.testing.assert_allclose(streamed[quiet], np.round(track[quiet] * 10 ** (boost / 20)), atol=1)


def test_measuring_blocks_skips_silence_yet_reads_as_the_whole():
    silence = np.zeros(5 * SAMPLE_RATE + 123)
    track = np.round(np.concatenate([speech_like(3), silence, speech_like(2), silence[:333]]) * 32767).astype(np.int16)
    blocks = [track[start : start + SAMPLE_RATE] for start in range(0, len(track), SAMPLE_RATE)]
    assert not blocks[5].any()  # some blocks are digital silence, which the meter skips
    level = loudness.measure(blocks)
    whole = measure(track / 32768)
    assert level.loudness == pytest.approx(whole.integrated(), abs=1e-9)
    assert level.true_peak == pytest.approx(whole.true_peak(), abs=1e-9)


@pytest.mark.parametrize("hz, phase", [(1000, 0.3), (SAMPLE_RATE / 4, np.pi / 4), (9000, 1.1)])
def test_true_peak_of_a_stretch_agrees_with_the_reference(hz, phase):
    samples = np.concatenate([np.zeros(50), tone(hz, 1, amplitude=0.5, phase=phase), np.zeros(50)])
    assert loudness.true_peak(samples) == pytest.approx(reference_true_peak(samples), abs=0.15)
    assert loudness.true_peak(samples, at_least=0.0) == 0.0


def test_normalize_only_scales_when_the_gain_keeps_the_true_peak_under_the_ceiling():
    track = np.round(speech_like(5) * 32767).astype(np.int16)
    blocks = [track[start : start + SAMPLE_RATE] for start in range(0, len(track), SAMPLE_RATE)]
    peak = measure(track / 32768).true_peak()
    boost = -2.0 - peak - 0.5
    scaled = np.concatenate(list(loudness.normalize(blocks, boost, ceiling=-2.0, true_peak=peak)))
    np.testing.assert_allclose(scaled, np.round(track * 10 ** (boost / 20)), atol=1)
    limited = np.concatenate(list(loudness.normalize(blocks, boost, ceiling=-2.0)))  # finds nothing to limit
    np.testing.assert_allclose(limited, scaled, atol=1)
