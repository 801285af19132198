"""The internal audio format (44.1 kHz, mono, 16-bit), conversions at its edges, and its primitives.

Audio inside voiceguide is a numpy int16 array at SAMPLE_RATE; time inside the planner is a
count of samples. Files are decoded with miniaudio, so no ffmpeg is needed. The one WAV writer,
the one fade shape and the one int16 <-> float scale live here.
"""

from __future__ import annotations

import wave
from collections.abc import Iterable, Iterator
from pathlib import Path

import miniaudio
import numpy as np

SAMPLE_RATE = 44_100
SAMPLES_PER_FRAME = 1152  # of an MPEG-1 Layer III frame: the MP3's unit of time
FULL_SCALE = 32_768  # int16 <-> float: a float sample is int16 / FULL_SCALE, so int16 spans [-1, 1)


def samples(seconds: float) -> int:
    """Seconds to a whole number of samples."""
    return round(seconds * SAMPLE_RATE)


def seconds(sample_count: int) -> float:
    return sample_count / SAMPLE_RATE


def decode_file(path: Path) -> np.ndarray:
    """Any mp3/ogg/flac/wav file as int16 mono at SAMPLE_RATE; miniaudio.DecodeError if not audio."""
    decoded = miniaudio.decode_file(
        str(path), output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=SAMPLE_RATE
    )
    return np.frombuffer(decoded.samples, dtype=np.int16).copy()


def stream_file(path: Path, start: int = 0, block: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """An audio file from sample `start` as int16 mono blocks (a second by default), decoded as they are read."""
    for chunk in miniaudio.stream_file(
        str(path), output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=SAMPLE_RATE,
        frames_to_read=block, seek_frame=start,
    ):  # fmt: skip
        yield np.frombuffer(chunk, dtype=np.int16)


def write_wav(path: Path, blocks: Iterable[np.ndarray], sample_rate: int = SAMPLE_RATE) -> None:
    """Write int16 mono blocks, as they come, to a 16-bit WAV file (so a long one is never held whole)."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        for block in blocks:
            wav.writeframes(np.ascontiguousarray(block, dtype=np.int16).tobytes())


def to_int16(values: np.ndarray) -> np.ndarray:
    """Samples in int16 units, rounded and clipped to int16 (scale floats in [-1, 1) by FULL_SCALE first)."""
    return np.clip(np.round(values), -FULL_SCALE, FULL_SCALE - 1).astype(np.int16)


def peak(block: np.ndarray) -> int:
    """The largest magnitude among int16 samples (0 for none)."""
    return max(int(block.max(initial=0)), -int(block.min(initial=0)))


def scaled(block: np.ndarray, factor: float) -> np.ndarray:
    """int16 samples times `factor`, rounded and clipped; silence as it is. In float32: ample for 16 bits, and quick."""
    if not block.any():
        return block
    return to_int16(block * np.float32(factor))


def raised_cosine(position: np.ndarray) -> np.ndarray:
    """A linear 0..1 ramp made raised-cosine, so level changes have no corners and fades no clicks."""
    return 0.5 - 0.5 * np.cos(np.pi * position)


def rise(length: int, dtype: type = np.float32) -> np.ndarray:
    """A raised-cosine rise from 0 to 1 over `length` samples."""
    return raised_cosine(np.linspace(0, 1, length, dtype=dtype))


def fade_edges(audio: np.ndarray, fade_in: int, fade_out: int) -> np.ndarray:
    """A copy with short fades at both ends, so a clip never starts or ends with a click."""
    out = audio.astype(np.float32)
    fade_in, fade_out = min(fade_in, len(out)), min(fade_out, len(out))
    out[:fade_in] *= rise(fade_in)
    if fade_out:
        out[-fade_out:] *= rise(fade_out)[::-1]
    return np.round(out).astype(np.int16)


def trim_silence(audio: np.ndarray, threshold: int = 200, margin: int = samples(0.03)) -> np.ndarray:
    """Drop leading and trailing near-silence (engines pad differently), keeping a short margin."""
    loud = np.flatnonzero(np.abs(audio.astype(np.int32)) > threshold)
    if loud.size == 0:
        return audio[:0]
    start = max(0, loud[0] - margin)
    end = min(len(audio), loud[-1] + 1 + margin)
    return audio[start:end]
