"""Fuzzing the loader and planner: any input builds a valid plan or raises the one user-error type."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import sound_length
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from voiceguide import audio, timeline
from voiceguide import routine as routines
from voiceguide.errors import RoutineError, VoiceguideError
from voiceguide.voices.clips import estimate_lengths

FUZZ = settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])

awkward_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40
) | st.sampled_from(["", " ", "\t", "שלום עולם", "مرحبا", "🙂💆‍♀️", "a\u202eb", "x" * 6000, "\x00\x07", "~", "null",
                     "yes", "1:30", "-5s", "nan", "1e309", "half", "50%", "-10s", "chime", "none", "rain"])
scalars = (st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats(allow_nan=True, allow_infinity=True) | awkward_text)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(awkward_text, inner, max_size=4),
                      max_leaves=12)

STEP_KEYS = ["name", "say", "hold", "transition", "cues", "repeat", "rounds", "between", "countdown", "breathe",
             "min", "max", "flex", "weight", "repeatable"]
plausible = {
    "name": st.sampled_from(["Warm-up", "Warm-up", "", "Kneading"]) | awkward_text,
    "say": awkward_text | st.lists(awkward_text, max_size=3),
    "hold": st.sampled_from(["30s", "1m", "0", "1:30", "-1s", "forever", "99999999h"]) | scalars,
    "transition": st.sampled_from(["chime", "bell", "none", "missing.wav", "../etc/passwd"]),
    "cues": st.lists(st.fixed_dictionaries({"at": st.sampled_from(["half", "10s", "-5s", "150%", "x"]),
                                            "say": awkward_text}), max_size=3),
    "repeat": st.integers(-2, 30) | scalars,
    "countdown": st.integers(-1, 40) | st.fixed_dictionaries({"count": st.integers(0, 5), "style": st.sampled_from(["voice", "tick", "x"])}),
    "breathe": st.fixed_dictionaries({"in": st.sampled_from(["4s", "0s", "x"]), "out": st.sampled_from(["6s", "1s"])}),
    "min": st.sampled_from(["10s", "5m", "x"]), "max": st.sampled_from(["10s", "5m", "2h"]),
    "flex": st.booleans() | scalars, "weight": st.floats(-1, 10) | scalars, "repeatable": st.booleans(),
    "rounds": st.lists(awkward_text, max_size=3), "between": awkward_text,
}
steps = st.dictionaries(st.sampled_from(STEP_KEYS + ["colour"]), st.deferred(lambda: st.one_of(values)), max_size=6) | st.fixed_dictionaries(
    {"name": plausible["name"], "say": plausible["say"]},
    optional={key: plausible[key] for key in STEP_KEYS if key not in ("name", "say")},
)
routine_documents = st.fixed_dictionaries(
    {"title": awkward_text, "steps": st.lists(steps, max_size=5) | values},
    optional={"intro": plausible["say"], "outro": plausible["say"], "language": st.sampled_from(["en", "fr", "xx-", "en-us"]),
              "voice": st.fixed_dictionaries({}, optional={"speed": scalars, "engine": st.sampled_from(["pyttsx3", "x"])}),
              "background": st.sampled_from(["rain", "drone", "none", "nope"]) | values,
              "defaults": st.dictionaries(st.sampled_from(STEP_KEYS), values, max_size=3), "extra": values},
) | values


def check(text: str, length: int | None) -> None:
    try:
        routine = routines.loads(text, "fuzz.yaml", Path("."))
    except RoutineError as error:
        assert error.problems and all(problem.startswith("fuzz.yaml") for problem in error.problems)
        assert all("\n" not in problem for problem in error.problems)
        return
    lines = timeline.spoken_lines(routine)
    try:
        plan = timeline.plan(routine, estimate_lengths(dict.fromkeys(lines), 1.0), sound_length, length)
    except VoiceguideError:
        return
    assert plan.length > 0 and (length is None or plan.length == length)
    assert all(event.start >= 0 and event.end <= plan.length for event in plan.events)
    assert [chapter.start for chapter in plan.chapters[1:]] == [chapter.end for chapter in plan.chapters[:-1]]


@FUZZ
@given(routine_documents, st.none() | st.integers(1, audio.samples(3 * 3600)))
def test_generated_routines_plan_or_raise_a_user_error(document, length):
    check(yaml.safe_dump(document, allow_unicode=True), length)


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_the_loader(text):
    check(text, None)


@FUZZ
@given(st.lists(st.sampled_from(["title: T\n", "steps:\n", "  - name: A\n", "    say: Hi.\n", "    hold: 1m\n", "&a ", "*a",
                                 "<<: *a\n", "\t", "- ", ": ", "'", '"', "{", "[", "}\n", "]\n", "!!binary ", "!!python/object ",
                                 "? ", "--- \n", "...\n", "%YAML 1.1\n", "\ufeff", "# c\n"]), max_size=30))
def test_yaml_shaped_noise_never_crashes_the_loader(pieces):
    check("".join(pieces), None)
