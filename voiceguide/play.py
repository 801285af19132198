"""Playing audio on this computer through miniaudio: a built track with keys to pause and skip steps.

The MP3 is decoded as the audio device asks for samples: no temporary file, and memory stays
flat. The position is the count of samples handed to the device, so it is exact to the sample
(what is heard trails it by the device's buffer, about BUFFER_MILLISECONDS). Skipping starts a
new decoder at the step's first sample while the old one plays on, so sound never stops for it.

miniaudio picks the system's sound API (WASAPI on Windows, Core Audio on macOS, PulseAudio or
ALSA on Linux), or the backend named in VOICEGUIDE_AUDIO_BACKEND: `null` plays into nothing, in
real time, for tests and machines without sound.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import miniaudio
import numpy as np

from voiceguide import audio, keys
from voiceguide.built import Track, read_track
from voiceguide.errors import VoiceguideError

BACKEND_VARIABLE = "VOICEGUIDE_AUDIO_BACKEND"
BACKENDS = {
    backend.name.lower(): backend for backend in miniaudio.Backend if backend.name not in ("CUSTOM", "WEBAUDIO")
}
BUFFER_MILLISECONDS = 50
DECODE_BLOCK = 4096  # samples decoded at a time, as the device asks for them
TICK_SECONDS = 0.1  # how often keys are read and the position shown
RESTART_SECONDS = 3.0  # "previous" further into a step than this goes back to its start, else to the step before
PAUSE_KEYS, NEXT_KEYS, PREVIOUS_KEYS, QUIT_KEYS = (" ", "k"), ("n", keys.RIGHT), ("p", keys.LEFT), ("q",)
KEY_HELP = "space: pause/play   n or \u2192: next step   p or \u2190: previous step   q: stop"
_NOTHING = np.zeros(0, dtype=np.int16)


@dataclass(frozen=True)
class Status:
    track: Track
    position: int  # samples played (handed to the audio device)
    paused: bool
    ended: bool  # played to the end
    keys: bool  # whether the keys in KEY_HELP work (on a terminal)

    @property
    def seconds(self) -> float:
        return audio.seconds(self.position)

    @property
    def chapter(self) -> int:
        return self.track.chapter_at(self.seconds)


class Feed:
    """The samples the device asks for, from a decoder that a skip replaces; while paused, none.

    The device's thread calls take(); seek() runs in the caller's, and decodes up to the new
    position before swapping decoders, so the device never waits for it.
    """

    def __init__(self, source: Callable[[int], Iterator[np.ndarray]], length: int):
        self._source = source
        self._lock = threading.Lock()
        self._blocks: Iterator[np.ndarray] = iter(())
        self._pending = _NOTHING
        self.length = length
        self.position = 0
        self.paused = False
        self.ended = False

    def seek(self, sample: int) -> None:
        sample = min(max(0, sample), self.length)
        blocks = self._source(sample)
        first = next(blocks, _NOTHING)
        with self._lock:
            self._blocks, self._pending, self.position, self.ended = blocks, first, sample, False

    def take(self, count: int) -> np.ndarray:
        with self._lock:
            if self.paused or self.ended:
                return _NOTHING
            parts = []
            while count > 0:
                if not len(self._pending):
                    following = next(self._blocks, None)
                    if following is None:
                        self.ended = True
                        break
                    self._pending = following
                parts.append(self._pending[:count])
                self._pending = self._pending[count:]
                count -= len(parts[-1])
            taken = np.concatenate(parts) if parts else _NOTHING
            self.position += len(taken)
            return taken


def _backend() -> miniaudio.Backend | None:
    name = os.environ.get(BACKEND_VARIABLE, "").strip().lower()
    if not name:
        return None
    if name not in BACKENDS:
        raise VoiceguideError(f"{BACKEND_VARIABLE}: no audio backend {name!r}; use one of {', '.join(BACKENDS)}")
    return BACKENDS[name]


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Keep what the sound libraries print while they look for a device (ALSA and JACK are chatty) off the terminal."""
    if os.name != "posix":
        yield
        return
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def _playing(name: str, feed: Feed) -> Iterator[None]:
    """The audio device, playing from `feed` while the block runs; VoiceguideError when there is none."""
    backend = _backend()
    try:
        with _quiet_stderr():
            device = miniaudio.PlaybackDevice(
                output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=audio.SAMPLE_RATE,
                buffersize_msec=BUFFER_MILLISECONDS, backends=[backend] if backend else None, app_name="voiceguide",
            )  # fmt: skip
    except miniaudio.MiniaudioError as error:
        raise VoiceguideError(
            f"cannot play {name}: no audio output device found (miniaudio: {error.args[0]})"
        ) from None
    try:
        if device.backend.lower() == "null" and backend is not miniaudio.Backend.NULL:
            raise VoiceguideError(f"cannot play {name}: no audio output device found (no sound system answered)")
        callback = _device_callback(feed)
        next(callback)  # the device sends to a started generator
        device.start(callback)
        yield
    finally:
        device.close()


def _device_callback(feed: Feed):
    count = yield b""
    while True:
        count = yield feed.take(count)


def _drain() -> None:
    """Let the device play what it holds before it closes."""
    time.sleep(3 * BUFFER_MILLISECONDS / 1000)


def play(path: Path, show: Callable[[Status], None]) -> Status:
    """Play the MP3 at `path` until it ends or q is typed, calling `show(status)` a few times a second.

    On a terminal, the keys in KEY_HELP pause and skip steps. Returns the last status.
    Raises VoiceguideError when the file is not an MP3 or there is no audio device.
    """
    track = read_track(path)
    feed = Feed(lambda start: audio.stream_file(path, start, DECODE_BLOCK), audio.samples(track.length))
    try:
        feed.seek(0)
    except miniaudio.DecodeError as error:
        raise VoiceguideError(f"{path}: cannot decode ({error})") from None
    with _playing(str(path), feed), keys.listen() as typed:
        while True:
            for key in typed.read(TICK_SECONDS):
                if key in QUIT_KEYS:
                    return Status(track, feed.position, feed.paused, False, typed.live)
                _control(feed, track, key)
            status = Status(track, feed.position, feed.paused, feed.ended, typed.live)
            show(status)
            if status.ended:
                _drain()
                return status


def _control(feed: Feed, track: Track, key: str) -> None:
    if key in PAUSE_KEYS:
        feed.paused = not feed.paused
        return
    seconds = audio.seconds(feed.position)
    index = track.chapter_at(seconds)
    if key in NEXT_KEYS and index + 1 < len(track.chapters):
        feed.seek(audio.samples(track.chapters[index + 1].start))
    elif key in PREVIOUS_KEYS:
        back = index if seconds - track.chapters[index].start > RESTART_SECONDS else max(0, index - 1)
        feed.seek(audio.samples(track.chapters[back].start))


def play_samples(samples: np.ndarray, name: str) -> None:
    """Play `samples` to the end; VoiceguideError when there is no audio device."""
    feed = Feed(lambda start: iter([samples[start:]]), len(samples))
    feed.seek(0)
    with _playing(name, feed):
        while not feed.ended:
            time.sleep(TICK_SECONDS)
        _drain()
