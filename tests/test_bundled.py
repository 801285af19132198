"""The bundled routines: each validates, plans, and builds into the MP3 its steps promise.

The real builds (every routine, and every routine at 0.5x, 1x, 2x and 3x its length) are
marked slow: the default run leaves them out to stay under three minutes, and CI runs them
(`pytest -m slow` in .ci/run).
"""

from __future__ import annotations

import re
from pathlib import Path

import mutagen.mp3
import pytest

from voiceguide import audio, routine as routines, timeline
from voiceguide.build import sound_length
from voiceguide.durations import format_duration, parse_duration
from voiceguide.voices.clips import estimate_lengths

from conftest import ROUTINES, SAMPLE_RATE, decode, read_plan, true_peak

BUNDLED = sorted(path.name for path in ROUTINES.glob("*.yaml"))


def expected_titles(routine: routines.Routine) -> list[str]:
    """Chapter titles the routine's steps promise: one per round, plus intro and outro."""
    titles = []
    for step in routine.steps:
        for number in range(step.repeat):
            if step.rounds:
                titles.append(f"{step.name}, {step.rounds[number]}")
            else:
                titles.append(step.name if step.repeat == 1 else f"{step.name} (round {number + 1} of {step.repeat})")
    frame = timeline.FRAME_TITLES.get(routine.language, timeline.FRAME_TITLES["en"])
    return ([frame[0]] if routine.intro else []) + titles + ([frame[1]] if routine.outro else [])


def estimated_plan(routine: routines.Routine, length: int | None = None, fill_repeat: bool = False):
    lines = dict.fromkeys(timeline.spoken_lines(routine))
    return timeline.plan(routine, estimate_lengths(lines, routine.voice.speed), sound_length, length, fill_repeat)


def test_seven_routines_are_bundled():
    assert BUNDLED == [
        "back-pain-relief.yaml", "back-pressure-points.yaml", "breath-paced-reflex-points-fr.yaml",
        "breath-paced-reflex-points.yaml", "classic-back-massage.yaml", "short-back-session.yaml",
        "tennis-ball-self-massage.yaml",
    ]


def test_the_composed_routine_takes_its_steps_from_three_others():
    session = routines.load(ROUTINES / "short-back-session.yaml")
    assert [path.name for path in session.used] == [
        "back-pain-relief.yaml", "back-pressure-points.yaml", "classic-back-massage.yaml"
    ]
    assert [(Path(str(step.location.file)).name, step.name) for step in session.steps] == [
        ("back-pain-relief.yaml", "Get into position"), ("back-pain-relief.yaml", "Spread the oil"),
        ("back-pain-relief.yaml", "Up and down the back"), ("back-pressure-points.yaml", "Between the shoulder blades"),
        ("back-pressure-points.yaml", "Beside the spine"), ("back-pain-relief.yaml", "Shoulders and collarbones"),
        ("classic-back-massage.yaml", "Light closing strokes"),
    ]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_routine_plans_its_steps_without_warnings(name):
    routine = routines.load(ROUTINES / name)
    plan = estimated_plan(routine)
    assert [chapter.title for chapter in plan.chapters] == expected_titles(routine)
    assert plan.warnings == ()
    assert 8 * 60 <= audio.seconds(plan.length) <= 25 * 60
    assert re.search(r"spine", " ".join(routine.intro), flags=re.IGNORECASE) or routine.language == "fr"
    assert routine.outro


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """One clip cache for the module, so each routine is voiced once."""
    return tmp_path_factory.mktemp("bundled")


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_routine_builds_with_chapters_matching_its_steps(name, cli, cache_dir):
    result = cli("build", ROUTINES / name, "-o", cache_dir)
    assert result.exit_code == 0, result.stderr
    mp3 = cache_dir / name.replace(".yaml", ".mp3")
    plan = read_plan(mp3)
    samples = decode(mp3)
    assert abs(len(samples) / SAMPLE_RATE - plan["length"]) < 0.05
    assert true_peak(samples) <= -1.0  # MP3 coding lifts peaks; the build checks, and encodes again if need be
    chapters = sorted(mutagen.mp3.MP3(mp3).tags.getall("CHAP"), key=lambda frame: frame.start_time)
    assert [str(frame.sub_frames["TIT2"]) for frame in chapters] == expected_titles(routines.load(ROUTINES / name))


@pytest.mark.slow
@pytest.mark.parametrize("factor", [0.5, 1, 2, 3])
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_routine_at_other_lengths_is_exact(name, factor, cli, cache_dir):
    routine = routines.load(ROUTINES / name)
    natural = estimated_plan(routine).length
    target = audio.samples(round(audio.seconds(natural) * factor))
    length = format_duration(audio.seconds(target))
    result = cli("build", ROUTINES / name, "-o", cache_dir, "--length", length, "--fill", "repeat")
    if result.exit_code == 2:  # bounds do not allow it: the error must say the range, which excludes it
        found = re.search(r"can run from (\S+) to (\S+); asked for", result.stderr)
        assert found, result.stderr
        shortest, longest = (parse_duration(text) for text in found.groups())
        assert not shortest <= audio.seconds(target) <= longest
        assert factor == 0.5  # only shortening can hit a floor: --fill repeat reaches any longer length
        return
    assert result.exit_code == 0, result.stderr
    mp3 = cache_dir / f"{routine.name}-{length}.mp3"
    decoded = len(decode(mp3)) / SAMPLE_RATE
    assert abs(decoded - parse_duration(length)) < 0.05
    assert read_plan(mp3)["chapters"][-1]["end"] == pytest.approx(decoded, abs=0.05)
