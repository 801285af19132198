"""The clip cache: finished clips stored by a hash of everything that shapes their sound.

An entry is a WAV file in the internal format, named by its key, so a warm build reads it
without decoding or resampling. After the samples comes a small extra chunk (players skip it)
holding their CRC-32. Entries are written to a temporary name and renamed into place, so two
builds can share the cache; an entry whose header, size or checksum is wrong (truncated, or
corrupt) is treated as missing and made again, and is never played.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceguide import audio
from voiceguide.errors import VoiceguideError
from voiceguide.files import atomic_path

# RIFF header, "fmt " chunk (PCM, mono, 16-bit) and "data" chunk header; then the samples.
HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
CHECK = struct.Struct("<4sII")  # the chunk after the samples: "crc ", its size (4), CRC-32 of the samples


def _header(data_bytes: int) -> bytes:
    riff_bytes = HEADER.size - 8 + data_bytes + CHECK.size
    rate = audio.SAMPLE_RATE
    return HEADER.pack(b"RIFF", riff_bytes, b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2, 16, b"data", data_bytes)


def _check(data: bytes) -> bytes:
    return CHECK.pack(b"crc ", 4, zlib.crc32(data))


@dataclass(frozen=True)
class Usage:
    clips: int
    bytes: int


def clip_key(voice_key: str, text: str) -> str:
    return hashlib.sha256(f"{voice_key}\n{text}".encode()).hexdigest()[:32]


class ClipCache:
    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.wav"

    def length(self, key: str) -> int | None:
        """The entry's length in samples, or None if it is missing or damaged."""
        data = self._samples(key)
        return None if data is None else len(data) // 2

    def read(self, key: str) -> np.ndarray:
        data = self._samples(key)
        if data is None:
            raise VoiceguideError(
                f"clip cache entry {self.path(key)} is missing or damaged (it changed after this build checked it); "
                "build again to make it anew"
            )
        return np.frombuffer(data, dtype="<i2").astype(np.int16)

    def _samples(self, key: str) -> bytes | None:
        """The entry's PCM bytes if its header, size and checksum are right, else None."""
        try:
            entry = self.path(key).read_bytes()
        except OSError:
            return None
        if len(entry) < HEADER.size + CHECK.size:
            return None
        data_bytes = HEADER.unpack_from(entry)[-1]
        data = entry[HEADER.size : HEADER.size + data_bytes]
        whole = len(entry) == HEADER.size + data_bytes + CHECK.size and data_bytes > 0
        if not whole or entry[: HEADER.size] != _header(data_bytes) or entry[-CHECK.size :] != _check(data):
            return None
        return data

    def store(self, key: str, clip: np.ndarray) -> None:
        """Store a clip; a whole entry already there is kept, so two builds voicing the same line
        at once both plan and render with one clip (engines may differ by a few samples)."""
        data = np.ascontiguousarray(clip, dtype="<i2").tobytes()
        if self.path(key).exists() and self._samples(key) is None:
            self.path(key).unlink(missing_ok=True)  # a damaged entry makes way for the new one
        with atomic_path(self.path(key), keep_existing=True) as temporary:
            temporary.write_bytes(_header(len(data)) + data + _check(data))

    def _entries(self) -> list[Path]:
        return sorted(self.folder.glob("??/*.wav"))

    def usage(self) -> Usage:
        """How many clips the cache holds, and their size on disk."""
        entries = self._entries()
        return Usage(len(entries), sum(entry.stat().st_size for entry in entries))

    def prune(self, keep: set[str]) -> Usage:
        """Remove every entry whose key is not in `keep`; returns what was removed."""
        removed = [entry for entry in self._entries() if entry.stem not in keep]
        freed = sum(entry.stat().st_size for entry in removed)
        for entry in removed:
            entry.unlink(missing_ok=True)
        return Usage(len(removed), freed)
