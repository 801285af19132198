"""Writing a routine by hand: `voiceguide new`, counts in words, and the script's note of the background bed."""

from __future__ import annotations

import re

import mutagen.mp3
import pytest

from conftest import SAMPLE_RATE, decode, read_plan, run_cli

ESPEAK = ("--engine", "pyttsx3")
STARTER_CHAPTERS = [
    "Introduction", "Spread the oil", "Long strokes", "Shoulder squeeze, left side", "Shoulder squeeze, right side",
    "Closing",
]
# The keys most routines use: the starter shows each, in use or in a note.
COMMON_KEYS = [
    "title", "description", "author", "language", "voice", "engine", "name", "speed", "background", "pronounce",
    "intro", "defaults", "steps", "say", "hold", "transition", "cues", "at", "repeat", "rounds", "between",
    "countdown", "outro",
]


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    """`voiceguide new back-rub` run in a fresh folder, then built there: (folder, new's result, build's result)."""
    folder = tmp_path_factory.mktemp("starter")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        made = run_cli("new", "back-rub")
        built = run_cli("build", "routines/back-rub.yaml", *ESPEAK)
    return folder, made, built


def test_new_writes_a_commented_routine_that_validates(starter, monkeypatch):
    folder, made, _ = starter
    assert made.exit_code == 0, made.stderr
    assert made.stdout == (
        "wrote routines/back-rub.yaml; edit it, and 'voiceguide watch routines/back-rub.yaml' builds it again at each save\n"
    )
    text = (folder / "routines" / "back-rub.yaml").read_text(encoding="utf-8")
    assert text.startswith("# A routine to start from")
    assert 'title: "Back rub"\n' in text
    for key in COMMON_KEYS:
        assert re.search(rf"^[ #-]*{key}:", text, flags=re.MULTILINE), f"the starter does not show '{key}'"
    monkeypatch.chdir(folder)
    result = run_cli("validate", "routines/back-rub.yaml")
    assert (result.exit_code, result.stdout) == (0, "ok: routines/back-rub.yaml (3 steps)\n")


def test_the_starter_builds_into_the_track_it_describes(starter):
    folder, _, built = starter
    assert built.exit_code == 0, built.stderr
    mp3 = folder / "build" / "back-rub.mp3"
    plan = read_plan(mp3)
    assert [chapter["title"] for chapter in plan["chapters"]] == STARTER_CHAPTERS
    assert len(decode(mp3)) / SAMPLE_RATE == pytest.approx(plan["length"], abs=0.05)
    assert plan["length"] < 180
    assert str(mutagen.mp3.MP3(mp3).tags["TIT2"]) == "Back rub"


def test_every_note_of_a_key_in_the_starter_validates_once_uncommented(starter, tmp_path):
    text = (starter[0] / "routines" / "back-rub.yaml").read_text(encoding="utf-8")
    body = text[text.index("\ntitle:") :]  # the notes above the title are prose
    uncommented = re.sub(r"^( *)# (\w+:)", r"\1\2", body, flags=re.MULTILINE)
    assert uncommented.count("\n") == body.count("\n") and uncommented != body
    path = tmp_path / "uncommented.yaml"
    path.write_text(uncommented, encoding="utf-8")
    result = run_cli("validate", path)
    assert result.exit_code == 0, result.stderr


def test_new_never_replaces_a_file(starter, monkeypatch):
    folder = starter[0]
    routine = folder / "routines" / "back-rub.yaml"
    before = routine.read_bytes()
    monkeypatch.chdir(folder)
    result = run_cli("new", "back-rub.yaml")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "error: routines/back-rub.yaml already exists; give another name, or edit that file\n"
    assert routine.read_bytes() == before


@pytest.mark.parametrize("name", ["a/b", "../up", "a b", ".hidden", ""])
def test_new_wants_a_plain_name(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run_cli("new", name)
    assert result.exit_code == 2
    assert result.stderr == (
        f"error: {name!r} is not a routine name; give a plain name like back-rub (letters, digits, - and _)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_new_into_another_folder_with_a_title_yaml_would_misread(tmp_path):
    result = run_cli("new", "null", "--folder", tmp_path / "mine")
    assert result.exit_code == 0, result.stderr
    assert run_cli("validate", tmp_path / "mine" / "null.yaml").exit_code == 0  # the title "Null", not YAML's null


# ---------------------------------------------------------------- counts in words, and the bed in the script

ONE_STEP = """\
title: One step
background: {sound: drone, level: -25dB}
steps:
  - name: Rest
    say: Rest your hands.
    hold: 3s
    repeatable: true
"""


def test_one_of_a_thing_is_singular_everywhere(tmp_path):
    routine = tmp_path / "one.yaml"
    routine.write_text(ONE_STEP, encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli("validate", routine).stdout == f"ok: {routine} (1 step)\n"
    planned = run_cli("plan", routine, "-o", out, *ESPEAK).stdout.splitlines()[0]
    assert re.fullmatch(r"One step: \S+ \(speech: 0 lines from cached clips, 1 estimated\)", planned)
    built = run_cli("build", routine, "-o", out, *ESPEAK)
    assert re.fullmatch(r"built \S+ \(\S+, 1 chapter, \S+ LUFS, \S+ dBTP\): 0 clips reused, 1 new, in \S+", built.stdout.splitlines()[1])
    again = run_cli("build", routine, "-o", out, "--force", *ESPEAK)
    assert ": 1 clip reused, 0 new, in " in again.stdout
    assert "speech: 1 line from cached clips, 0 estimated" in run_cli("plan", routine, "-o", out, *ESPEAK).stdout
    script = (out / "one.md").read_text(encoding="utf-8")
    assert " in all, 1 chapter.\n" in script
    natural = read_plan(out / "one.mp3")["length"]
    longer = run_cli("plan", routine, "-o", out, "--length", f"{natural + 13:.1f}s", "--fill", "repeat", *ESPEAK)
    assert "note: repeated 'Rest' 1 more time\n" in longer.stderr


def test_the_script_names_the_background_bed(tmp_path, two_steps_mp3):
    routine = tmp_path / "one.yaml"
    routine.write_text(ONE_STEP, encoding="utf-8")
    assert run_cli("build", routine, "-o", tmp_path, *ESPEAK).exit_code == 0
    lines = (tmp_path / "one.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# One step" and lines[2].endswith(" in all, 1 chapter.")
    assert lines[3:6] == ["", "Under the whole track: *drone*, 25 dB below the voice, dipping while it speaks.", ""]
    assert read_plan(tmp_path / "one.mp3")["background"] == {"sound": "drone", "level": -25.0}
    assert "Under the whole track" not in two_steps_mp3.with_suffix(".md").read_text(encoding="utf-8")
