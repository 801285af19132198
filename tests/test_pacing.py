"""Hands-free pacing: cues, rounds, countdowns, breathing tones and the ducked ambient bed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from conftest import SAMPLE_RATE, decode, level_db, read_plan, span

from voiceguide import audio, sounds
from voiceguide.levels import BED_DUCK, VOICE_LUFS
from voiceguide.meter import integrated_loudness
from voiceguide.render import BED_FADE, DUCK_RAMP, render
from voiceguide.routine import Background
from voiceguide.timeline import Event, Timeline

SECOND = SAMPLE_RATE


def rendered(timeline: Timeline, source=lambda event: np.zeros(event.length, dtype=np.int16)) -> np.ndarray:
    return np.concatenate(list(render(timeline, source))).astype(np.float32) / 32768


def bed_timeline(seconds: float, events=(), level=-20.0, sound="rain") -> Timeline:
    background = Background(sound=sounds.builtin_path(sound), level=level)
    return Timeline("t", tuple(events), (), audio.samples(seconds), background)


def test_bed_sits_at_its_level_below_the_voice():
    samples = rendered(bed_timeline(30, level=-20))
    middle = samples[10 * SECOND : 20 * SECOND]
    assert integrated_loudness(middle) == pytest.approx(VOICE_LUFS - 20, abs=1.0)


def test_bed_fades_in_and_out():
    samples = rendered(bed_timeline(30))
    assert level_db(samples[:2000]) < level_db(samples[10 * SECOND : 11 * SECOND]) - 30
    assert level_db(samples[-2000:]) < level_db(samples[10 * SECOND : 11 * SECOND]) - 30
    assert abs(samples[0]) < 1e-4 and abs(samples[-1]) < 1e-3


def test_bed_ducks_under_speech_and_comes_back_smoothly():
    speech = Event("speech", 10 * SECOND, 5 * SECOND, 0, text="(silent stand-in)")
    samples = rendered(bed_timeline(30, [speech]))
    plain = level_db(samples[4 * SECOND : 9 * SECOND])
    ducked = level_db(samples[11 * SECOND : 14 * SECOND])
    after = level_db(samples[16 * SECOND : 21 * SECOND])
    assert ducked - plain == pytest.approx(BED_DUCK, abs=1.0)
    assert after == pytest.approx(plain, abs=1.0)
    # The dip is a ramp, not a step: no 10 ms window drops by more than a third of the dip.
    windows = [level_db(samples[i : i + 441]) for i in range(10 * SECOND - 2 * DUCK_RAMP, 10 * SECOND + DUCK_RAMP, 441)]
    assert max(abs(a - b) for a, b in itertools.pairwise(windows)) < abs(BED_DUCK) / 3 + 3


@pytest.mark.parametrize("sound", ["rain", "drone"])
def test_bed_loops_without_a_seam(sound):
    loop = len(sounds.load(sounds.builtin_path(sound)))
    samples = rendered(bed_timeline(audio.seconds(loop) * 2 + 10, sound=sound))
    jumps = np.abs(np.diff(samples[loop - SECOND : loop + SECOND]))
    seam = abs(samples[loop] - samples[loop - 1])
    assert seam <= np.percentile(jumps, 99.9)
    before, after = samples[loop - 4410 : loop], samples[loop : loop + 4410]
    assert level_db(before) == pytest.approx(level_db(after), abs=1.5)
    assert loop > BED_FADE  # the seam checked lies in the full-level part


@pytest.fixture(scope="module")
def paced(tmp_path_factory):
    """Build the paced fixture (rounds, cues, countdowns, breathing, a bed) through the real CLI."""
    from click.testing import CliRunner
    from conftest import FIXTURES

    from voiceguide.cli import main

    out = tmp_path_factory.mktemp("out")
    result = CliRunner().invoke(main, ["build", str(FIXTURES / "paced.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    mp3 = out / "paced.mp3"
    return decode(mp3), read_plan(mp3)


def onset(samples: np.ndarray, around: float, threshold: float) -> float:
    """Seconds of the first sample louder than `threshold` within 150 ms of `around`."""
    start = int((around - 0.15) * SAMPLE_RATE)
    window = np.abs(samples[start : start + int(0.3 * SAMPLE_RATE)])
    loud = np.flatnonzero(window > threshold)
    assert loud.size, f"nothing above {threshold} near {around:.3f}s"
    return (start + loud[0]) / SAMPLE_RATE


def test_rounds_are_chapters_named_by_round(paced):
    _, plan = paced
    titles = [chapter["title"] for chapter in plan["chapters"]]
    assert titles == ["Shoulder blades, left", "Shoulder blades, right", "Breathe together", "Closing"]
    spoken = [event["text"] for event in plan["events"] if event["kind"] == "speech" and event["chapter"] == 1]
    assert spoken[0] == "Now the other side."


def test_ticks_and_cues_sound_at_their_planned_times(paced):
    samples, plan = paced
    holds = [event for event in plan["events"] if event["kind"] == "hold"]
    ticks = [event for event in plan["events"] if event.get("sound") == "tick"]
    assert len(ticks) == 6
    for hold in holds[:2]:
        expected = [hold["end"] - 3, hold["end"] - 2, hold["end"] - 1]
        mine = [tick["start"] for tick in ticks if hold["start"] <= tick["start"] < hold["end"]]
        assert mine == pytest.approx(expected, abs=0.002)
    for tick in ticks:
        assert abs(onset(samples, tick["start"], 0.1) - tick["start"]) < 0.05
    halfway = [event for event in plan["events"] if event.get("text") == "Halfway."]
    for cue, hold in zip(halfway, holds[:2], strict=True):  # the first two holds have a halfway cue
        assert cue["start"] == pytest.approx((hold["start"] + hold["end"]) / 2, abs=0.002)
        assert abs(onset(samples, cue["start"], 0.05) - cue["start"]) < 0.05


def test_spoken_countdown(paced):
    samples, plan = paced
    hold = [event for event in plan["events"] if event["kind"] == "hold"][2]
    numbers = [event for event in plan["events"] if event.get("text") in ("2", "1")]
    assert [event["start"] for event in numbers] == pytest.approx([hold["end"] - 2, hold["end"] - 1], abs=0.002)
    for number in numbers:
        assert level_db(span(samples, number["start"], number["end"])) > -35


def dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    frequencies = np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)
    band = (frequencies > 150) & (frequencies < 500)
    return float(frequencies[band][np.argmax(spectrum[band])])


def test_breathing_tones_rise_and_fall_through_the_hold(paced):
    samples, plan = paced
    breaths = [event for event in plan["events"] if event["kind"] == "breath"]
    assert [round(b["end"] - b["start"], 3) for b in breaths] == [3.0, 4.0, 3.0]
    assert breaths[1]["start"] - breaths[0]["end"] == pytest.approx(1.0, abs=0.002)  # the held breath
    rising, falling = breaths[0], breaths[1]
    assert dominant_hz(span(samples, rising["start"] + 0.2, rising["start"] + 1.0)) < dominant_hz(
        span(samples, rising["end"] - 1.0, rising["end"] - 0.2))
    assert dominant_hz(span(samples, falling["start"] + 0.2, falling["start"] + 1.2)) > dominant_hz(
        span(samples, falling["end"] - 1.2, falling["end"] - 0.2))
    middle = span(samples, rising["start"] + 1.2, rising["start"] + 1.8)
    hold = [event for event in plan["events"] if event["kind"] == "hold"][0]
    bed_alone = span(samples, hold["start"] + 0.5, hold["start"] + 3.5)
    assert level_db(middle) > level_db(bed_alone) + 3  # heard over a bed set louder than the default


def test_ambience_under_the_holds(paced):
    samples, plan = paced
    hold = [event for event in plan["events"] if event["kind"] == "hold"][0]
    quiet = span(samples, hold["start"] + 0.5, hold["start"] + 3.5)  # before the halfway cue
    assert -50 < level_db(quiet) < -30
