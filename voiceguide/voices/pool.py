"""Voices clips on a pool of worker processes, each with a timeout, one retry, and clear errors."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from voiceguide.errors import SynthesisError, VoiceguideError, last_line
from voiceguide.voices.engine import VoiceInfo
from voiceguide.voices.worker import environment as worker_environment

STARTUP_SECONDS = 60.0
# How a worker process is started; its arguments (see worker_arguments) are appended.
WORKER_COMMAND = [sys.executable, "-m", "voiceguide.voices.worker"]


@dataclass(frozen=True)
class Job:
    text: str
    label: str  # what the clip is for, for messages: "steps[2] (Warm-up strokes)"


@dataclass(frozen=True)
class VoiceRequest:
    """A chosen voice (see choice.py), how fast it speaks, and how it says particular words."""

    engine: str
    voice: VoiceInfo
    language: str
    speed: float
    pronounce: dict[str, str] = field(default_factory=dict)  # word -> spoken form
    note: str = field(default="", compare=False)  # why this voice, when `auto` chose it

    def spoken(self, text: str) -> str:
        """`text` as the engine gets it: each word in `pronounce` (whole word, any case) respelled."""
        if not self.pronounce:
            return text
        spellings = {word.lower(): spoken for word, spoken in self.pronounce.items()}
        words = "|".join(re.escape(word) for word in sorted(spellings, key=len, reverse=True))
        whole_words = rf"(?<!\w)(?:{words})(?!\w)"
        return re.sub(whole_words, lambda match: spellings[match[0].lower()], text, flags=re.IGNORECASE)

    @property
    def label(self) -> str:
        """The engine and voice, as recorded in the MP3's tags: 'piper en_US-joe-medium'."""
        return f"{self.engine} {self.voice.name}"

    def __str__(self) -> str:
        return self.label + (f" ({self.note})" if self.note else "")


class ClipRejected(Exception):
    """Raised by a clip check: the engine's file is missing, empty or not audio."""


class _WorkerFault(Exception):
    """The worker hung, died or reported an error; the clip may be retried on a fresh worker."""


def worker_arguments(request: VoiceRequest, cache_folder: Path) -> tuple[str, ...]:
    """What a worker is started with: the engine, voice and language, and the clip cache's folder
    (where the engine may keep what it reuses from line to line, as Piper keeps sentences)."""
    return request.engine, request.voice.id, request.language, str(cache_folder)


def clip_timeout(text: str) -> float:
    """Generous for any engine here (eSpeak ~100x, Piper ~12x real time), short enough to catch a hang."""
    return 20.0 + 0.05 * len(text)


class _Worker:
    """One worker process and a thread reading its replies, so every wait can time out."""

    def __init__(self, request: VoiceRequest, cache_folder: Path):
        command = [*WORKER_COMMAND, *worker_arguments(request, cache_folder)]
        self.command = " ".join(command)
        self._stderr = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (closed by close(), after the process)
        self._scratch = Path(tempfile.mkdtemp(prefix="voiceguide-worker-"))  # its temporary folder
        self._replies: queue.Queue[str | None] = queue.Queue()
        try:
            self.process = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1,
                env=worker_environment(self._scratch),
            )
        except BaseException:
            self._remove_files()
            raise
        assert self.process.stdin is not None and self.process.stdout is not None  # both are pipes
        self._requests, self._answers = self.process.stdin, self.process.stdout
        try:
            threading.Thread(target=self._read_replies, daemon=True).start()
            hello = self._reply(STARTUP_SECONDS)
            if "error" in hello:
                raise VoiceguideError(f"{request.engine} voice: {hello['error']}")
        except BaseException:  # a worker that hung or died while starting is stopped here, not left behind
            self.close(kill=True)
            raise

    def _read_replies(self) -> None:
        for line in self._answers:
            self._replies.put(line)
        self._replies.put(None)

    def _reply(self, timeout: float) -> dict:
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise _WorkerFault(f"no answer within {timeout:.0f}s") from None
        if line is None:
            raise _WorkerFault(self._exit_reason())
        try:
            return json.loads(line)
        except ValueError:
            raise _WorkerFault(f"the worker answered {line.strip()[:80]!r}") from None

    def _exit_reason(self) -> str:
        """Why the worker stopped: the signal that killed it or its exit status, and its last words."""
        status = self.process.wait()
        if status < 0:
            reason = f"the worker was killed by {signal.Signals(-status).name}"
        else:
            reason = f"the worker exited with status {status}"
        return f"{reason}: {self._stderr_tail()}"

    def _stderr_tail(self) -> str:
        self._stderr.seek(0)
        return last_line(self._stderr.read())

    def voice(self, text: str, speed: float, path: Path) -> None:
        try:
            self._requests.write(json.dumps({"text": text, "speed": speed, "path": str(path)}) + "\n")
            self._requests.flush()
        except (BrokenPipeError, OSError):
            raise _WorkerFault(self._exit_reason()) from None
        reply = self._reply(clip_timeout(text))
        if "error" in reply:
            raise _WorkerFault(reply["error"])

    def close(self, kill: bool = False) -> None:
        """Stop the process (at once with `kill`: it is at fault) and remove its stderr file and temporary folder."""
        try:
            if kill:
                self.process.kill()
            with contextlib.suppress(OSError):
                self._requests.close()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        finally:
            self._remove_files()

    def _remove_files(self) -> None:
        self._stderr.close()
        shutil.rmtree(self._scratch, ignore_errors=True)


