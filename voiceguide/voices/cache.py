"""The clip cache: finished clips stored by a hash of everything that shapes their sound.

An entry is a WAV file in the internal format, named by its key, so a warm build reads it
without decoding or resampling. Entries are written to a temporary name and renamed into
place, so two builds can share the cache; an entry whose size does not match its header
(truncated, or corrupt) is treated as missing and made again.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path

import numpy as np

from voiceguide import audio
from voiceguide.files import atomic_path

WAV_HEADER_BYTES = 44


def clip_key(voice_key: str, text: str) -> str:
    return hashlib.sha256(f"{voice_key}\n{text}".encode()).hexdigest()[:32]


class ClipCache:
    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.wav"

    def length(self, key: str) -> int | None:
        """The entry's length in samples, or None if it is missing or damaged."""
        path = self.path(key)
        try:
            with path.open("rb") as file:
                header = file.read(WAV_HEADER_BYTES)
                size = os.fstat(file.fileno()).st_size
        except OSError:
            return None
        if len(header) < WAV_HEADER_BYTES or header[:4] != b"RIFF" or header[36:40] != b"data":
            return None
        data_bytes = struct.unpack("<I", header[40:44])[0]
        if size != WAV_HEADER_BYTES + data_bytes or data_bytes == 0:
            return None
        return data_bytes // 2

    def read(self, key: str) -> np.ndarray:
        return audio.read_wav(self.path(key))

    def store(self, key: str, clip: np.ndarray) -> None:
        with atomic_path(self.path(key)) as temporary:
            audio.write_wav(temporary, clip)
