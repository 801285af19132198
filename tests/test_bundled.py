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
from conftest import ROUTINES, SAMPLE_RATE, decode, estimated_plan, read_plan, true_peak

from voiceguide import audio
from voiceguide import routine as routines
from voiceguide.durations import parse_duration

BUNDLED = sorted(path.name for path in ROUTINES.glob("*.yaml"))


# The chapters each routine's steps promise, read off the YAML: one per round, plus intro and outro.
TITLES = {
    "back-pain-relief.yaml": [
        "Introduction", "Get into position", "Spread the oil", "Light strokes at the neck", "Up and down the back",
        "Between the shoulder blades", "Work the tight spots", "Shoulder shake, left side",
        "Shoulder shake, right side",
        "Shoulder blade strokes, left side", "Shoulder blade strokes, right side", "Shoulders and collarbones",
        "Heels of the hands", "Finishing strokes", "Closing",
    ],
    "back-pressure-points.yaml": [
        "Introduction", "Get into position", "Neck and shoulder, left side", "Neck and shoulder, right side",
        "Between the shoulder blades", "Beside the spine, left side", "Beside the spine, right side",
        "Below the pelvis, left side", "Below the pelvis, right side", "Below the armpit, left side",
        "Below the armpit, right side", "Behind the shoulder, left side", "Behind the shoulder, right side", "Closing",
    ],
    "breath-paced-reflex-points-fr.yaml": [
        "Introduction", "Installer votre partenaire", "Écouter la respiration", "De la nuque aux flancs",
        "Le long de la colonne", "Vers les aisselles", "Les points des poumons", "Les points du cœur",
        "Les points de l'estomac", "Les points du foie", "Le point de la rate", "Le point des reins",
        "Effleurages pour finir", "Conclusion",
    ],
    "breath-paced-reflex-points.yaml": [
        "Introduction", "Settle and cover", "Find the breath", "Neck to the sides", "Thumbs along the spine",
        "Up toward the underarms", "The lung points", "The heart points", "The stomach points", "The liver points",
        "The spleen point", "The kidney point", "Closing strokes", "Closing",
    ],
    "classic-back-massage.yaml": [
        "Introduction", "Get into position", "Thumbs beside the spine", "Long oiled strokes", "Outward strokes",
        "Knead the shoulder, left side", "Knead the shoulder, right side", "Knead the middle back, left side",
        "Knead the middle back, right side", "Knead the buttock, left side", "Knead the buttock, right side",
        "Light closing strokes", "Closing",
    ],
    "short-back-session.yaml": [
        "Introduction", "Get into position", "Spread the oil", "Up and down the back", "Between the shoulder blades",
        "Beside the spine, left side", "Beside the spine, right side", "Shoulders and collarbones",
        "Light closing strokes", "Closing",
    ],
    "tennis-ball-self-massage.yaml": [
        "Introduction", "Lie down on the balls", "Settle onto the balls", "Roll up and down", "Roll side to side",
        "Lean onto one ball, left side", "Lean onto one ball, right side", "Slow circles", "Rest without the balls",
        "Closing",
    ],
}


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
    assert [chapter.title for chapter in plan.chapters] == TITLES[name]
    assert plan.warnings == ()
    assert 8 * 60 <= audio.seconds(plan.length) <= 25 * 60
    assert re.search(r"spine", " ".join(routine.intro), flags=re.IGNORECASE) or routine.language == "fr"
    assert routine.outro


@pytest.mark.slow
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_routine_builds_with_chapters_matching_its_steps(name, bundled_build):
    built = bundled_build(ROUTINES / name)
    assert built.result.exit_code == 0, built.result.stderr
    plan = read_plan(built.mp3)
    samples = decode(built.mp3)
    assert abs(len(samples) / SAMPLE_RATE - plan["length"]) < 0.05
    assert true_peak(samples) <= -1.0  # MP3 coding lifts peaks; the build checks, and encodes again if need be
    chapters = mutagen.mp3.MP3(built.mp3).tags.getall("CHAP")  # in the order they are stored
    assert [str(frame.sub_frames["TIT2"]) for frame in chapters] == TITLES[name]
    assert [frame.start_time for frame in chapters] == [round(c["start"] * 1000) for c in plan["chapters"]]


@pytest.mark.slow
@pytest.mark.parametrize("factor", [0.5, 1, 2, 3])
@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_routine_at_other_lengths_is_exact(name, factor, bundled_build):
    built = bundled_build(ROUTINES / name, factor)
    result = built.result
    if result.exit_code == 2:  # bounds do not allow it: the error must say the range, which excludes it
        found = re.search(r"can run from (\S+) to (\S+); asked for", result.stderr)
        assert found, result.stderr
        shortest, longest = (parse_duration(text) for text in found.groups())
        assert not shortest <= parse_duration(built.length) <= longest
        assert factor == 0.5  # only shortening can hit a floor: --fill repeat reaches any longer length
        return
    assert result.exit_code == 0, result.stderr
    mp3 = built.mp3
    decoded = len(decode(mp3)) / SAMPLE_RATE
    assert abs(decoded - parse_duration(built.length)) < 0.05
    assert read_plan(mp3)["chapters"][-1]["end"] == pytest.approx(decoded, abs=0.05)
