"""Faults and interruptions: engines that hang, crash or write nothing; builds killed midway;
full disks and unwritable folders; two builds at once. Nothing is lost, and errors are one line."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, SAMPLE_RATE, decode, read_plan, wait_for, write_steps

from voiceguide.files import atomic_path
from voiceguide.voices import pool
from voiceguide.voices.cache import ClipCache

FAULTY_WORKER = [sys.executable, str(FIXTURES / "faulty_worker.py")]
needs_proc = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads process states from /proc")


@pytest.fixture
def faulty(monkeypatch, tmp_path):
    """Run synthesis on the misbehaving worker, with a short clip timeout; returns set_fault(kind)."""
    monkeypatch.setattr(pool, "WORKER_COMMAND", FAULTY_WORKER)
    monkeypatch.setattr(pool, "clip_timeout", lambda text: 4.0)
    monkeypatch.setenv("VOICEGUIDE_TEST_FAULT_MARKER", str(tmp_path / "failed-once"))
    return lambda kind: monkeypatch.setenv("VOICEGUIDE_TEST_FAULT", kind)


@pytest.mark.parametrize("kind", ["hang", "crash", "killed", "empty", "garbage"])
def test_engine_fault_is_retried_once_then_reported_with_its_step(kind, faulty, cli, tmp_path, own_cache):
    faulty(kind)
    # Longest lines are voiced first, so the two good lines are made before the faulty one.
    lines = ["Rest your hands on the back.", "Fault.", "Breathe out slowly and fully."]
    routine = write_steps(tmp_path, "faults", lines)
    out = tmp_path / "out"
    started = time.monotonic()
    result = cli("build", routine, "-o", out, "--engine", "pyttsx3", "--jobs", "1")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: could not voice steps[1] (Step 2)")
    assert "after a retry" in result.stderr
    assert not list(out.glob("*.mp3"))
    if kind == "hang":
        assert time.monotonic() - started < 30  # two timeouts of 4 s, not an hour
    # The clips that were made are kept: a fixed line then needs only itself voiced.
    assert len(list(own_cache.rglob("[!.]*.wav"))) == 2


@pytest.mark.parametrize(("kind", "reason"), [
    ("killed", "the worker was killed by SIGKILL: no message"),  # not the engine's chatter ("Audio saved to ...")
    ("crash", "the worker exited with status 3: no message"),
])
def test_a_worker_fault_is_reported_with_what_happened(kind, reason, faulty, cli, tmp_path):
    faulty(kind)
    routine = write_steps(tmp_path, "faults", ["Fault."])
    result = cli("build", routine, "-o", tmp_path / "out", "--engine", "pyttsx3", "--jobs", "1")
    assert result.stderr == f"error: could not voice steps[0] (Step 1) with pyttsx3 after a retry: {reason}\n"


@needs_proc
def test_a_worker_that_hangs_while_starting_is_stopped(faulty, cli, tmp_path, monkeypatch, own_cache):
    faulty("hang-at-start")
    monkeypatch.setattr(pool, "STARTUP_SECONDS", 2.0)
    routine = write_steps(tmp_path, "faults", ["Rest your hands."])
    result = cli("build", routine, "-o", tmp_path / "out", "--engine", "pyttsx3", "--jobs", "1")
    assert result.stderr == "error: could not voice steps[0] (Step 1) with pyttsx3 after a retry: no answer within 2s\n"
    started = [int(pid) for pid in (tmp_path / "failed-once").read_text().split()]
    assert len(started) == 2  # the first try and the retry
    assert not [pid for pid in started if Path(f"/proc/{pid}").exists()], "a hung worker was left running"


@pytest.mark.parametrize("kind", ["hang-once", "crash-once", "empty-once"])
def test_engine_fault_once_is_recovered_by_the_retry(kind, faulty, cli, tmp_path):
    faulty(kind)
    routine = write_steps(tmp_path, "faults", ["Rest your hands.", "This line will fault."])
    result = cli("build", routine, "-o", tmp_path / "out", "--engine", "pyttsx3", "--jobs", "1")
    assert result.exit_code == 0, result.stderr
    samples = decode(tmp_path / "out" / "faults.mp3")
    assert abs(len(samples) / SAMPLE_RATE - read_plan(tmp_path / "out" / "faults.mp3")["length"]) < 0.05


def test_unwritable_output_folder_is_a_one_line_error(cli, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    routine = write_steps(tmp_path, "r", ["Rest your hands."])
    result = cli("build", routine, "-o", blocker / "out", "--engine", "pyttsx3")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_full_disk_keeps_the_previous_output_and_removes_temporaries(cli, tmp_path, monkeypatch):
    routine = write_steps(tmp_path, "r", ["Rest your hands.", "Breathe out slowly."])
    out = tmp_path / "out"
    assert cli("build", routine, "-o", out, "--engine", "pyttsx3").exit_code == 0
    previous = {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()}

    from voiceguide import build as build_module

    real_encode = build_module.encode_track

    def encode_until_full(blocks, file, frames, speech):
        file.write(b"\xff" * 1000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(build_module, "encode_track", encode_until_full)
    routine.write_text(routine.read_text().replace("Rest your hands.", "Rest your hands gently."))
    result = cli("build", routine, "-o", out, "--engine", "pyttsx3")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot write {out / 'r.mp3'}: No space left on device"
    assert {path.name: path.read_bytes() for path in out.iterdir() if path.is_file()} == previous
    assert not [path for path in out.rglob("*.tmp")]
    monkeypatch.setattr(build_module, "encode_track", real_encode)


@needs_proc
def test_writing_a_file_leaves_the_umask_alone_and_follows_it(tmp_path, monkeypatch):
    """Setting the umask to 0 and back, from a build's threads, let a folder made meanwhile be 0777."""
    real_umask = os.umask
    masks_set = []
    monkeypatch.setattr(os, "umask", lambda mask: masks_set.append(mask) or real_umask(mask))
    previous = real_umask(0o027)
    try:
        with atomic_path(tmp_path / "out.txt") as temporary:
            temporary.write_text("x")
    finally:
        real_umask(previous)
    assert masks_set == []
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o640


