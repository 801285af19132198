"""The voice stage: every line a routine speaks, as a cached clip ready to play.

A clip's cache key covers everything that shapes its sound (engine and its version, voice,
language, speed, text, and the version of the processing below), so an edit re-voices only the
lines it changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import miniaudio
import numpy as np

from voiceguide import audio, levels, limiter, meter
from voiceguide.voices import engine_class
from voiceguide.voices.cache import ClipCache, clip_key
from voiceguide.voices.pool import ClipRejected, Job, VoiceRequest, default_workers, synthesize

FADE_IN = audio.samples(0.005)
FADE_OUT = audio.samples(0.02)
SPEECH_THRESHOLD = 500  # a clip with no sample louder than this holds no speech
PROCESSING_VERSION = 4  # part of every clip key: bump it when prepare_clip changes what it makes


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
    voice = request.voice
    return (
        f"{request.engine}|{version}|{voice.id}|{voice.version}|{request.language}|{request.speed:g}"
        f"|p{PROCESSING_VERSION}"
    )


def line_keys(lines: Iterable[str], request: VoiceRequest, prefix: str | None = None) -> dict[str, str]:
    """Each line's clip key; it covers the text as spoken, so a pronunciation fix re-voices its lines.

    `prefix` is a voice_key() recorded earlier, in place of the request's own.
    """
    key_prefix = prefix or voice_key(request)
    return {text: clip_key(key_prefix, request.spoken(text)) for text in lines}


def prepare_clip(engine_output: Path) -> np.ndarray:
    """The engine's file as a clip ready to play: checked, resampled, trimmed, levelled, faded."""
    if not engine_output.is_file() or engine_output.stat().st_size == 0:
        raise ClipRejected("the engine wrote no audio file")
    try:
        raw = audio.decode_file(engine_output)
    except miniaudio.DecodeError as error:
        raise ClipRejected(f"the engine's file is not audio ({error})") from None
    if raw.size == 0 or np.abs(raw.astype(np.int32)).max() < SPEECH_THRESHOLD:
        raise ClipRejected("the engine's file holds no speech")
    levelled = limiter.level(audio.trim_silence(raw), levels.VOICE_LUFS, levels.SPEECH_PEAK, meter.joined_loudness)
    return audio.fade_edges(levelled, FADE_IN, FADE_OUT)


def voice_lines(
    lines: dict[str, str],
    request: VoiceRequest,
    cache: ClipCache,
    workers: int,
    on_progress: Callable[[int, int], None],
) -> VoicedClips:
    """Make sure every line (text -> label for messages) has a clip in the cache."""
    keys = line_keys(lines, request)
    jobs: dict[str, Job] = {}  # by key: lines that differ only in respelled words share a clip
    for text, label in lines.items():
        if cache.length(keys[text]) is None:
            jobs.setdefault(keys[text], Job(request.spoken(text), label))
    key_of = {job.text: key for key, job in jobs.items()}
    done = 0
    lock = threading.Lock()

    def accept(job: Job, engine_output: Path) -> None:
        nonlocal done
        cache.store(key_of[job.text], prepare_clip(engine_output))
        with lock:
            done += 1
            on_progress(done, len(jobs))

    if jobs:
        # Longest first, so the workers run out of work at about the same time.
        synthesize(sorted(jobs.values(), key=lambda job: len(job.text), reverse=True), request, workers, accept)
    lengths = {text: len(cache.read(key)) for text, key in keys.items()}  # raises if one went missing since
    reused = sum(1 for key in keys.values() if key not in jobs)
    return VoicedClips(cache, keys, lengths, reused=reused, made=len(jobs))


def voice_clips(
    lines: dict[str, str],
    request: VoiceRequest,
    output_dir: Path,
    workers: int | None,
    on_progress: Callable[[int, int], None],
) -> VoicedClips:
    """Voice `lines` (text -> label) into the clip cache under OUTPUT_DIR/cache, calling `on_progress(done, total)`."""
    return voice_lines(lines, request, ClipCache(output_dir / "cache"), workers or default_workers(), on_progress)


# Speaking rate assumed for a voice with no clip cached yet (about 150 words a minute).
DEFAULT_CHARACTERS_PER_SECOND = 14.0


def known_lengths(lines: dict[str, str], request: VoiceRequest, cache: ClipCache) -> dict[str, int | None]:
    """Each line's clip length from the cache, or None where it has not been voiced yet."""
    return {text: cache.length(key) for text, key in line_keys(lines, request).items()}


def estimate_lengths(known: dict[str, int | None], speed: float) -> dict[str, int]:
    """Fill the gaps in `known` from this voice's own pace in the clips it has, or a typical pace."""
    voiced = {text: length for text, length in known.items() if length is not None}
    characters = sum(len(text) for text in voiced)
    if characters:
        per_character = sum(voiced.values()) / characters
    else:
        per_character = audio.SAMPLE_RATE / (DEFAULT_CHARACTERS_PER_SECOND * speed)
    return {text: length if length is not None else round(len(text) * per_character) for text, length in known.items()}
