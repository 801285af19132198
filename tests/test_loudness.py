"""The BS.1770 meter, the true-peak estimate, the limiter and the levelling, against an independent meter."""

from __future__ import annotations

import math

import numpy as np
import pyloudnorm
import pytest
from conftest import SAMPLE_RATE, load_routine_text, needs_piper
from scipy.signal import resample_poly

from voiceguide import limiter, meter
from voiceguide.levels import SPEECH_PEAK, VOICE_LUFS
from voiceguide.voices.choice import VoiceOverride, voice_request
from voiceguide.voices.clips import voice_clips

RNG = np.random.default_rng(7)


def tone(hz: float, seconds: float, amplitude: float = 0.5, phase: float = 0.3) -> np.ndarray:
    """A sine with 10 ms fades, so its edges add no peaks of their own."""
    length = round(seconds * SAMPLE_RATE)
    fade = np.minimum(1, np.minimum(np.arange(length), np.arange(length)[::-1]) / (0.01 * SAMPLE_RATE))
    return fade * amplitude * np.sin(2 * np.pi * hz * np.arange(length) / SAMPLE_RATE + phase)


def lufs(samples: np.ndarray) -> float:
    return meter.integrated_loudness(samples)


def reference_true_peak(samples: np.ndarray) -> float:
    """dBTP as BS.1770 defines it (4x oversampling), with scipy's polyphase resampler."""
    return float(20 * np.log10(np.abs(resample_poly(samples, 4, 1)).max()))


