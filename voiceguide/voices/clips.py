"""The voice stage: every line a routine speaks, as a cached clip ready to play.

A clip's cache key covers everything that shapes its sound (engine and its version, voice,
language, speed, text), so an edit re-voices only the lines it changed.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import miniaudio
import numpy as np

from voiceguide import audio
from voiceguide.voices import engine_class
from voiceguide.voices.cache import ClipCache, clip_key
from voiceguide.voices.pool import ClipRejected, Job, VoiceRequest, synthesize

FADE_IN = audio.samples(0.005)
FADE_OUT = audio.samples(0.02)
SPEECH_THRESHOLD = 500  # a clip with no sample louder than this holds no speech


@dataclass(frozen=True)
class VoicedClips:
    """Where each spoken line's clip is, how long it is, and what voicing cost."""

    cache: ClipCache
    keys: dict[str, str]
    lengths: dict[str, int]
    reused: int
    made: int

    def read(self, text: str) -> np.ndarray:
        return self.cache.read(self.keys[text])


def voice_key(request: VoiceRequest) -> str:
    version = engine_class(request.engine).version()
    return f"{request.engine}|{version}|{request.voice or 'default'}|{request.language}|{request.speed:g}"


def prepare_clip(engine_output: Path) -> np.ndarray:
    """The engine's file as a clip ready to play: checked, resampled, trimmed, faded."""
    if not engine_output.is_file() or engine_output.stat().st_size == 0:
        raise ClipRejected("the engine wrote no audio file")
    try:
        raw = audio.decode_file(engine_output)
    except miniaudio.DecodeError as error:
        raise ClipRejected(f"the engine's file is not audio ({error})") from None
    if raw.size == 0 or np.abs(raw.astype(np.int32)).max() < SPEECH_THRESHOLD:
        raise ClipRejected("the engine's file holds no speech")
    return audio.fade_edges(audio.trim_silence(raw), FADE_IN, FADE_OUT)


def voice_lines(
    lines: dict[str, str],
    request: VoiceRequest,
    cache: ClipCache,
    workers: int,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> VoicedClips:
    """Make sure every line (text -> label for messages) has a clip in the cache."""
    key_prefix = voice_key(request)
    keys = {text: clip_key(key_prefix, text) for text in lines}
    missing = [Job(text, label) for text, label in lines.items() if cache.length(keys[text]) is None]
    done = 0
    lock = threading.Lock()

    def accept(job: Job, engine_output: Path) -> None:
        nonlocal done
        cache.store(keys[job.text], prepare_clip(engine_output))
        with lock:
            done += 1
            on_progress(done, len(missing))

    if missing:
        synthesize(missing, request, workers, accept)
    lengths = {text: cache.length(key) for text, key in keys.items()}
    return VoicedClips(cache, keys, lengths, reused=len(lines) - len(missing), made=len(missing))