def start_build(routine: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "voiceguide", "build", str(routine), "-o", str(out), "-q",
                             "--engine", "pyttsx3"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def outputs(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in out.iterdir() if path.is_file() and not path.name.startswith(".")}


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_build_killed_mid_render_keeps_the_previous_output(how, tmp_path):
    routine = write_steps(tmp_path, "long", ["Rest your hands.", "Glide up the back."], hold="6m")
    # Under a bed the track never falls silent, so it is encoded whole: long enough to be killed midway.
    routine.write_text(routine.read_text() + "background: rain\n")
    out = tmp_path / "out"
    assert start_build(routine, out).wait() == 0
    previous = outputs(out)
    routine.write_text(routine.read_text().replace("Rest your hands.", "Rest your hands, softly."))
    process = start_build(routine, out)
    wait_for(lambda: any(out.glob(".long.mp3.*.tmp")), 60)
    time.sleep(0.3)
    process.send_signal(how)
    process.wait(timeout=30)
    assert outputs(out) == previous
    if how == signal.SIGTERM:  # a polite kill cleans up after itself
        assert not list(out.glob(".long.mp3.*.tmp"))
    assert start_build(routine, out).wait() == 0
    assert outputs(out)["long.mp3"] != previous["long.mp3"]
    assert not list(out.rglob("*.tmp"))  # what the killed build left is cleaned by the next


def test_build_killed_mid_synthesis_leaves_a_consistent_cache(tmp_path, own_cache):
    lines = [f"This is line number {n}, spoken slowly and calmly." for n in range(60)]
    routine = write_steps(tmp_path, "many", lines)
    out = tmp_path / "out"
    process = start_build(routine, out)
    cache = own_cache
    wait_for(lambda: cache.exists() and len(list(cache.rglob("*.wav"))) >= 5, 60)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    entries = list(cache.rglob("[!.]*.wav"))
    assert 5 <= len(entries) < 60
    clip_cache = ClipCache(cache)
    assert all(clip_cache.length(path.stem) for path in entries)  # every entry whole
    assert not (out / "many.mp3").exists()
    process = start_build(routine, out)
    assert process.wait() == 0, process.stderr.read()
    assert len(read_plan(out / "many.mp3")["chapters"]) == 60


def test_two_builds_of_one_routine_at_once_both_finish_with_a_valid_mp3(tmp_path):
    routine = write_steps(tmp_path, "twice", ["Rest your hands.", "Glide up the back.", "Knead the shoulders."])
    out = tmp_path / "out"
    first, second = start_build(routine, out), start_build(routine, out)
    assert first.wait() == 0 and second.wait() == 0, (first.stderr.read(), second.stderr.read())
    samples = decode(out / "twice.mp3")
    assert abs(len(samples) / SAMPLE_RATE - read_plan(out / "twice.mp3")["length"]) < 0.05
    assert not list(out.rglob("*.tmp"))
