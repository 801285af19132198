"""The clip cache: finished clips stored by a hash of everything that shapes their sound.

There is one per user, in the platform's user cache folder ($VOICEGUIDE_CACHE_DIR, or
--cache-dir, puts it elsewhere), shared by every output folder and working directory, so a
line voiced once is never voiced again wherever its routine is built. An entry is a WAV file
in the internal format, named by its key, so a warm build reads it without decoding or
resampling. After the samples comes a small extra chunk (players skip it)
holding their CRC-32. Entries are written to a temporary name and renamed into place, so two
builds can share the cache; an entry whose header, size or checksum is wrong (truncated, or
corrupt) is treated as missing and made again, and is never played.

Beside the clips, in entries of the same format, the Piper engine keeps each sentence it voices
(see piper_engine.py), so an edit voices only the sentences it changed.
"""

from __future__ import annotations

import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs

from voiceguide import audio
from voiceguide.errors import VoiceguideError
from voiceguide.files import atomic_path, file_sizes, remove_files

CACHE_DIR_VARIABLE = "VOICEGUIDE_CACHE_DIR"
CLIPS = "clips"  # the clips' subfolder; beside it, other caches of the build may keep their own
SENTENCES = "sentences"  # the Piper engine's voiced sentences (see piper_engine.py), entries like the clips'

# RIFF header, "fmt " chunk (PCM, mono, 16-bit) and "data" chunk header; then the samples.
HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
CHECK = struct.Struct("<4sII")  # the chunk after the samples: "crc ", its size (4), CRC-32 of the samples


def _header(data_bytes: int, rate: int) -> bytes:
    riff_bytes = HEADER.size - 8 + data_bytes + CHECK.size
    return HEADER.pack(b"RIFF", riff_bytes, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16, b"data", data_bytes)


def _check(data: bytes) -> bytes:
    return CHECK.pack(b"crc ", 4, zlib.crc32(data))


def user_cache_folder() -> Path:
    """The cache every build shares: $VOICEGUIDE_CACHE_DIR if set, else the platform's user cache folder."""
    return Path(os.environ.get(CACHE_DIR_VARIABLE) or platformdirs.user_cache_path("voiceguide", appauthor=False))


@dataclass(frozen=True)
class Usage:
    clips: int
    bytes: int  # of every file in the cache, clips or not (of those removed, for prune)
    sentences: int = 0  # voiced sentences the Piper engine keeps (see piper_engine.py)


def clip_key(voice_key: str, text: str) -> str:
    return hashlib.sha256(f"{voice_key}\n{text}".encode()).hexdigest()[:32]


class Entries:
    """Mono 16-bit WAV files at `rate` in one folder, named by key, in the format described above."""

    def __init__(self, folder: Path, rate: int = audio.SAMPLE_RATE):
        self.folder = folder
        self.rate = rate

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.wav"

    def read(self, key: str) -> np.ndarray | None:
        """The entry's samples if its header, size and checksum are right, else None."""
        try:
            entry = self.path(key).read_bytes()
        except OSError:
            return None
        if len(entry) < HEADER.size + CHECK.size:
            return None
        data_bytes = HEADER.unpack_from(entry)[-1]
        data = entry[HEADER.size : HEADER.size + data_bytes]
        whole = len(entry) == HEADER.size + data_bytes + CHECK.size and data_bytes > 0
        if not whole or entry[: HEADER.size] != _header(data_bytes, self.rate) or entry[-CHECK.size :] != _check(data):
            return None
        return np.frombuffer(data, dtype="<i2").astype(np.int16)

    def store(self, key: str, samples: np.ndarray) -> None:
        """Store `samples`; a whole entry already there is kept, so two builds (or workers) making the
        same entry at once both go on with one of them (engines may differ by a few samples)."""
        data = np.ascontiguousarray(samples, dtype="<i2").tobytes()
        if self.path(key).exists() and self.read(key) is None:
            self.path(key).unlink(missing_ok=True)  # a damaged entry makes way for the new one
        with atomic_path(self.path(key), keep_existing=True) as temporary:
            temporary.write_bytes(_header(len(data), self.rate) + data + _check(data))

    def all(self) -> list[Path]:
        return sorted(self.folder.glob("??/*.wav"))


class ClipCache:
    def __init__(self, folder: Path | None = None):
        """The cache in `folder`; None for the user's (see user_cache_folder)."""
        self.folder = folder if folder is not None else user_cache_folder()
        self._clips = Entries(self.folder / CLIPS)
        self._sentences = Entries(self.folder / SENTENCES)  # only listed here: the Piper engine reads and writes them

    def path(self, key: str) -> Path:
        return self._clips.path(key)

    def length(self, key: str) -> int | None:
        """The entry's length in samples, or None if it is missing or damaged."""
        clip = self._clips.read(key)
        return None if clip is None else len(clip)

    def read(self, key: str) -> np.ndarray:
        clip = self._clips.read(key)
        if clip is None:
            raise VoiceguideError(
                f"clip cache entry {self.path(key)} is missing or damaged (it changed after this build checked it); "
                "build again to make it anew"
            )
        return clip

    def store(self, key: str, clip: np.ndarray) -> None:
        """Store a clip; a whole entry already there is kept, so two builds voicing the same line
        at once both plan and render with one clip."""
        self._clips.store(key, clip)

    def usage(self) -> Usage:
        """How many clips and sentences the cache holds, and the size on disk of everything in it."""
        return Usage(len(self._clips.all()), sum(file_sizes(self.folder.rglob("*"))), len(self._sentences.all()))

    def prune(self, keep: set[str]) -> Usage:
        """Remove every clip whose key is not in `keep`; returns what was removed."""
        removed = [entry for entry in self._clips.all() if entry.stem not in keep]
        return Usage(len(removed), remove_files(removed))

    def clear_sentences(self) -> int:
        """Remove every voiced sentence; returns the bytes freed. Builds voice them again as they need them."""
        return remove_files(self._sentences.all())
