"""Sounds a routine can name: the built-in library in `sounds/`, or the user's own audio files."""

from __future__ import annotations

import functools
import hashlib
from importlib import resources
from pathlib import Path

import miniaudio
import numpy as np

from voiceguide import audio, levels, limiter, meter
from voiceguide.durations import format_duration
from voiceguide.errors import VoiceguideError
from voiceguide.files import not_a_file

# The top-level sounds/ folder is installed as this package (see pyproject.toml), so the
# library is found the same way from a checkout, an editable install or a wheel.
BUILTIN_DIR = Path(str(resources.files("voiceguide._sounds")))
AUDIO_SUFFIXES = (".wav", ".mp3", ".ogg", ".flac")
# Sounds are decoded and levelled whole, so their length bounds a build's memory (a 1-hour WAV as
# a transition took 10 GB): a minute of sound costs about 170 MB at its peak, a minute of bed 25 MB.
LONGEST_SOUND = 60.0  # seconds, for a transition or a cue: a chime or a gong rings for seconds
LONGEST_BED = 600.0  # seconds, for a background, which loops: ambient loops run a few minutes


def builtin_names() -> list[str]:
    return sorted(path.stem for path in BUILTIN_DIR.glob("*.wav"))


def builtin_path(name: str) -> Path:
    return BUILTIN_DIR / f"{name}.wav"


def resolve(spec: str, folder: Path, bed: bool = False) -> Path:
    """The file behind a sound spec: a built-in name, or a path relative to `folder`.

    Raises ValueError with a message fit for the user when there is no such sound, the file is
    not audio, or it is longer than a sound (a background `bed`) may be.
    """
    if spec in builtin_names():
        return builtin_path(spec)
    path = folder / Path(spec).expanduser()
    try:
        if not path.suffix and not path.exists():
            builtin = ", ".join(builtin_names())
            raise ValueError(f"unknown sound {spec!r}; built-in sounds are {builtin}, or give a path to an audio file")
        problem = not_a_file(path)
        if problem:
            raise ValueError(f"sound file {spec!r} {problem}")
        seconds = miniaudio.get_file_info(str(path)).duration
    except miniaudio.DecodeError:
        raise ValueError(f"sound file {spec!r} is not a readable audio file ({', '.join(AUDIO_SUFFIXES)})") from None
    except OSError as error:
        raise ValueError(f"sound file {spec!r} cannot be read: {error.strerror}") from None
    longest, what = (LONGEST_BED, "a background") if bed else (LONGEST_SOUND, "a transition or cue sound")
    if seconds > longest:
        length, most = format_duration(seconds), format_duration(longest)
        raise ValueError(f"sound file {spec!r} lasts {length}; {what} may last at most {most}: cut it shorter")
    return path


def load(path: Path) -> np.ndarray:
    """A sound as int16 mono at the internal rate, decoded once per process while the file stays as it is."""
    return _decoded(path, _identity(path))


def levelled(path: Path) -> np.ndarray:
    """A sound at its set level below the voice (levels.SOUND_LUFS), so no sound startles."""
    return _levelled(path, _identity(path))


def digest(path: Path) -> str:
    """A digest of the sound's samples: its name by content."""
    return _digest(path, _identity(path))


def _identity(path: Path) -> tuple[int, ...]:
    """What tells a file saved again from the one decoded before (watch mode keeps one process running)."""
    try:
        status = path.stat()
    except OSError as error:
        raise VoiceguideError(f"{path}: cannot read sound file: {error.strerror}") from None
    return status.st_mtime_ns, status.st_ctime_ns, status.st_size, status.st_ino


@functools.lru_cache(maxsize=32)
def _decoded(path: Path, identity: tuple[int, ...]) -> np.ndarray:
    try:
        samples = audio.decode_file(path)
    except (miniaudio.DecodeError, OSError) as error:
        raise VoiceguideError(f"{path}: cannot decode sound file: {error}") from None
    samples.setflags(write=False)
    return samples


@functools.lru_cache(maxsize=32)
def _digest(path: Path, identity: tuple[int, ...]) -> str:
    return hashlib.sha256(_decoded(path, identity).data).hexdigest()


@functools.lru_cache(maxsize=32)
def _levelled(path: Path, identity: tuple[int, ...]) -> np.ndarray:
    samples = limiter.level(_decoded(path, identity), levels.SOUND_LUFS, levels.SOUND_PEAK, meter.loudness_in_track)
    samples.setflags(write=False)
    return samples