def speech_like(seconds: float = 6.0, rng: np.random.Generator = RNG) -> np.ndarray:
    """Noise shaped into syllables of varying loudness, with pauses: peaky, like a voice."""
    length = round(seconds * SAMPLE_RATE)
    envelope = np.repeat(rng.uniform(0.05, 1.0, length // 8820 + 1), 8820)[:length]
    envelope *= np.sin(np.pi * (np.arange(length) % 8820) / 8820) ** 2
    envelope[int(0.4 * length) : int(0.5 * length)] = 0
    spectrum = np.fft.rfft(rng.normal(size=length))
    spectrum[np.fft.rfftfreq(length, 1 / SAMPLE_RATE) > 5000] = 0  # a voice's band
    return 0.1 * envelope * np.fft.irfft(spectrum, length)


def test_k_weighting_reproduces_the_coefficients_tabled_in_bs1770():
    (shelf_b, shelf_a), (pass_b, pass_a) = meter.k_weighting_coefficients(48_000)
    np.testing.assert_allclose(shelf_b, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-10)
    np.testing.assert_allclose(shelf_a, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-10)
    np.testing.assert_allclose(pass_b, [1.0, -2.0, 1.0])
    np.testing.assert_allclose(pass_a, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-10)


def test_full_scale_997_hz_sine_reads_minus_3_01_lufs():
    at_48k = meter.LoudnessMeter(rate=48_000)
    at_48k.feed(np.sin(2 * np.pi * 997 * np.arange(5 * 48_000) / 48_000))
    assert at_48k.integrated() == pytest.approx(-3.01, abs=0.01)


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
    ours = lufs(samples)
    # pyloudnorm's "DeMan" filter is the same K-weighting: only the gating is compared.
    same_filter = pyloudnorm.Meter(SAMPLE_RATE, filter_class="DeMan")
    assert ours == pytest.approx(same_filter.integrated_loudness(samples), abs=0.02)
    # Its default filter approximates K-weighting a little differently.
    assert ours == pytest.approx(pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(samples), abs=0.2)


def test_gates_leave_out_silence_and_quiet_passages():
    loud = tone(1000, 4)
    reference = lufs(np.concatenate([loud, np.zeros(SAMPLE_RATE)]))
    with_silence = np.concatenate([loud, np.zeros(20 * SAMPLE_RATE)])
    with_murmur = np.concatenate([loud, np.zeros(SAMPLE_RATE), tone(1000, 20, amplitude=0.5 * 10 ** (-25 / 20))])
    assert lufs(with_silence) == pytest.approx(reference, abs=0.05)
    assert lufs(with_murmur) == pytest.approx(reference, abs=0.05)
    assert lufs(np.zeros(SAMPLE_RATE)) == -np.inf


def test_a_stream_fed_in_pieces_reads_as_a_whole():
    samples = speech_like(8)
    pieces = meter.LoudnessMeter()
    for start in range(0, len(samples), 12_345):
        pieces.feed(samples[start : start + 12_345])
    assert pieces.integrated() == pytest.approx(lufs(samples), abs=1e-9)


@pytest.mark.parametrize("hz, phase", [(1000, 0.3), (SAMPLE_RATE / 4, np.pi / 4), (9000, 1.1)])
def test_true_peak_finds_peaks_between_samples(hz, phase):
    samples = tone(hz, 1, amplitude=0.5, phase=phase)
    measured = meter.true_peak(samples)
    assert measured == pytest.approx(reference_true_peak(samples), abs=0.15)
    assert measured == pytest.approx(20 * np.log10(0.5), abs=0.15)


def test_level_sets_loudness_and_keeps_true_peak_under_the_ceiling():
    clip = np.round(speech_like() * 32767).astype(np.int16)
    levelled = limiter.level(clip, -16.0, -3.0, meter.loudness_in_track)
    samples = levelled / 32768
    assert meter.loudness_in_track(samples) == pytest.approx(-16.0, abs=0.1)
    assert reference_true_peak(samples) <= -3.0 + 0.05
    assert len(levelled) == len(clip)


def blocks_of(track: np.ndarray, size: int = SAMPLE_RATE) -> list[np.ndarray]:
    return [track[start : start + size] for start in range(0, len(track), size)]


def test_the_limiter_holds_the_ceiling_in_a_stream_and_leaves_the_rest_as_it_was():
    track = np.concatenate([speech_like(5), np.zeros(SAMPLE_RATE // 3), speech_like(4)])
    track = np.round(np.clip(6.5 * track, -1, 1) * 32767).astype(np.int16)
    assert reference_true_peak(track / 32768) > -1.0  # loud enough to need limiting
    streamed = np.concatenate(list(limiter.limit_stream(blocks_of(track, 5000), ceiling=-2.0)))
    assert len(streamed) == len(track)
    assert reference_true_peak(streamed / 32768) <= -2.0 + 0.1
    quiet = np.abs(track) < 0.05 * 32767  # far from any peak, the samples pass unchanged
    quiet &= np.convolve(~quiet, np.ones(2001), mode="same") == 0
    assert quiet.sum() > SAMPLE_RATE // 4
    np.testing.assert_array_equal(streamed[quiet], track[quiet])


def test_a_stream_under_the_ceiling_passes_the_limiter_unchanged():
    track = np.round(speech_like(5) * 32767).astype(np.int16)
    peak = meter.true_peak(track / 32768)
    streamed = np.concatenate(list(limiter.limit_stream(blocks_of(track), ceiling=peak + 0.2)))
    np.testing.assert_array_equal(streamed, track)


def metered_whole(stretch: np.ndarray, spans: list[tuple[int, int]]) -> meter.StretchLoudness:
    """A stretch's loudness, fed to its meter in one piece."""
    stretch_meter = meter.StretchMeter(spans)
    stretch_meter.feed(stretch)
    return stretch_meter.loudness()


def test_a_track_gathered_from_stretches_metered_apart_reads_as_one_meter_over_all_of_it():
    rng = np.random.default_rng(11)
    silence = np.zeros(5 * SAMPLE_RATE + 123)
    quiet = 0.4 * speech_like(3, rng)  # 8 dB down: inside the relative gate, so it counts in the whole
    stretches = [speech_like(3, rng), np.concatenate([quiet, speech_like(2, rng)])]
    stretches = [np.round(stretch * 32767).astype(np.int16) for stretch in stretches]
    second_start = len(stretches[0]) + len(silence)
    track = np.concatenate([stretches[0], silence, stretches[1], silence[:333]]).astype(np.int16)
    speech = [(0, 3 * SAMPLE_RATE), (second_start + 3 * SAMPLE_RATE, second_start + 5 * SAMPLE_RATE)]
    gathered = meter.TrackLoudness()
    for start, stretch, spans in [(0, stretches[0], [speech[0]]), (second_start, stretches[1], [speech[1]])]:
        gathered.add(start, metered_whole(stretch, [(first - start, last - start) for first, last in spans]))
    # Eight seconds of sound make few gating blocks, so moving them by part of a step shows more
    # than in a whole track (bundled routines: within 0.03 LU).
    assert gathered.whole() == pytest.approx(lufs(track / 32768), abs=0.15)
    joined = np.concatenate([track[first:last] for first, last in speech])
    assert gathered.speech() == pytest.approx(lufs(joined / 32768), abs=0.15)
    assert gathered.speech() > gathered.whole() + 1  # the speech leaves the quiet part out


def test_a_stretch_metered_in_pieces_reads_as_metered_whole():
    stretch = np.round(speech_like(4, np.random.default_rng(12)) * 32767).astype(np.int16)
    spans = [(1000, 50_000), (90_000, 150_000)]
    pieces = meter.StretchMeter(spans)
    for start in range(0, len(stretch), 7_000):
        pieces.feed(stretch[start : start + 7_000])
    whole = metered_whole(stretch, spans)
    np.testing.assert_allclose(pieces.loudness().whole, whole.whole, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(pieces.loudness().speech, whole.speech, rtol=1e-9, atol=1e-15)
    assert len(whole.speech) == -(-(49_000 + 60_000) // 4410)  # the speech alone, its last step filled out


@pytest.mark.parametrize("hz, phase", [(1000, 0.3), (SAMPLE_RATE / 4, np.pi / 4), (9000, 1.1)])
def test_true_peak_of_a_stretch_agrees_with_the_reference(hz, phase):
    samples = np.concatenate([np.zeros(50), tone(hz, 1, amplitude=0.5, phase=phase), np.zeros(50)])
    assert meter.true_peak(samples) == pytest.approx(reference_true_peak(samples), abs=0.15)
    assert meter.true_peak(samples, at_least=0.0) == 0.0


# ---------------------------------------------------------------- clips levelled as the voice counts them

SEARCH = 0.05  # LU: how near level() brings a clip, as our meter reads it
AGREEMENT = 0.02  # LU: how near our meter and pyloudnorm's (same K-weighting) read the same audio (see above)


def joined(samples: np.ndarray) -> np.ndarray:
    """A clip repeated end to end to at least ten seconds, as the voice's loudness counts it."""
    return np.tile(samples, math.ceil(10 * SAMPLE_RATE / len(samples)))


def voice_like(seconds: float) -> np.ndarray:
    """speech_like, the same whichever tests run before."""
    return speech_like(seconds, np.random.default_rng(round(seconds * 1000)))


def pyloudnorm_joined(samples: np.ndarray) -> float:
    return pyloudnorm.Meter(SAMPLE_RATE, filter_class="DeMan").integrated_loudness(joined(samples))


@pytest.mark.parametrize("length", [1, 700, 4095, 4096, 30_000, 10 * SAMPLE_RATE + 1])
def test_a_clips_joined_loudness_is_its_repeats_measured_whole(length):
    clip = voice_like(max(length, 4410) / SAMPLE_RATE)[:length] + 0.01 * np.sin(np.arange(length))
    assert meter.joined_loudness(clip) == pytest.approx(lufs(joined(clip)), abs=1e-9)  # filtered once, not ten times
    assert meter.joined_loudness(clip) == pytest.approx(pyloudnorm_joined(clip), abs=AGREEMENT)


def test_the_estimate_with_a_slowly_moving_gain_is_near_measuring_it():
    clip = voice_like(3)
    gains = 0.5 + 0.4 * np.sin(np.arange(len(clip)) / 900)  # swings 15 dB, over 20 ms at the fastest
    per_block = gains[:: meter.ESTIMATE_BLOCK]
    estimate = meter.JoinedClip(clip).estimate(per_block)
    assert estimate == pytest.approx(meter.joined_loudness(clip * gains), abs=0.03)
    assert meter.JoinedClip(clip).estimate(np.full(len(per_block), 0.5)) == pytest.approx(
        meter.joined_loudness(clip) + 20 * np.log10(0.5), abs=0.01
    )


def clicking(seconds: float) -> np.ndarray:
    """Speech-like noise with a click every half second, 30 dB over it: levelled, the clicks take heavy limiting."""
    samples = voice_like(seconds)
    samples[:: SAMPLE_RATE // 2] = 0.9
    return samples


def assert_voice_level(levelled: np.ndarray) -> None:
    """At the voice's level as it counts in the voice (pyloudnorm agrees), under the speech's peak (scipy agrees)."""
    samples = levelled / 32768
    assert meter.joined_loudness(samples) == pytest.approx(VOICE_LUFS, abs=SEARCH)
    assert pyloudnorm_joined(samples) == pytest.approx(VOICE_LUFS, abs=SEARCH + AGREEMENT)
    assert reference_true_peak(samples) <= SPEECH_PEAK + meter.TRUE_PEAK_ACCURACY


@pytest.mark.parametrize(
    "name, samples, over",
    [
        ("a word", voice_like(0.3), 0.5),
        ("a line", voice_like(4), 3),
        ("a paragraph", voice_like(14), 3),
        ("clicks", clicking(3), 15),
        ("a soft tone", tone(440, 2, amplitude=0.01), None),
    ],
)
def test_a_clip_is_levelled_to_the_voice_under_the_speech_peak(name, samples, over):
    """`over`: dB at least by which the clip, boosted to the voice's level, passes the ceiling (None: it does not)."""
    clip = np.round(samples * 32767).astype(np.int16)
    boosted = clip / 32768 * meter.gain(VOICE_LUFS - meter.joined_loudness(clip / 32768))
    if over is None:
        assert reference_true_peak(boosted) < SPEECH_PEAK
    else:
        assert reference_true_peak(boosted) > SPEECH_PEAK + over
    levelled = limiter.level(clip, VOICE_LUFS, SPEECH_PEAK, meter.joined_loudness)
    assert len(levelled) == len(clip)
    assert_voice_level(levelled)


PIPER_LINES = [
    "Step 3.",
    "Knead the muscle beside the spine with your thumbs, in small unhurried circles.",
    "Warm a little oil between your palms. Then rest your hands on the upper back, and breathe.",
]


@needs_piper
def test_clips_the_natural_voice_makes_are_at_the_voice_level_under_the_speech_peak(tmp_path):
    routine = load_routine_text(tmp_path, "title: T\nsteps: [{name: A, say: Hello.}]\n")
    request = voice_request(routine.voice_settings, VoiceOverride(engine="piper"))
    clips = voice_clips({line: line for line in PIPER_LINES}, request, tmp_path / "cache", 2, lambda done, total: None)
    assert clips.made == len(PIPER_LINES)
    for line in PIPER_LINES:
        assert_voice_level(clips.read(line))
