"""Writing a routine by hand: `voiceguide new`, counts in words, and the script's note of the background bed."""

from __future__ import annotations

import re
import shutil

import mutagen.mp3
import pytest
from conftest import ROUTINES, SAMPLE_RATE, decode, read_plan, run_cli

ESPEAK = ("--engine", "pyttsx3")
STARTER_CHAPTERS = [
    "Introduction", "Spread the oil", "Long strokes", "Shoulder squeeze, left side", "Shoulder squeeze, right side",
    "Closing",
]
# The keys most routines use: the starter shows each, in use or in a note.
COMMON_KEYS = [
    "title", "description", "author", "language", "voice", "engine", "name", "speed", "background", "pronounce",
    "intro", "defaults", "steps", "say", "hold", "transition", "cues", "at", "repeat", "rounds", "between",
    "countdown", "use", "outro",
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
        "wrote routines/back-rub.yaml; edit it, and 'voiceguide watch routines/back-rub.yaml' builds it again "
        "at each save\n"
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
    uncommented = re.sub(r"^( *)# ( *(- )?\w+:)", r"\1\2", body, flags=re.MULTILINE)
    assert uncommented.count("\n") == body.count("\n") and uncommented != body
    assert "\n  - use: back-pain-relief.yaml" in uncommented
    shutil.copy(ROUTINES / "back-pain-relief.yaml", tmp_path)
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


def test_one_of_a_thing_is_singular_everywhere(tmp_path, own_cache):
    routine = tmp_path / "one.yaml"
    routine.write_text(ONE_STEP, encoding="utf-8")
    out = tmp_path / "out"
    assert run_cli("validate", routine).stdout == f"ok: {routine} (1 step)\n"
    planned = run_cli("plan", routine, *ESPEAK).stdout.splitlines()[0]
    assert re.fullmatch(r"One step: \S+ \(speech: 0 lines from cached clips, 1 estimated\)", planned)
    built = run_cli("build", routine, "-o", out, *ESPEAK)
    summary = built.stdout.splitlines()[1]
    levels = r"voice \S+ LUFS, track \S+ LUFS, peak \S+ dBTP"
    assert re.fullmatch(rf"built \S+ \(\S+, 1 chapter, {levels}\): 0 clips reused, 1 new, in \S+", summary)
    again = run_cli("build", routine, "-o", out, "--force", *ESPEAK)
    assert ": 1 clip reused, 0 new, in " in again.stdout
    assert "speech: 1 line from cached clips, 0 estimated" in run_cli("plan", routine, *ESPEAK).stdout
    script = (out / "one.md").read_text(encoding="utf-8")
    assert " in all, 1 chapter.\n" in script
    natural = read_plan(out / "one.mp3")["length"]
    longer = run_cli("plan", routine, "--length", f"{natural + 13:.1f}s", "--fill", "repeat", *ESPEAK)
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


# ---------------------------------------------------------------- mistakes a new author makes, each reported plainly


def validate_text(tmp_path, text: str) -> list[str]:
    """`voiceguide validate` on a routine with `text` (exit 2 expected): its error lines, file named r.yaml."""
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    result = run_cli("validate", path)
    assert (result.exit_code, result.stdout) == (2, ""), result.stdout
    return [line.replace(str(path), "r.yaml") for line in result.stderr.splitlines()]


def test_a_comma_in_text_inside_braces_says_to_quote_it(tmp_path):
    text = (
        "title: T\nsteps:\n  - name: A\n    say: Hi.\n    hold: 30s\n"
        "    cues: [{at: half, say: Keep the strokes long, slow and even.}]\n"
        "  - {name: B, say: Now, gently, and slowly, hold: 3s}\n"
        "  - {name: C, say: Hi., hold: 3s, extra}\n"
    )
    assert validate_text(tmp_path, text) == [
        "error: r.yaml:6:51: steps[0].cues[0].'slow and even.': unknown key; text with a comma needs quotes inside "
        '{braces}: say: "Keep the strokes long, slow and even."',
        "error: r.yaml:7:25: steps[1].gently: unknown key; text with a comma needs quotes inside {braces}: "
        'say: "Now, gently, and slowly"',
        "error: r.yaml:8:35: steps[2].extra: unknown key; expected one of name, say, hold, transition, cues, repeat, "
        "rounds, between, countdown, breathe, min, max, flex, weight, repeatable",
    ]
    fixed = text.replace("say: Keep the strokes long, slow and even.", 'say: "Keep the strokes long, slow and even."')
    fixed = fixed.replace("say: Now, gently, and slowly", 'say: "Now, gently, and slowly"').replace(", extra}", "}")
    (tmp_path / "r.yaml").write_text(fixed, encoding="utf-8")
    assert run_cli("validate", tmp_path / "r.yaml").exit_code == 0


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("title: T\nsteps:\n\t- name: A\n\t  say: Hi.\n", "3:1"),
        ("title: T\nsteps:\n  - name: A\n\tsay: Hi.\n", "4:1"),
        ("title: T\nsteps:\n  - name: A\n    say: Hi.\n  \t hold: 3s\n", "5:3"),
    ],
    ids=["a tab-indented list", "a tab under a list item", "a tab among spaces"],
)
def test_a_tab_in_the_indentation_is_named_with_its_place(tmp_path, text, where):
    assert validate_text(tmp_path, text) == [f"error: r.yaml:{where}: a tab indents this line; indent with spaces only"]


def test_a_step_missing_say_still_reports_its_other_problems(tmp_path):
    text = "title: T\nsteps:\n  - name: A\n    hold: 5s\n    min: 10s\n    rounds: [left, right]\n    colour: red\n"
    assert validate_text(tmp_path, text) == [
        "error: r.yaml:7:5: steps[0].colour: unknown key; expected one of name, say, hold, transition, cues, repeat, "
        "rounds, between, countdown, breathe, min, max, flex, weight, repeatable",
        "error: r.yaml:3:5: steps[0]: missing required key 'say' (narration: a string, or a list of lines spoken "
        "in turn, with pauses between)",
        "error: r.yaml:3:5: steps[0]: 'rounds' names 2 rounds but 'repeat' is 1",
        "error: r.yaml:3:5: steps[0]: 'min' (10s) is longer than 'hold' (5s)",
    ]


def test_rules_across_keys_check_only_the_values_that_parsed(tmp_path):
    text = (
        "title: T\nsteps:\n  - name: A\n    say: Hi.\n    hold: soon\n    min: 10s\n    breathe: {in: 0.5s, out: x}\n"
        "    cues:\n      - {at: half}\n      - {at: 5s, say: '', sound: bell}\n"
    )
    assert validate_text(tmp_path, text) == [
        "error: r.yaml:5:11: steps[0].hold: expected a duration like 45s, 1m30s, 2m or 1:30, got 'soon'",
        "error: r.yaml:7:30: steps[0].breathe.out: expected a duration like 45s, 1m30s, 2m or 1:30, got 'x'",
        "error: r.yaml:7:14: steps[0].breathe: breaths need 'in' and 'out' of at least 1s each",
        "error: r.yaml:9:9: steps[0].cues[0]: a cue needs either 'say' or 'sound' (one of them)",
        "error: r.yaml:10:23: steps[0].cues[1].say: is empty; give it some text",
    ]
