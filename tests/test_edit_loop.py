"""The edit loop through the real CLI and a real voice: up-to-date builds, one-clip rebuilds, folders, watch, cache.

eSpeak (--engine pyttsx3) speaks here: it is a real voice, about a hundred times faster than
real time, and it says the same text the same way every time, so whole MP3s can be compared.
"""

from __future__ import annotations

import contextlib
import queue
import shutil
import signal
import sys
import threading
from pathlib import Path

import numpy as np
import platformdirs
import pytest
from conftest import (
    FIXTURES,
    ROUTINES,
    SAMPLE_RATE,
    decode,
    level_db,
    read_plan,
    run_cli,
    span,
    watch_process,
    window_levels,
)

from voiceguide import build as build_module
from voiceguide import cli, provenance, sounds
from voiceguide.build import BuildOptions, BuildResult, Reporter, UpToDate
from voiceguide.errors import RoutineError, VoiceguideError
from voiceguide.voices import pool
from voiceguide.voices.cache import CACHE_DIR_VARIABLE, ClipCache
from voiceguide.voices.choice import VoiceOverride
from voiceguide.watch import watch

ESPEAK = ("--engine", "pyttsx3")
BUNDLED = "back-pressure-points.yaml"
EDITED_STEP = "Between the shoulder blades"
WAIT_SECONDS = 60  # the most a test waits for one build in watch mode


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> Path:
    """A folder with a copy of a bundled routine, built once into out/; tests that change it work on a copy."""
    root = tmp_path_factory.mktemp("bundled")
    shutil.copy(ROUTINES / BUNDLED, root / BUNDLED)
    result = run_cli("build", root / BUNDLED, "-o", root / "out", "--cache-dir", root / "cache", *ESPEAK)
    assert result.exit_code == 0, result.stderr
    return root


def test_one_step_edit_voices_one_clip_and_changes_only_that_step(bundled, tmp_path):
    root = shutil.copytree(bundled, tmp_path / "copy")
    routine, mp3 = root / BUNDLED, root / "out" / "back-pressure-points.mp3"
    before, step = decode(mp3), next(c for c in read_plan(mp3)["chapters"] if c["title"] == EDITED_STEP)
    routine.write_text(routine.read_text().replace("inch, and hold steadily.", "inch, and hold it steadily."))
    result = run_cli("build", routine, "-o", root / "out", "--cache-dir", root / "cache", *ESPEAK)
    assert result.exit_code == 0, result.stderr
    assert "clips reused, 1 new" in result.stdout
    assert f'changed: {BUNDLED}; the words of "{EDITED_STEP}"\n' in result.stdout
    after = decode(mp3)
    start, end = round(step["start"] * SAMPLE_RATE), round(step["end"] * SAMPLE_RATE)
    shift = len(after) - len(before)  # the step's new clip moves everything after it, by its change in length
    assert shift != 0
    unchanged = [(before[:start], after[:start]), (before[end:], after[end + shift :])]
    # The track plays at unity gain (levels.py), so the edit leaves the level of the rest as it was.
    gain = sum(np.dot(new, old) for old, new in unchanged) / sum(np.dot(old, old) for old, _ in unchanged)
    assert gain == pytest.approx(1.0, abs=0.01)
    # What is left is MP3 coding noise, about 26 dB below the track before the step, and 22 dB
    # after it, where the same sound now falls differently on the MP3's frames. The edited step
    # differs by about as much as its own level.
    (old_start, new_start), (old_end, new_end) = unchanged
    assert level_db(new_start - gain * old_start) < level_db(old_start) - 20
    assert level_db(new_end - gain * old_end) < level_db(old_end) - 15
    edited = after[start:end] - gain * before[start:end]
    assert level_db(edited) > level_db(before[start:end]) - 10