class WarmWorkers:
    """Worker processes kept between synthesize() calls, with their voices loaded, until close().

    `watch` keeps one for its whole session, so a save voices its changed lines at once instead
    of first starting the engine (loading a neural voice takes seconds). Use it as a context
    manager; without one, each synthesize() starts its workers and stops them when done.
    """

    def __init__(self) -> None:
        # by what they were started with (see worker_arguments): their voice and clip cache
        self._idle: dict[tuple[str, ...], list[_Worker]] = {}
        self._starting: dict[tuple[str, ...], int] = {}  # workers warm() is starting
        self._changed = threading.Condition()
        self._closed = False

    def take(self, request: VoiceRequest, cache_folder: Path) -> _Worker | None:
        """An idle worker with this voice loaded and clip cache (waiting for one warm() is starting), or None."""
        voice = worker_arguments(request, cache_folder)
        with self._changed:
            while True:
                idle = self._idle.get(voice, [])
                while idle:
                    worker = idle.pop()
                    if worker.process.poll() is None:
                        return worker
                    worker.close()  # it died while idle
                if not self._starting.get(voice) or not self._changed.wait(STARTUP_SECONDS):
                    return None

    def keep(self, request: VoiceRequest, cache_folder: Path, worker: _Worker, most: int) -> None:
        """Keep `worker` for the next call, or stop it if `most` of its voice are kept already."""
        with self._changed:
            idle = self._idle.setdefault(worker_arguments(request, cache_folder), [])
            if not self._closed and len(idle) < most:
                idle.append(worker)
                self._changed.notify_all()
                return
        worker.close()

    def warm(self, request: VoiceRequest, cache_folder: Path, count: int) -> None:
        """Start workers for `request` and the clip cache in `cache_folder` in the background until `count` are idle.

        A worker that cannot start is left for the build that needs the voice to report.
        """

        voice = worker_arguments(request, cache_folder)

        def start() -> None:
            try:
                with contextlib.suppress(Exception):
                    self.keep(request, cache_folder, _Worker(request, cache_folder), count)
            finally:
                with self._changed:
                    self._starting[voice] -= 1
                    self._changed.notify_all()

        with self._changed:
            missing = count - len(self._idle.get(voice, [])) - self._starting.get(voice, 0)
            self._starting[voice] = self._starting.get(voice, 0) + max(0, missing)
        for _ in range(missing):
            threading.Thread(target=start, daemon=True).start()

    def close(self) -> None:
        with self._changed:
            self._closed = True
            workers = [worker for idle in self._idle.values() for worker in idle]
            self._idle.clear()
        for worker in workers:
            worker.close()

    def __enter__(self) -> WarmWorkers:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def synthesize(
    jobs: list[Job],
    request: VoiceRequest,
    cache_folder: Path,
    workers: int,
    accept: Callable[[Job, Path], None],
    warm: WarmWorkers | None = None,
) -> None:
    """Voice every job, passing each engine output to `accept` (which may raise ClipRejected).

    The workers are given the clip cache's folder (see worker_arguments).

    A clip that fails (hang, crash, engine error, rejected output) is tried once more on a fresh
    worker; a second failure stops the pool and raises SynthesisError naming the clip. `accept`
    is called from the pool's threads. With `warm`, workers come from it and go back to it.
    """
    pending: queue.Queue[Job] = queue.Queue()
    for job in jobs:
        pending.put(job)
    failures: list[Exception] = []
    stop = threading.Event()

    def run_worker() -> None:
        worker = warm.take(request, cache_folder) if warm else None
        healthy = True
        with tempfile.TemporaryDirectory(prefix="voiceguide-") as scratch:
            try:
                while not stop.is_set():
                    try:
                        job = pending.get_nowait()
                    except queue.Empty:
                        return
                    worker = _voice_with_retry(job, request, cache_folder, worker, Path(scratch), accept)
            except Exception as error:  # re-raised in the calling thread below, not lost with this one
                failures.append(error)
                stop.set()
                healthy = False
            finally:
                if worker is not None and warm and healthy:
                    warm.keep(request, cache_folder, worker, workers)
                elif worker is not None:
                    worker.close()

    # Daemon threads, so Ctrl-C is not held up by a clip in progress; their workers see their
    # stdin close when this process exits, and stop.
    threads = [threading.Thread(target=run_worker, daemon=True) for _ in range(max(1, min(workers, len(jobs))))]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    finally:
        stop.set()
    if failures:
        raise failures[0]


def _voice_with_retry(
    job: Job, request: VoiceRequest, cache_folder: Path, worker: _Worker | None, scratch: Path, accept
) -> _Worker:
    """Voice one job, restarting the worker once on a fault; returns the worker to reuse."""
    reason = ""
    for attempt in range(2):
        path = scratch / f"clip-{attempt}.wav"
        try:
            worker = worker or _Worker(request, cache_folder)
            worker.voice(job.text, request.speed, path)
            accept(job, path)
            return worker
        except (_WorkerFault, ClipRejected) as fault:
            reason = str(fault)
            if worker is not None:
                worker.close(kill=isinstance(fault, _WorkerFault))
            worker = None
        except BaseException:  # a failure to keep the clip: the caller never gets this worker to close
            if worker is not None:
                worker.close(kill=True)
            raise
        finally:
            path.unlink(missing_ok=True)
    raise SynthesisError(f"could not voice {job.label} with {request.engine} after a retry: {reason}")


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
