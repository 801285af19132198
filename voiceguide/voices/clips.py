"""The voice stage: every line a routine speaks, as a cached clip ready to play.

A clip's cache key covers everything that shapes its sound (engine and its version, voice,
language, speed, text, and the version of the processing below), so an edit re-voices only the
lines it changed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import miniaudio
import numpy as np

from voiceguide import audio, levels, limiter, meter
from voiceguide.files import atomic_path
from voiceguide.voices import engine_class
from voiceguide.voices.cache import ClipCache, clip_key
from voiceguide.voices.pool import ClipRejected, Job, VoiceRequest, WarmWorkers, default_workers, synthesize

FADE_IN = audio.samples(0.005)
FADE_OUT = audio.samples(0.02)
SPEECH_THRESHOLD = 500  # a clip with no sample louder than this holds no speech
PROCESSING_VERSION = 5  # part of every clip key: bump it when prepare_clip changes what it makes


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
    warm: WarmWorkers | None = None,
) -> VoicedClips:
    """Make sure every line (text -> label for messages) has a clip in the cache; `warm` keeps the workers."""
    keys = line_keys(lines, request)
    jobs: dict[str, Job] = {}  # by key: lines that differ only in respelled words share a clip
    for text, label in lines.items():
        if cache.length(keys[text]) is None:
            jobs.setdefault(keys[text], Job(request.spoken(text), label))
    key_of = {job.text: key for key, job in jobs.items()}
    done = 0
    lock = threading.Lock()
    heard = _Tally()

    def accept(job: Job, engine_output: Path) -> None:
        nonlocal done
        clip = prepare_clip(engine_output)
        cache.store(key_of[job.text], clip)
        with lock:
            heard.add(job.text, len(clip) * request.speed)
            done += 1
            on_progress(done, len(jobs))

    if jobs:
        try:  # longest first, so the workers run out of work at about the same time
            longest_first = sorted(jobs.values(), key=lambda job: len(job.text), reverse=True)
            synthesize(longest_first, request, cache.folder, workers, accept, warm)
        finally:
            _record_pace(request, cache, heard)
    lengths = {text: len(cache.read(key)) for text, key in keys.items()}  # raises if one went missing since
    reused = sum(1 for key in keys.values() if key not in jobs)
    return VoicedClips(cache, keys, lengths, reused=reused, made=len(jobs))


def voice_clips(
    lines: dict[str, str],
    request: VoiceRequest,
    cache_dir: Path | None,
    workers: int | None,
    on_progress: Callable[[int, int], None],
    warm: WarmWorkers | None = None,
) -> VoicedClips:
    """Voice `lines` (text -> label) into the clip cache in CACHE_DIR (None for the user's), calling
    `on_progress(done, total)`; on `warm` workers if given."""
    return voice_lines(lines, request, ClipCache(cache_dir), workers or default_workers(), on_progress, warm)


PACES = "paces"  # the cache's subfolder of pace records, one per voice
PAUSE = re.compile(r"[.,;:!?…]+(?=\s|$)")  # punctuation a voice pauses at


@dataclass(frozen=True)
class Pace:
    """How long a voice takes to say a line at speed 1: samples per character, and per pause at punctuation."""

    per_character: float
    per_pause: float

    def samples(self, text: str, speed: float) -> int:
        return round((self.per_character * len(text) + self.per_pause * len(PAUSE.findall(text))) / speed)

    def scaled(self, factor: float) -> Pace:
        return Pace(self.per_character * factor, self.per_pause * factor)


@dataclass
class _Tally:
    """The lines a voice said and how long they took (at speed 1), summed as a pace needs them."""

    characters: int = 0
    pauses: int = 0
    samples: float = 0.0

    def add(self, text: str, samples: float) -> None:
        self.characters += len(text)
        self.pauses += len(PAUSE.findall(text))
        self.samples += samples


# The pace of an engine's voices (for a language, where it differs) before any of their clips is
# made: least squares over the 400 lines of the bundled routines, whose speech each comes within
# 2% of its sum. Once a voice has made clips, in any routine, its own pace scales this.
TYPICAL_PACES = {
    "piper": Pace(per_character=2070.0, per_pause=14930.0),  # en_US-joe-medium
    "pyttsx3": Pace(per_character=2173.0, per_pause=7410.0),  # eSpeak NG, English
    "pyttsx3 fr": Pace(per_character=1980.0, per_pause=4480.0),
}


def typical_pace(engine: str, language: str) -> Pace:
    return TYPICAL_PACES.get(f"{engine} {language.split('-')[0]}") or TYPICAL_PACES[engine]


def _pace_record(request: VoiceRequest, cache: ClipCache) -> Path:
    """The voice's record, whatever its speed (its lengths are kept as at speed 1)."""
    voice = voice_key(request).rsplit("|", 2)[0]  # without the speed and the processing version
    return cache.folder / PACES / f"{hashlib.sha256(voice.encode()).hexdigest()[:32]}.json"


def _read_tally(path: Path) -> _Tally:
    try:
        return _Tally(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return _Tally()


def _record_pace(request: VoiceRequest, cache: ClipCache, heard: _Tally) -> None:
    """Add the lines just voiced to the voice's record (two builds at once may lose one's lines: it is an estimate)."""
    if not heard.characters:
        return
    path = _pace_record(request, cache)
    tally = _read_tally(path)
    for name in ("characters", "pauses", "samples"):
        setattr(tally, name, getattr(tally, name) + getattr(heard, name))
    with atomic_path(path) as temporary:
        temporary.write_text(json.dumps(dataclasses.asdict(tally)), encoding="utf-8")


def voice_pace(request: VoiceRequest, cache: ClipCache) -> Pace:
    """The voice's pace: its engine's typical pace, scaled to the clips this voice has made (any routine's)."""
    typical = typical_pace(request.engine, request.language)
    tally = _read_tally(_pace_record(request, cache))
    expected = typical.per_character * tally.characters + typical.per_pause * tally.pauses
    if tally.samples <= 0 or expected <= 0:
        return typical
    return typical.scaled(tally.samples / expected)


def known_lengths(lines: dict[str, str], request: VoiceRequest, cache: ClipCache) -> dict[str, int | None]:
    """Each line's clip length from the cache, or None where it has not been voiced yet."""
    return {text: cache.length(key) for text, key in line_keys(lines, request).items()}


def estimate_lengths(known: dict[str, int | None], speed: float, pace: Pace = TYPICAL_PACES["piper"]) -> dict[str, int]:
    """Fill the gaps in `known` from the voice's `pace` (see voice_pace)."""
    return {text: length if length is not None else pace.samples(text, speed) for text, length in known.items()}
