"""Custom lengths: fitting holds as pure arithmetic, and planning to an exact length."""

from __future__ import annotations

import itertools

import pytest
from conftest import load_routine_text, sound_length

from voiceguide import audio, timeline
from voiceguide.errors import VoiceguideError
from voiceguide.fitting import Hold, Unreachable, fit


def test_fit_scales_holds_in_proportion_to_their_length():
    holds = [Hold(100, 0, 1000), Hold(300, 0, 1000)]
    assert fit(holds, 800) == [200, 600]
    assert fit(holds, 200) == [50, 150]


def test_fit_respects_bounds_and_the_rest_keep_absorbing():
    holds = [Hold(100, 50, 120), Hold(100, 0, 1000), Hold(100, 100, 100)]
    lengths = fit(holds, 600)
    assert lengths[0] == 120 and lengths[2] == 100 and sum(lengths) == 600
    lengths = fit(holds, 160)
    assert lengths[0] == 50 and lengths[1] == 10 and lengths[2] == 100


def test_fit_weights_take_more_of_the_change():
    lengths = fit([Hold(100, 0, 10_000, weight=1), Hold(100, 0, 10_000, weight=3)], 600)
    assert lengths == [200, 400]


@pytest.mark.parametrize("target", [3, 7, 333, 1001, 123_457])
def test_fit_is_exact_to_the_sample(target):
    holds = [Hold(37, 0, 100_000), Hold(91, 3, 100_000, 0.7), Hold(13, 0, 100_000, 2.5)]
    lengths = fit(holds, target)
    assert sum(lengths) == target
    assert all(hold.minimum <= length <= hold.maximum for hold, length in zip(holds, lengths, strict=True))


def test_fit_unreachable_names_the_range():
    with pytest.raises(Unreachable) as raised:
        fit([Hold(100, 50, 200), Hold(10, 10, 10)], 500)
    assert (raised.value.shortest, raised.value.longest) == (60, 210)


ROUTINE = """\
    title: T
    steps:
      - name: A
        say: One.
        hold: 60s
        cues: [{at: half, say: Halfway.}, {at: -10s, sound: bell}]
      - name: B
        say: Two.
        hold: 30s
        min: 20s
        max: 40s
      - name: C
        say: Three.
        hold: 10s
        flex: false
      - name: D
        say: Four.
        hold: 20s
        weight: 2
        repeatable: true
    """


def speech(routine):
    return {text: audio.samples(1 + len(text) / 20) for text in timeline.spoken_lines(routine)}


def holds_of(plan):
    return {plan.chapters[event.chapter].title: event.length for event in plan.of_kind("hold")}


@pytest.mark.parametrize("factor", [0.5, 1, 2, 2.5])
def test_plan_to_a_length_is_exact_and_bounds_hold(tmp_path, factor):
    routine = load_routine_text(tmp_path, ROUTINE)
    natural = timeline.plan(routine, speech(routine), sound_length)
    target = round(natural.length * factor) + 17  # an awkward number of samples
    fitted = timeline.plan(routine, speech(routine), sound_length, length=target)
    assert fitted.length == target
    holds = holds_of(fitted)
    assert audio.samples(20) <= holds["B"] <= audio.samples(40)
    assert holds["C"] == audio.samples(10)
    assert fitted.chapters[-1].end == target


def test_cues_are_placed_again_in_the_fitted_hold(tmp_path):
    routine = load_routine_text(tmp_path, ROUTINE)
    fitted = timeline.plan(routine, speech(routine), sound_length, length=audio.samples(300))
    hold = next(event for event in fitted.of_kind("hold") if event.chapter == 0)
    halfway = next(event for event in fitted.events if event.text == "Halfway.")
    bell = next(event for event in fitted.events if event.cue and event.sound)
    assert abs(halfway.start - (hold.start + hold.length / 2)) <= 1
    assert bell.start == hold.end - audio.samples(10)


def test_weights_take_more_of_the_stretch(tmp_path):
    routine = load_routine_text(tmp_path, ROUTINE)
    natural = timeline.plan(routine, speech(routine), sound_length)
    fitted = timeline.plan(routine, speech(routine), sound_length, length=natural.length + audio.samples(60))
    before, after = holds_of(natural), holds_of(fitted)
    # D (20s, weight 2) stretches by the same factor as A (60s, weight 1) would at twice the rate.
    assert (after["D"] / before["D"] - 1) == pytest.approx(2 * (after["A"] / before["A"] - 1), rel=1e-3)


def test_unreachable_length_says_the_range(tmp_path):
    routine = load_routine_text(tmp_path, ROUTINE)
    with pytest.raises(VoiceguideError, match=r"^r can run from \d+m\d+s to \d+m\d+s; asked for 1m"):
        timeline.plan(routine, speech(routine), sound_length, length=audio.samples(60))
    with pytest.raises(VoiceguideError, match="--fill repeat"):
        timeline.plan(routine, speech(routine), sound_length, length=audio.samples(3 * 3600))


def test_fill_repeat_adds_rounds_of_repeatable_steps(tmp_path):
    routine = load_routine_text(tmp_path, ROUTINE)
    target = audio.samples(3 * 3600)
    fitted = timeline.plan(routine, speech(routine), sound_length, length=target, fill_repeat=True)
    assert fitted.length == target
    assert fitted.notes and fitted.notes[0].startswith("repeated 'D'")
    titles = [chapter.title for chapter in fitted.chapters]
    assert titles.count("A") == 1 and sum(title.startswith("D (round") for title in titles) > 10


def test_colliding_cues_are_moved_and_warned(tmp_path):
    routine = load_routine_text(tmp_path, """\
        title: T
        steps:
          - name: A
            say: One.
            hold: 10s
            cues: [{at: -1s, say: This cue is far too long to end before the hold ends.}]
            countdown: 3
        """)
    plan = timeline.plan(routine, speech(routine), sound_length)
    hold = plan.of_kind("hold")[0]
    inside = sorted((event for event in plan.events if event.cue), key=lambda event: event.start)
    assert all(hold.start <= event.start and event.end <= hold.end for event in inside)
    assert all(a.end <= b.start for a, b in itertools.pairwise(inside))
    assert any("was moved" in warning for warning in plan.warnings)


def test_build_and_plan_through_the_cli(cli, routine_file, tmp_path, own_cache):
    routine = routine_file("two-steps.yaml")
    out = tmp_path / "out"
    result = cli("plan", routine, "--length", "45s")
    assert result.exit_code == 0, result.stderr
    assert "0 lines from cached clips, 5 estimated" in result.stdout
    assert result.stdout.rstrip().endswith("0:45  end")
    result = cli("build", routine, "-o", out, "--length", "45s")
    assert result.exit_code == 0, result.stderr
    mp3 = out / "two-steps-45s.mp3"
    from conftest import decode

    assert abs(len(decode(mp3)) / 44_100 - 45) < 0.05
    result = cli("plan", routine, "--length", "45s")
    assert "5 lines from cached clips, 0 estimated" in result.stdout


def test_unreachable_length_through_the_cli(cli, routine_file, tmp_path):
    result = cli("build", routine_file("two-steps.yaml"), "-o", tmp_path / "out", "--length", "5s")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: two-steps can run from ")
    assert "asked for 5s" in result.stderr
    assert not (tmp_path / "out" / "two-steps-5s.mp3").exists()