def test_an_unchanged_routine_is_up_to_date_and_left_alone(bundled):
    outputs = sorted((bundled / "out").glob("back-pressure-points.*"))
    assert [path.suffix for path in outputs] == [".html", ".json", ".md", ".mp3", ".vtt"]
    written = {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in outputs}
    result = run_cli("build", bundled / BUNDLED, "-o", bundled / "out", "--cache-dir", bundled / "cache", *ESPEAK)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"up to date: {bundled / 'out' / 'back-pressure-points.mp3'}\n"
    assert {path: (path.stat().st_mtime_ns, path.read_bytes()) for path in outputs} == written


# ---------------------------------------------------------------- what makes a routine build again


@pytest.fixture(scope="module")
def two_steps_built(tmp_path_factory) -> Path:
    """routines/two-steps.yaml, whose last transition is its own sound file ding.wav, built once into out/."""
    root = tmp_path_factory.mktemp("two-steps")
    (root / "routines").mkdir()
    shutil.copy(sounds.builtin_path("bell"), root / "routines" / "ding.wav")
    text = (FIXTURES / "two-steps.yaml").read_text().replace("transition: bell", "transition: ding.wav")
    (root / "routines" / "two-steps.yaml").write_text(text)
    routine = root / "routines" / "two-steps.yaml"
    result = run_cli("build", routine, "-o", root / "out", "--cache-dir", root / "cache", *ESPEAK)
    assert result.exit_code == 0, result.stderr
    return root


@pytest.fixture
def project(two_steps_built, tmp_path) -> Path:
    """A fresh copy of the built two-step project (routines/, out/, and its own clip cache in cache/) to change."""
    return shutil.copytree(two_steps_built, tmp_path / "project")


def build_two_steps(project: Path, *options: str):
    return run_cli(
        "build", project / "routines" / "two-steps.yaml", "-o", project / "out", "--cache-dir", project / "cache",
        *ESPEAK, *options,
    )


def test_force_builds_again_from_the_cached_clips(project):
    mp3 = project / "out" / "two-steps.mp3"
    first = mp3.read_bytes()
    assert build_two_steps(project).stdout == f"up to date: {mp3}\n"
    result = build_two_steps(project, "--force")
    assert result.exit_code == 0, result.stderr
    assert "5 clips reused, 0 new" in result.stdout
    assert "changed:" not in result.stdout  # no input changed
    assert mp3.read_bytes() == first


def test_a_changed_sound_file_builds_again(project):
    mp3 = project / "out" / "two-steps.mp3"
    first = mp3.read_bytes()
    shutil.copy(sounds.builtin_path("bowl"), project / "routines" / "ding.wav")
    result = build_two_steps(project)
    assert result.exit_code == 0, result.stderr
    assert "5 clips reused, 0 new" in result.stdout
    assert "changed: ding.wav\n" in result.stdout
    assert mp3.read_bytes() != first


def test_changed_options_build_again(project):
    out = project / "out"
    slower = build_two_steps(project, "--speed", "0.9")
    assert "0 clips reused, 5 new" in slower.stdout and "changed: the voice\n" in slower.stdout
    assert f"built {out / 'two-steps-40s.mp3'}" in build_two_steps(project, "--length", "40s").stdout
    assert build_two_steps(project, "--length", "40s").stdout == f"up to date: {out / 'two-steps-40s.mp3'}\n"
    filled = build_two_steps(project, "--length", "40s", "--fill", "repeat")
    assert "changed: the options\n" in filled.stdout


