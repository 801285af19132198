"""Routine files: durations, defaults, and every kind of mistake reported with file:line:column."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import wave
from pathlib import Path

import pytest
from conftest import ROUTINES, load_routine_text

from voiceguide import routine as routines
from voiceguide import sounds
from voiceguide.durations import format_duration, parse_duration
from voiceguide.errors import RoutineError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("45", 45), ("45s", 45), ("1m30s", 90), ("2m", 120), ("1:30", 90), ("1:02:03", 3723), ("1h", 3600),
     ("2.5s", 2.5), (" 1m 5s ", 65), ("0", 0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["forever", "", "-5s", "1:3", "5x", "nan", "inf", "m", "1m-3s", "1:99", "1:60:00"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [(400, "6m40s"), (45.5, "45.5s"), (3600, "1h"), (0, "0s")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_defaults(tmp_path):
    routine = load_routine_text(tmp_path, """\
        title: T
        steps:
          - name: A
            say: Hello there.
        """)
    (step,) = routine.steps
    assert step.say == ("Hello there.",)
    assert step.hold == 0
    assert step.transition == sounds.builtin_path("chime")
    assert routine.language == "en" and routine.voice.speed == 1.0 and routine.intro == ()
    assert step.location.line == 3


def test_sound_file_relative_to_routine(tmp_path):
    (tmp_path / "ding.wav").write_bytes(sounds.builtin_path("bell").read_bytes())
    routine = load_routine_text(tmp_path, """\
        title: T
        steps:
          - {name: A, say: Hi., transition: ding.wav}
          - {name: B, say: Hi., transition: none}
        """)
    assert routine.steps[0].transition == tmp_path / "ding.wav"
    assert routine.steps[1].transition is None


def test_bundled_routines_validate():
    for path in sorted(ROUTINES.glob("*.yaml")):
        assert routines.load(path).steps


BAD = {
    "not a mapping": ("- just\n- a list\n", "r.yaml:1:1: expected a mapping of keys, got a list"),
    "empty file": ("", "r.yaml:1:1: the file is empty"),
    "yaml syntax": ("title: T\nsteps: [\n", "r.yaml:3:1: YAML syntax error"),
    "missing title": ("steps:\n  - {name: A, say: Hi.}\n", "r.yaml:1:1: missing required key 'title'"),
    "missing steps": ("title: T\n", "r.yaml:1:1: missing required key 'steps'"),
    "empty steps": ("title: T\nsteps: []\n", "r.yaml:2:8: steps: is empty; a routine needs at least one step"),
    "unknown key": ("title: T\nlenght: 3m\nsteps:\n  - {name: A, say: Hi.}\n", "r.yaml:2:1: lenght: unknown key"),
    "unknown step key": ("title: T\nsteps:\n  - name: A\n    say: Hi.\n    hodl: 3s\n",
                         "r.yaml:5:5: steps[0].hodl: unknown key; did you mean 'hold'?"),
    "bad duration": ("title: T\nsteps:\n  - name: A\n    say: Hi.\n    hold: forever\n",
                     "r.yaml:5:11: steps[0].hold: expected a duration like 45s, 1m30s, 2m or 1:30, got 'forever'"),
    "negative duration": ("title: T\nsteps:\n  - {name: A, say: Hi., hold: -5s}\n", "r.yaml:3:31: steps[0].hold: expected a duration"),
    "step missing say": ("title: T\nsteps:\n  - name: A\n", "r.yaml:3:5: steps[0]: missing required key 'say'"),
    "say is a mapping": ("title: T\nsteps:\n  - name: A\n    say: {x: 1}\n",
                         "r.yaml:4:10: steps[0].say: expected a single value, got a mapping"),
    "empty say list": ("title: T\nsteps:\n  - {name: A, say: []}\n", "r.yaml:3:20: steps[0].say: is an empty list"),
    "empty name": ("title: T\nsteps:\n  - {name: '', say: Hi.}\n", "r.yaml:3:12: steps[0].name: is empty"),
    "step not a mapping": ("title: T\nsteps:\n  - Just do it\n", "r.yaml:3:5: steps[0]: expected a mapping of keys"),
    "bad speed": ("title: T\nvoice: {speed: fast}\nsteps:\n  - {name: A, say: Hi.}\n",
                  "r.yaml:2:16: voice.speed: expected a number from 0.5 to 2.0"),
    "unknown engine": ("title: T\nvoice: {engine: alexa}\nsteps:\n  - {name: A, say: Hi.}\n",
                       "r.yaml:2:17: voice.engine: unknown engine 'alexa'"),
    "bad language": ("title: T\nlanguage: English!\nsteps:\n  - {name: A, say: Hi.}\n",
                     "r.yaml:2:11: language: expected a language code"),
    "unknown sound": ("title: T\nsteps:\n  - {name: A, say: Hi., transition: gong}\n",
                      "r.yaml:3:37: steps[0].transition: unknown sound 'gong'; built-in sounds are"),
    "missing sound file": ("title: T\nsteps:\n  - {name: A, say: Hi., transition: gong.wav}\n",
                           "r.yaml:3:37: steps[0].transition: sound file 'gong.wav' does not exist"),
    "duplicate key": ("title: T\ntitle: U\nsteps:\n  - {name: A, say: Hi.}\n", "r.yaml:2:1: title: is given twice"),
    "not utf-8": (b"title: caf\xe9\nsteps: []\n", "r.yaml:1:1: not UTF-8 text"),
    "seconds past 59": ("title: T\nsteps:\n  - {name: A, say: Hi., hold: '1:99'}\n",
                        "r.yaml:3:31: steps[0].hold: expected a duration like 45s, 1m30s, 2m or 1:30, got '1:99'"),
    "null name": ("title: T\nsteps:\n  - {name: null, say: Hi.}\n",
                  "r.yaml:3:12: steps[0].name: is null, which YAML reads as no value; give a value (in quotes to mean "
                  "the word)"),
    "tilde name": ("title: T\nsteps:\n  - {name: ~, say: Hi.}\n",
                   "r.yaml:3:12: steps[0].name: is ~, which YAML reads as no value"),
    "invisible say": ('title: T\nsteps:\n  - {name: A, say: "\\u200b\\u2060 \\ufeff"}\n',
                      "r.yaml:3:20: steps[0].say: has no visible characters (only spaces or zero-width ones); "
                      "give it some text"),
    "escape in title": ('title: "T\\e]0;HIJACK\\a"\nsteps:\n  - {name: A, say: Hi.}\n',
                        "r.yaml:1:8: title: contains the control character '\\x1b'; remove it"),
    "nul in say": ('title: T\nsteps:\n  - {name: A, say: "Hi.\\0"}\n',
                   "r.yaml:3:20: steps[0].say: contains the control character '\\x00'; remove it"),
    "12h hold": ("title: T\nsteps:\n  - {name: A, say: Hi., hold: 12h}\n",
                 "r.yaml:3:5: steps: the holds add up to 12h by steps[0]; a track may be at most 12h, "
                 "narration included"),
    "holds over 12h": ("title: T\nsteps:\n  - {name: A, say: Hi., hold: 5h}\n"
                       "  - {name: B, say: Hi., hold: 4h, repeat: 2}\n",
                       "r.yaml:4:5: steps: the holds add up to 13h by steps[1]; a track may be at most 12h"),
    "device as sound": ("title: T\nsteps:\n  - {name: A, say: Hi., transition: /dev/zero}\n",
                        "r.yaml:3:37: steps[0].transition: sound file '/dev/zero' is not a regular file"),
    "device as cover": ("title: T\ncover: /dev/zero\nsteps:\n  - {name: A, say: Hi.}\n",
                        "r.yaml:2:8: cover: image 'zero' is not a regular file"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_bad_routine_is_one_line_per_problem_exit_2_and_writes_nothing(case, cli, tmp_path):
    text, expected = BAD[case]
    path = tmp_path / "r.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    out = tmp_path / "out"
    result = cli("build", path, "-o", out)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith(f"error: {path}:") for line in lines), result.stderr
    assert expected in result.stderr.replace(str(path), "r.yaml")
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_every_problem_is_reported_in_one_pass(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("title: T\nsteps:\n  - {name: A, say: Hi., hold: soon}\n  - {say: Hi.}\n  - {name: C, say: Hi., colour: red}\n")
    with pytest.raises(RoutineError) as raised:
        routines.load(path)
    assert len(raised.value.problems) == 3


def test_validate_reports_good_and_bad_files(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: T\nsteps: []\n")
    result = cli("validate", ROUTINES / "back-pain-relief.yaml", bad)
    assert result.exit_code == 2
    assert "ok: " in result.stdout and "back-pain-relief.yaml" in result.stdout
    assert f"error: {bad}:2:8: steps: is empty" in result.stderr


def validate_in_a_process(path) -> subprocess.CompletedProcess:
    """`voiceguide validate PATH` in a process that may take 1 GB at most, for 30 s at most."""

    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))

    return subprocess.run([sys.executable, "-m", "voiceguide", "validate", str(path)], capture_output=True, text=True,
                          timeout=30, preexec_fn=limit_memory)


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/zero").exists(), reason="needs a device and a FIFO")
def test_only_a_regular_file_is_a_routine(tmp_path):
    """/dev/zero reports size 0 and never ends (it was read until memory ran out); a FIFO hung."""
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    for path in (Path("/dev/zero"), fifo):
        result = validate_in_a_process(path)
        expected = f"error: {path}: is not a regular file; a routine is a YAML file\n"
        assert (result.returncode, result.stderr) == (2, expected)


def test_a_sound_may_last_a_minute_and_a_background_ten(tmp_path):
    """Sounds are decoded whole: a 1-hour WAV as a transition took 10 GB."""
    for name, seconds in (("gong.wav", 61), ("rain-hour.wav", 601), ("rain-loop.wav", 599)):
        with wave.open(str(tmp_path / name), "wb") as file:  # silence at 8 kHz, 8-bit: small files
            file.setnchannels(1)
            file.setsampwidth(1)
            file.setframerate(8000)
            file.writeframes(b"\x80" * 8000 * seconds)
    path = tmp_path / "r.yaml"
    path.write_text("title: T\nbackground: rain-hour.wav\nsteps:\n  - {name: A, say: Hi., transition: gong.wav}\n")
    with pytest.raises(RoutineError) as raised:
        routines.load(path)
    assert raised.value.problems == [
        f"{path}:2:13: background: sound file 'rain-hour.wav' lasts 10m1s; a background may last at most 10m: "
        "cut it shorter",
        f"{path}:4:37: steps[0].transition: sound file 'gong.wav' lasts 1m1s; a transition or cue sound may last "
        "at most 1m: cut it shorter",
    ]
    path.write_text("title: T\nbackground: {sound: rain-loop.wav}\nsteps:\n  - {name: A, say: Hi., transition: bowl}\n")
    assert routines.load(path).background.sound == tmp_path / "rain-loop.wav"


def test_text_printed_from_a_file_name_is_shown_not_obeyed(cli, tmp_path):
    path = tmp_path / "r\x1b]0;HIJACK\x07.yaml"
    result = cli("validate", path)
    assert result.stderr == f"error: {tmp_path}/r\\x1b]0;HIJACK\\x07.yaml: no such routine file\n"


def test_missing_routine_file(cli, tmp_path):
    result = cli("build", tmp_path / "nope.yaml")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.yaml'}: no such routine file"


DOCS = (ROUTINES.parent / "docs" / "routine-format.md").read_text(encoding="utf-8")


def documented_examples() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", DOCS, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(documented_examples())))
def test_every_documented_example_validates(index):
    example = documented_examples()[index]
    routine = routines.loads(example, f"docs example {index + 1}", ROUTINES)
    assert routine.steps


def test_every_routine_key_is_documented():
    import dataclasses

    for cls in (routines.Routine, routines.Step, routines.Voice, routines.Cue, routines.Breathe, routines.Pause,
                routines.Countdown, routines.Background, routines.Use):
        for spec in dataclasses.fields(cls):
            if "parse" in spec.metadata:
                name = spec.metadata.get("key") or spec.name
                assert f"`{name}`" in DOCS, f"{cls.__name__}.{name} is not in docs/routine-format.md"


def test_problems_deep_in_a_later_step_name_the_right_path(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("title: T\nsteps:\n  - {name: A, say: Hi.}\n  - {name: B, say: Hi.}\n"
                    "  - name: C\n    say: Hi.\n    hold: 1m\n    cues:\n      - {at: half, say: Ok.}\n      - {at: soon, say: Ok.}\n")
    with pytest.raises(RoutineError) as raised:
        routines.load(path)
    assert raised.value.problems == [f"{path}:10:14: steps[2].cues[1].at: expected an offset like 30s, -10s (before the end), 50% or half, got 'soon'"]