def test_a_missing_or_altered_output_builds_again(project):
    mp3 = project / "out" / "two-steps.mp3"
    mp3.with_suffix(".vtt").unlink()
    assert "5 clips reused, 0 new" in build_two_steps(project).stdout
    assert mp3.with_suffix(".vtt").is_file()
    with mp3.open("ab") as file:
        file.write(b"\0")
    assert "5 clips reused, 0 new" in build_two_steps(project).stdout


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (it is needed only for M4B)")
def test_an_extra_format_is_made_from_the_up_to_date_mp3_without_rendering_it_again(project):
    out = project / "out"
    mp3, m4b = out / "two-steps.mp3", out / "two-steps.m4b"
    written = (mp3.stat().st_mtime_ns, mp3.read_bytes())
    with_m4b = build_two_steps(project, "--format", "m4b")
    assert with_m4b.exit_code == 0, with_m4b.stderr
    assert with_m4b.stdout == f"up to date: {mp3}; made {m4b} from it\n"
    assert (mp3.stat().st_mtime_ns, mp3.read_bytes()) == written
    assert read_plan(mp3)["outputs"]["two-steps.m4b"] == provenance.file_digest(m4b)
    assert build_two_steps(project, "--format", "m4b").stdout == f"up to date: {mp3}\n"
    assert build_two_steps(project).stdout == f"up to date: {mp3}\n"  # and without it again
    m4b.unlink()
    assert build_two_steps(project).stdout == f"up to date: {mp3}\n"
    assert (mp3.stat().st_mtime_ns, mp3.read_bytes()) == written


def test_an_unreachable_length_fails_before_any_clip_is_voiced(routine_file, own_cache, tmp_path):
    routine = routine_file("two-steps.yaml")
    planned = run_cli("plan", routine, "--length", "5s", *ESPEAK)
    result = run_cli("build", routine, "-o", tmp_path / "out", "--length", "5s", *ESPEAK)
    assert result.exit_code == planned.exit_code == 2
    assert result.stderr.startswith("error: two-steps can run from ") and result.stderr == planned.stderr
    assert "voice:" not in result.stdout and not list(own_cache.rglob("*.wav"))
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- folders


def test_a_folder_builds_every_routine_and_goes_on_past_errors(project, monkeypatch):
    monkeypatch.chdir(project)
    shutil.copy(FIXTURES / "paced.yaml", project / "routines" / "paced.yaml")
    (project / "routines" / "a-typo.yaml").write_text(
        "title: Typo\nsteps:\n  - name: One\n    say: Hi.\n    hold: forever\n"
    )
    (project / "routines" / "b-voice.yaml").write_text(
        "title: Voice\nvoice: {engine: pyttsx3, name: Nobody}\nsteps:\n  - name: One\n    say: Hi.\n"
    )
    result = run_cli("build", "-o", "out", "--cache-dir", "cache", *ESPEAK)  # no argument: every routine in routines/
    assert result.exit_code == 2
    errors = result.stderr.splitlines()
    assert errors[0].startswith("error: routines/a-typo.yaml:5:11: steps[0].hold: expected a duration")
    assert errors[1].startswith("error: routines/b-voice.yaml") and "no voice named 'Nobody'" in errors[1]
    assert errors[1].count("b-voice.yaml") == 1  # each error names its routine, once
    lines = result.stdout.splitlines()
    assert lines[1].startswith("built out/paced.mp3 (")
    assert lines[-2:] == ["up to date: out/two-steps.mp3", "4 routines: 1 built, 1 up to date, 2 failed"]
    assert "\r" not in result.stdout + result.stderr  # no progress bar when not on a terminal
    (project / "routines" / "a-typo.yaml").unlink()
    (project / "routines" / "b-voice.yaml").unlink()
    again = run_cli("build", "routines", "-o", "out", "--cache-dir", "cache", *ESPEAK, "--quiet")
    assert (again.exit_code, again.stdout, again.stderr) == (0, "", "")
    assert run_cli("build", "routines", "-o", "out", "--cache-dir", "cache", *ESPEAK).stdout.splitlines()[-1] == (
        "2 routines: 0 built, 2 up to date, 0 failed"
    )


def test_an_empty_folder_is_an_error(tmp_path):
    result = run_cli("build", tmp_path)
    assert result.exit_code == 2
    assert result.stderr == f"error: no routines (*.yaml) in {tmp_path}; give a routine file, or a folder of them\n"


# ---------------------------------------------------------------- the clip cache


def test_the_clip_cache_is_the_users_own_unless_told_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv(CACHE_DIR_VARIABLE)
    assert ClipCache().folder == platformdirs.user_cache_path("voiceguide", appauthor=False)
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(tmp_path / "mine"))
    assert ClipCache().folder == tmp_path / "mine"
    assert ClipCache(tmp_path / "given").folder == tmp_path / "given"


def test_every_output_folder_and_working_directory_shares_one_clip_cache(project, monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(project / "cache"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    routine = project / "routines" / "two-steps.yaml"
    built = run_cli("build", routine, "-o", tmp_path / "other-out", *ESPEAK)
    assert built.exit_code == 0, built.stderr
    assert "5 clips reused, 0 new" in built.stdout
    assert list(elsewhere.iterdir()) == []  # nothing is written outside the output folder and the clip cache
    planned = run_cli("plan", routine, *ESPEAK)
    header, last = planned.stdout.splitlines()[0], planned.stdout.splitlines()[-1]
    assert header.endswith(" (speech: 5 lines from cached clips, 0 estimated)")
    assert header.split(" (speech")[0].rsplit(" ", 1)[1] == last.split()[0] and last.endswith("  end")
    # The same reachable range from plan, here, as from the build that voiced the clips.
    from_plan = run_cli("plan", routine, *ESPEAK, "--length", "1s")
    from_build = run_cli("build", routine, "-o", tmp_path / "other-out", *ESPEAK, "--length", "1s")
    assert from_plan.exit_code == from_build.exit_code == 2
    assert from_plan.stderr == from_build.stderr and "two-steps can run from " in from_plan.stderr


def test_damaged_cache_entries_are_made_again(project):
    flipped, truncated = sorted((project / "cache").rglob("*.wav"))[:2]
    entry = bytearray(flipped.read_bytes())
    middle = len(entry) // 2
    entry[middle : middle + 16] = bytes(byte ^ 0xFF for byte in entry[middle : middle + 16])
    flipped.write_bytes(bytes(entry))  # the same size, the header intact: only the checksum tells
    truncated.write_bytes(truncated.read_bytes()[:-1000])
    result = build_two_steps(project, "--force")
    assert result.exit_code == 0, result.stderr
    assert "3 clips reused, 2 new" in result.stdout
    assert flipped.read_bytes() != bytes(entry)
    mp3 = project / "out" / "two-steps.mp3"
    samples, plan = decode(mp3), read_plan(mp3)
    assert len(samples) / SAMPLE_RATE == pytest.approx(plan["length"], abs=0.001)
    for event in plan["events"]:
        levels = window_levels(span(samples, event["start"], event["end"]))
        if event["kind"] == "speech":
            assert np.mean(levels > -40) > 0.5, f"little voice in {event['text']!r}"
        elif event["kind"] == "hold":
            assert levels.max() < -70, f"hold at {event['start']}s is not silent"


def test_a_clip_damaged_after_the_voice_stage_is_never_played(project, monkeypatch):
    real_plan = build_module.plan

    def plan_then_damage(routine, lengths, *args):
        clip = sorted((project / "cache").rglob("*.wav"))[0]
        entry = bytearray(clip.read_bytes())
        entry[-20] ^= 0xFF
        clip.write_bytes(bytes(entry))
        return real_plan(routine, lengths, *args)

    monkeypatch.setattr(build_module, "plan", plan_then_damage)
    mp3 = project / "out" / "two-steps.mp3"
    first = mp3.read_bytes()
    result = build_two_steps(project, "--force")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: clip cache entry ")
    assert result.stderr.endswith(
        " is missing or damaged (it changed after this build checked it); build again to make it anew\n"
    )
    assert mp3.read_bytes() == first


def test_cache_entries_check_their_samples(tmp_path):
    cache = ClipCache(tmp_path)
    clip = (np.sin(np.arange(4410) / 7) * 10_000).astype(np.int16)
    cache.store("ab12", clip)
    assert cache.length("ab12") == 4410 and np.array_equal(cache.read("ab12"), clip)
    entry = bytearray(cache.path("ab12").read_bytes())
    entry[1000] ^= 1
    cache.path("ab12").write_bytes(bytes(entry))
    assert cache.length("ab12") is None
    with pytest.raises(VoiceguideError, match="is missing or damaged"):
        cache.read("ab12")


def test_cache_shows_its_size_and_prune_keeps_what_routines_use(project, monkeypatch):
    monkeypatch.chdir(project)
    cache = project / "cache"
    shown = run_cli("cache", "--cache-dir", "cache")
    size = sum(path.stat().st_size for path in cache.rglob("*") if path.is_file())  # clips and all
    assert shown.stdout == f"cache: 5 clips, 0 voiced sentences, {size / 1e6:.1f} MB\n"  # eSpeak keeps none
    routine = project / "routines" / "two-steps.yaml"
    routine.write_text(routine.read_text().replace("Let them rest there.", "Let them rest there, still."))
    assert "4 clips reused, 1 new" in run_cli("build", "-o", "out", "--cache-dir", "cache", *ESPEAK).stdout
    clips = {path: path.stat().st_size for path in cache.rglob("*.wav")}
    frames = sum(path.stat().st_size for path in cache.rglob("*.frames"))
    assert len(clips) == 6 and frames > 0
    # The clips were voiced with --engine pyttsx3, which the JSON sidecar records; a plain build
    # would choose Piper where it is installed, yet prune keeps the clips the outputs were made with.
    pruned = run_cli("cache", "--cache-dir", "cache", "prune", "-o", "out")
    assert pruned.exit_code == 0, pruned.stderr
    kept = sorted(path for path in cache.rglob("*") if path.is_file())
    assert len([path for path in kept if path.suffix == ".wav"]) == 5 and not list(cache.rglob("*.frames"))
    removed = sum(size for path, size in clips.items() if path not in kept)
    assert pruned.stdout == (
        f"removed 1 clip ({removed / 1e6:.1f} MB) that no routine uses, the encoded stretches of sound "
        f"({frames / 1e6:.1f} MB) and the voiced sentences (0.0 MB), which builds make again; "
        f"kept 5 ({sum(path.stat().st_size for path in kept) / 1e6:.1f} MB) for 1 routine\n"
    )
    assert "0 new" in run_cli("build", "-o", "out", "--cache-dir", "cache", *ESPEAK, "--force").stdout


def test_prune_removes_nothing_while_a_routine_has_errors(project, monkeypatch):
    monkeypatch.chdir(project)
    (project / "routines" / "broken.yaml").write_text("title: Broken\n")
    result = run_cli("cache", "prune", "-o", "out", "--cache-dir", "cache")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: routines/broken.yaml:1:1: missing required key 'steps' (the steps, in order; at least one)",
        "error: nothing was removed from cache; fix the routines, or name those to keep",
    ]
    assert len(list((project / "cache").rglob("*.wav"))) == 5


# ---------------------------------------------------------------- watch


@contextlib.contextmanager
def watching(routine: Path, options: BuildOptions):
    """watch(routine) on a thread while the block runs: a queue of its outcomes, and the files it saw saved."""
    outcomes: queue.Queue = queue.Queue()
    saves: list[list[Path]] = []
    stop = threading.Event()

    class Heard(Reporter):
        def finished(self, outcome):
            outcomes.put(outcome)

        def saved(self, routine, files):
            saves.append(files)

    watcher = threading.Thread(
        target=watch, args=([routine], options, Heard()), kwargs={"stop": stop.is_set, "poll": 0.05}
    )
    watcher.start()
    try:
        yield outcomes, saves
    finally:
        stop.set()
        watcher.join(timeout=WAIT_SECONDS)
    assert not watcher.is_alive()


def test_watch_builds_each_save_and_survives_a_broken_one(project):
    routine, mp3 = project / "routines" / "two-steps.yaml", project / "out" / "two-steps.mp3"
    original = routine.read_text()
    options = BuildOptions(
        output_dir=project / "out", cache_dir=project / "cache", voice=VoiceOverride(engine="pyttsx3")
    )
    with watching(routine, options) as (outcomes, saves):
        assert isinstance(outcomes.get(timeout=WAIT_SECONDS).result, UpToDate)
        routine.write_text(original.replace("Let them rest there.", "Let them rest there, still."))
        edited = outcomes.get(timeout=WAIT_SECONDS).result
        assert isinstance(edited, BuildResult) and (edited.clips_reused, edited.clips_made) == (4, 1)
        assert edited.changes == ("two-steps.yaml", 'the words of "Rest the palms"')
        good = mp3.read_bytes()
        routine.write_text(original.replace("hold: 4s", "hold: forever"))
        broken = outcomes.get(timeout=WAIT_SECONDS).error
        assert isinstance(broken, RoutineError) and "got 'forever'" in broken.problems[0]
        assert mp3.read_bytes() == good  # the last good MP3 stays
        routine.write_text(original)
        fixed = outcomes.get(timeout=WAIT_SECONDS).result
        assert isinstance(fixed, BuildResult) and fixed.clips_made == 0
        with_bell = mp3.read_bytes()
        shutil.copy(sounds.builtin_path("bowl"), project / "routines" / "ding.wav")
        assert outcomes.get(timeout=WAIT_SECONDS).result.changes == ("ding.wav",)
        assert mp3.read_bytes() != with_bell  # the new sound is heard, not one decoded before
    assert saves == [[routine]] * 3 + [[project / "routines" / "ding.wav"]]


def test_watch_keeps_its_voice_workers_for_the_whole_session(project, monkeypatch):
    started: list[pool._Worker] = []

    class CountedWorker(pool._Worker):
        def __init__(self, request, cache_folder):
            super().__init__(request, cache_folder)
            started.append(self)

    monkeypatch.setattr(pool, "_Worker", CountedWorker)
    routine = project / "routines" / "two-steps.yaml"
    original = routine.read_text()
    options = BuildOptions(
        output_dir=project / "out", cache_dir=project / "cache", voice=VoiceOverride(engine="pyttsx3"), workers=2
    )
    with watching(routine, options) as (outcomes, _):
        assert isinstance(outcomes.get(timeout=WAIT_SECONDS).result, UpToDate)
        for number in range(3):
            routine.write_text(original.replace("Let them rest there.", f"Let them rest there, {number + 1} times."))
            edited = outcomes.get(timeout=WAIT_SECONDS).result
            assert isinstance(edited, BuildResult) and edited.clips_made == 1, edited
        assert len(started) == 2  # the two started with the watch voiced all three edits
        assert all(worker.process.poll() is None for worker in started)
    assert all(worker.process.poll() is not None for worker in started)  # and end with it


@pytest.mark.skipif(sys.platform == "win32", reason="Ctrl-C is a console event on Windows, not SIGINT")
def test_watch_command_stops_cleanly_on_ctrl_c(project):
    watching = ("routines/two-steps.yaml", "-o", "out", "--cache-dir", "cache", *ESPEAK)
    with watch_process(project, *watching) as (process, lines):
        assert lines.get(timeout=WAIT_SECONDS) == "watching routines/two-steps.yaml; Ctrl-C stops\n"
        assert lines.get(timeout=WAIT_SECONDS) == "up to date: out/two-steps.mp3\n"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=WAIT_SECONDS) == 0
    assert lines.get(timeout=WAIT_SECONDS) == "stopped watching\n"
    assert process.stderr.read() == ""


# ---------------------------------------------------------------- progress


def test_progress_is_a_bar_with_the_time_left_on_a_terminal(monkeypatch, capsys):
    clock = iter([0.0, 2.0, 4.0])
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("TERM", "xterm")
    progress = cli._TerminalProgress(enabled=True)
    for done in (0, 5, 10):
        progress("voicing", done, 10)
    progress.clear()
    assert capsys.readouterr().err.split("\r")[1:] == [
        "voicing [------------------------] 0/10 clips\x1b[K",
        "voicing [############------------] 5/10 clips, 0:02 left\x1b[K",
        "voicing [########################] 10/10 clips\x1b[K",
        "\x1b[K",
    ]
