"""Incremental MP3 encoding: a track is islands of sound in digital silence, each encoded once and kept.

A routine's track is mostly holds of digital silence, with islands of sound between them (a
spoken line, a chime, a cue). Each island is encoded on its own by LAME, fed a little silence
before it so that it sits at its own place in the frame grid, and the frames that carry it are
kept in the cache, named by a digest of its samples and that place. The frames of silence
between islands are all the same, and cost nothing to make. So a build encodes only the islands
it has not encoded before: after a one-line edit, the changed chapter's. Each island is metered
as it is encoded (meter.StretchLoudness), and its loudness kept with its frames, so the track's
loudness is gathered from its islands' without metering again what did not change.

Splicing frames from separate encodings is sound because of how a Layer III frame is read:

- A frame's audio data (its "main data") may start in the frames before it, in the bytes they
  leave free: the bit reservoir. `main_data_begin` in its side info says how far back, at most
  511 bytes. The frames are therefore unpacked into side info and main data, and packed anew
  for the whole track, each frame's data placed as early as the reservoir allows (as LAME
  itself does), so no frame points into data that is not there. Before each island come at
  least two frames of silence, whose free bytes give it a full reservoir, as it had in its own
  encoding; so its data always fits. (Cutting frames as they are leaves such dangling
  pointers: players click or drop the first frames, as mp3splt's users found. Frames unpacked
  into side info and main data are what RFC 3119 calls ADUs, made to move MP3 audio about.)
- A decoder's state (the filter bank's and the transform's overlap) is all zeros after frames
  that hold no data, both in the island's own encoding and in the track, so the island decodes
  to the very same samples in both. Frames of silence carry no data at all.
- LAME's frames of digital silence hold no data either, so an island's frames are exactly
  those, from its first frame holding data to its last.

A full build is made the same way, from the same islands, so a rebuild after an edit is the
same file, byte for byte, as a full build from the same clips. A track where sound never stops
for long (under a background bed) is one island; an island longer than MAX_KEPT_ISLAND is
encoded as it streams, and not kept.
"""

from __future__ import annotations

import bisect
import collections
import functools
import hashlib
import importlib.metadata
import io
import math
import os
import struct
import zlib
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import miniaudio
import numpy as np

from voiceguide import audio, export, meter
from voiceguide.files import atomic_path, remove_files

FRAMES = "frames"  # the cache's subfolder of kept islands
HEADER_BYTES = 4
MAIN_DATA_OFFSET = HEADER_BYTES + export.SIDE_INFO_BYTES
MAX_BACKSTEP = 511  # bytes: how far back main_data_begin (9 bits) can point
LEAD_FRAMES = 2  # frames of silence LAME encodes before an island, as before any sound in a track
MIN_GAP = 8 * export.SAMPLES_PER_FRAME  # samples of digital silence that end an island; a sound sooner joins it
MAX_KEPT_ISLAND = audio.samples(180.0)  # a longer island is encoded as it streams, and not kept
WARM_UP_FRAMES = 2  # decoded before a stretch and dropped: the decoder's overlap reaches one frame back
AUDIT_FRAMES = 400  # about 10 s: a longer island is decoded in stretches, so memory stays flat
FORMAT_VERSION = 2  # part of every island's key: bump it when encoding, or what is kept, changes
# The padding of CBR frames at 44.1 kHz (LAME's rule): a frame takes one byte more whenever the
# running remainder of 144 * bitrate / 44100 bytes a frame passes a whole byte.
_PADDING_STEP = (144 * export.BITRATE_KBPS * 1000) % audio.SAMPLE_RATE
_ENTRY = struct.Struct("<4siIdIII")  # magic, first frame, island length, true peak, frame count, loudness steps
_MAGIC = b"VGF2"
_FRAME_ENTRY = struct.Struct("<17sH")  # side info, main data length


@dataclass(frozen=True)
class Frame:
    """One frame, unpacked: its side info (main_data_begin as its encoder wrote it) and its main data."""

    side_info: bytes
    main_data: bytes


@dataclass(frozen=True)
class Island:
    """An island's frames, from its first frame holding data to its last, the true peak they
    decode to, and its loudness (metered before encoding, as the limiter gave it)."""

    first: int  # the first frame's index in the track, less the index of the frame the island starts in
    frames: tuple[Frame, ...]
    true_peak: float  # dBTP, as a player decodes the frames
    loudness: meter.StretchLoudness


@dataclass(frozen=True)
class EncodedTrack:
    samples: int
    true_peak: float  # dBTP, of the whole track as a player decodes it
    loudness: float  # LUFS, of the whole track as it went into the encoder
    speech_loudness: float  # LUFS, of the samples inside the speech spans alone, joined end to end
    islands_encoded: int
    islands_kept: int  # found in the cache, so not encoded again


def _bits(data: bytes, start: int, count: int) -> int:
    return (int.from_bytes(data, "big") >> (len(data) * 8 - start - count)) & ((1 << count) - 1)


def _main_data_bytes(side_info: bytes) -> int:
    """How many bytes of main data a mono MPEG-1 frame has: its two granules' part2_3_length, in bits."""
    return -(-(_bits(side_info, 18, 12) + _bits(side_info, 18 + 59, 12)) // 8)


def _with_backstep(side_info: bytes, backstep: int) -> bytes:
    """The side info with main_data_begin (its first 9 bits) set to `backstep`."""
    return bytes([backstep >> 1, (backstep & 1) << 7 | side_info[1] & 0x7F]) + side_info[2:]


class _Unpacker:
    """Splits a stream of LAME's frames into Frames, as it arrives in pieces."""

    def __init__(self) -> None:
        self._pending = b""
        self._reservoir = b""  # the last main data bytes seen: where the next frames' data may begin

    def feed(self, data: bytes) -> Iterator[Frame]:
        data = self._pending + data
        position = 0
        while position + HEADER_BYTES <= len(data):
            if data[position] != 0xFF:
                raise ValueError("lost MPEG frame sync in LAME's output")
            size = export.FRAME_BYTES + (data[position + 2] >> 1 & 1)
            if position + size > len(data):
                break
            frame = data[position : position + size]
            side_info = frame[HEADER_BYTES:MAIN_DATA_OFFSET]
            self._reservoir += frame[MAIN_DATA_OFFSET:]
            area_start = len(self._reservoir) - (size - MAIN_DATA_OFFSET)
            start = area_start - _bits(side_info, 0, 9)
            yield Frame(side_info, self._reservoir[start : start + _main_data_bytes(side_info)])
            self._reservoir = self._reservoir[-(MAX_BACKSTEP + export.FRAME_BYTES) :]
            position += size
        self._pending = data[position:]


@functools.cache
def _silence() -> tuple[bytes, Frame]:
    """A frame header without the padding bit, and a frame of silence (no data), both as LAME makes them."""
    encoder = export.new_encoder()
    data = encoder.encode(bytes(4 * export.SAMPLES_PER_FRAME * 2)) + encoder.flush()
    last = list(_Unpacker().feed(data))[-1]
    header = data[:2] + bytes([data[2] & ~0x02]) + data[3:4]
    return header, Frame(_with_backstep(last.side_info, 0), b"")


class _Packer:
    """Packs Frames into a CBR stream, each frame's main data as early as the bit reservoir allows.

    The frames' padding follows LAME's rule, so the stream is as long as LAME's would be; where
    a frame's data would not fit, that frame is padded early and the next padding skipped.
    """

    def __init__(self, file: BinaryIO):
        self.file = file
        self.frames = 0
        self.header, self.silent = _silence()
        self._lag = _PADDING_STEP  # LAME's slot_lag
        self._owed = False  # a frame was padded early: skip the next padding
        self._slots: list[tuple[int, bytearray]] = []  # frames not yet written: where their main data area starts
        self._area_start = 0  # where the next frame's main data area starts, in the stream of main data areas
        self._data_end = 0

    def _padding(self) -> int:
        self._lag -= _PADDING_STEP
        if self._lag >= 0:
            return 0
        self._lag += audio.SAMPLE_RATE
        if self._owed:
            self._owed = False
            return 0
        return 1

    def add(self, frame: Frame) -> None:
        padding = self._padding()
        data = frame.main_data
        # Even a frame without data points back as far as it can: decoders keep as their reservoir only
        # the bytes from where its data would begin, so the frames after it can point back as far.
        start = max(self._data_end, self._area_start - MAX_BACKSTEP)
        room = export.FRAME_BYTES - MAIN_DATA_OFFSET + padding
        if start + len(data) > self._area_start + room and not padding:
            padding, room, self._owed = 1, room + 1, True
        if start + len(data) > self._area_start + room:
            raise ValueError(f"frame {self.frames}'s main data does not fit ({len(data)} bytes)")
        header = self.header[:2] + bytes([self.header[2] | padding << 1]) + self.header[3:]
        slot = bytearray(header + _with_backstep(frame.side_info, self._area_start - start) + bytes(room))
        self._slots.append((self._area_start, slot))
        for area_start, target in self._slots:  # the data may begin in earlier frames' free bytes
            begin, end = max(start, area_start), min(start + len(data), area_start + len(target) - MAIN_DATA_OFFSET)
            if begin < end:
                target[MAIN_DATA_OFFSET + begin - area_start : MAIN_DATA_OFFSET + end - area_start] = data[
                    begin - start : end - start
                ]
        if data:
            self._data_end = start + len(data)
        self._area_start += room
        self.frames += 1
        while self._slots and self._slots[0][0] + len(self._slots[0][1]) < self._area_start - MAX_BACKSTEP:
            self.file.write(self._slots.pop(0)[1])  # no later frame's data can reach it

    def add_silence(self, count: int) -> None:
        """`count` frames of silence. Once they point back as far as they can, they are all alike
        but for their padding, so most are written at once (as add() would write them)."""
        quick = count - 2  # the last two wait: the next island's data may begin in them
        while quick > 0 and self._area_start - self._data_end < MAX_BACKSTEP:
            self.add(self.silent)
            quick, count = quick - 1, count - 1
        if quick > 0:
            self.flush()
            side_info = _with_backstep(self.silent.side_info, MAX_BACKSTEP)
            alike = [
                self.header[:2] + bytes([self.header[2] | padding << 1]) + self.header[3:] + side_info
                + bytes(export.FRAME_BYTES - MAIN_DATA_OFFSET + padding)
                for padding in (0, 1)
            ]  # fmt: skip
            frames = [alike[self._padding()] for _ in range(quick)]
            self.file.write(b"".join(frames))
            self._area_start += sum(len(frame) - MAIN_DATA_OFFSET for frame in frames)
            self.frames += quick
            count -= quick
        for _ in range(count):
            self.add(self.silent)

    def flush(self) -> None:
        for _, slot in self._slots:
            self.file.write(slot)
        self._slots = []


@functools.cache
def _encoder_version() -> str:
    return f"lameenc {importlib.metadata.version('lameenc')} {export.BITRATE_KBPS} kbit/s"


def _island_key(samples: np.ndarray, start: int, spans: Sequence[tuple[int, int]]) -> str:
    """A digest of everything that shapes an island's frames and loudness: its samples, the silence
    fed before it, the encoder, and where its speech is."""
    digest = hashlib.sha256(f"{FORMAT_VERSION} {_encoder_version()} {_lead_in(start)} {len(samples)}\n".encode())
    digest.update(f"{list(spans)}\n".encode())
    digest.update(np.ascontiguousarray(samples, dtype="<i2").tobytes())
    return digest.hexdigest()[:32]


class FrameCache:
    """Kept islands, in the clip cache's folder; an entry that is not whole is treated as missing."""

    def __init__(self, folder: Path):
        self.folder = folder / FRAMES

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.frames"

    def read(self, key: str, length: int) -> Island | None:
        try:
            entry = self.path(key).read_bytes()
        except OSError:
            return None
        if len(entry) < _ENTRY.size + 4 or zlib.crc32(entry[:-4]) != int.from_bytes(entry[-4:], "little"):
            return None
        magic, first, kept_length, peak, count, whole_steps, speech_steps = _ENTRY.unpack_from(entry)
        if magic != _MAGIC or kept_length != length:
            return None
        frames, position = [], _ENTRY.size
        for _ in range(count):
            side_info, size = _FRAME_ENTRY.unpack_from(entry, position)
            position += _FRAME_ENTRY.size
            frames.append(Frame(side_info, entry[position : position + size]))
            position += size
        steps = np.frombuffer(entry, dtype="<f8", count=whole_steps + speech_steps, offset=position)
        loudness = meter.StretchLoudness(steps[:whole_steps].copy(), steps[whole_steps:].copy())
        return Island(first, tuple(frames), peak, loudness)

    def clear(self) -> int:
        """Remove every kept island; returns the bytes freed. Builds encode them again as they need them."""
        return remove_files(list(self.folder.glob("??/*.frames")))

    def store(self, key: str, length: int, island: Island) -> None:
        steps = island.loudness.whole, island.loudness.speech
        parts = [_ENTRY.pack(_MAGIC, island.first, length, island.true_peak, len(island.frames), *map(len, steps))]
        for frame in island.frames:
            parts += [_FRAME_ENTRY.pack(frame.side_info, len(frame.main_data)), frame.main_data]
        parts += [np.asarray(each, dtype="<f8").tobytes() for each in steps]
        body = b"".join(parts)
        with atomic_path(self.path(key), keep_existing=True) as temporary:
            temporary.write_bytes(body + zlib.crc32(body).to_bytes(4, "little"))


def _lead_in(start: int) -> int:
    """Samples of silence LAME is fed before an island starting at `start`, so it sits in its frames as in the track.

    An island in the track's first frames gets the track's own start, so its frames fill the bit
    reservoir no more than the frames before it in the track can.
    """
    return min(start, LEAD_FRAMES * export.SAMPLES_PER_FRAME + start % export.SAMPLES_PER_FRAME)


def _island(frames: list[Frame], lead_in: int, loudness: meter.StretchLoudness) -> Island:
    """An island from all the frames LAME made for it after `lead_in` samples of silence: those from
    the first holding data to the last (LAME's frames of silence hold none), and their true peak."""
    holding = [index for index, frame in enumerate(frames) if frame.main_data]
    if not holding:  # too faint to leave anything in the MP3
        return Island(0, (), -math.inf, loudness)
    kept = frames[holding[0] : holding[-1] + 1]
    return Island(holding[0] - lead_in // export.SAMPLES_PER_FRAME, tuple(kept), _true_peak(kept), loudness)


def _true_peak(frames: list[Frame]) -> float:
    """dBTP of `frames` as a player decodes them, silence around them; in stretches, so memory stays flat."""
    peak = -math.inf
    for first in range(0, len(frames), AUDIT_FRAMES):
        warm_up = min(first, WARM_UP_FRAMES)
        stream = io.BytesIO()
        packer = _Packer(stream)
        packer.add_silence(LEAD_FRAMES)
        for frame in frames[first - warm_up : first + AUDIT_FRAMES]:
            packer.add(frame)
        packer.add_silence(LEAD_FRAMES)
        packer.flush()
        decoded = miniaudio.decode(
            stream.getvalue(), output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1,
            sample_rate=audio.SAMPLE_RATE,
        )  # fmt: skip
        samples = np.frombuffer(decoded.samples, dtype=np.int16)
        context = meter.INTERPOLATION_TAPS // 2
        skip = max(0, (LEAD_FRAMES + warm_up) * export.SAMPLES_PER_FRAME - context)
        peak = meter.true_peak(np.pad(samples[skip:] / audio.FULL_SCALE, context), peak)
    return peak


class _Encoding:
    """One island that starts at sample `start` of the track, metered and encoded as its samples
    come; `spans` are where its speech is, from its start."""

    def __init__(self, start: int, spans: Sequence[tuple[int, int]]):
        self.start = start
        self.meter = meter.StretchMeter(spans)
        self.encoder = export.new_encoder()
        self.unpacker = _Unpacker()
        self.frames = list(self.unpacker.feed(self.encoder.encode(bytes(_lead_in(start) * 2))))  # a few kB a second

    def feed(self, samples: np.ndarray) -> None:
        self.meter.feed(samples)
        self.frames += self.unpacker.feed(self.encoder.encode(export.encoder_input(samples)))

    def finish(self) -> Island:
        tail = self.encoder.encode(bytes(LEAD_FRAMES * export.SAMPLES_PER_FRAME * 2)) + self.encoder.flush()
        return _island(self.frames + list(self.unpacker.feed(tail)), _lead_in(self.start), self.meter.loudness())


def _encode(samples: np.ndarray, start: int, spans: Sequence[tuple[int, int]]) -> Island:
    """Meter and encode one island held whole in memory (see _Encoding)."""
    encoding = _Encoding(start, spans)
    encoding.feed(samples)
    return encoding.finish()


class _Track:
    """Islands and silence, packed in order into one stream.

    Islands not kept yet are metered and encoded on a thread per core (numpy's FFTs and lameenc
    let go of the GIL), a few ahead of the one being packed, so memory stays bounded.
    """

    def __init__(
        self, file: BinaryIO, cache: FrameCache, speech: Sequence[tuple[int, int]], encoders: ThreadPoolExecutor,
        threads: int,
    ):  # fmt: skip
        self.packer = _Packer(file)
        self.cache = cache
        self.speech = speech
        self._speech_ends = [end for _, end in speech]
        self.encoders = encoders
        self.most_ahead = 2 * threads
        self.ahead: collections.deque[tuple[int, str, int, Island | Future[Island]]] = collections.deque()
        self.true_peak = -math.inf
        self.loudness = meter.TrackLoudness()
        self.encoded = self.kept = 0

    def spans(self, start: int, end: float = math.inf) -> list[tuple[int, int]]:
        """The speech between samples `start` and `end` of the track, from `start`."""
        found = []
        for first, last in self.speech[bisect.bisect_right(self._speech_ends, start) :]:
            if first >= end:
                break
            found.append((max(first, start) - start, int(min(last, end)) - start))
        return found

    def place(self, start: int, island: Island) -> None:
        """Pack `island` (after every island before it: see drain) with silence up to it."""
        self.loudness.add(start, island.loudness)
        if not island.frames:
            return
        index = start // export.SAMPLES_PER_FRAME + island.first
        if index < self.packer.frames:
            raise ValueError(f"the island at sample {start} overlaps the one before it")
        self.packer.add_silence(index - self.packer.frames)
        for frame in island.frames:
            self.packer.add(frame)
        self.true_peak = max(self.true_peak, island.true_peak)

    def island(self, samples: np.ndarray, start: int) -> None:
        """An island held whole in memory: from the cache, or metered and encoded (on a thread) and kept."""
        spans = self.spans(start, start + len(samples))
        key = _island_key(samples, start, spans)
        kept = self.cache.read(key, len(samples))
        if kept is None:
            self.ahead.append((start, key, len(samples), self.encoders.submit(_encode, samples, start, spans)))
            self.encoded += 1
        else:
            self.ahead.append((start, key, len(samples), kept))
            self.kept += 1
        self.drain(most=self.most_ahead)

    def drain(self, most: int = 0) -> None:
        """Pack the islands waiting, in order, until at most `most` wait."""
        while len(self.ahead) > most:
            start, key, length, waiting = self.ahead.popleft()
            if isinstance(waiting, Future):
                waiting = waiting.result()
                self.cache.store(key, length, waiting)
            self.place(start, waiting)


class _Open:
    """The island being gathered, block by block; past MAX_KEPT_ISLAND it is metered and encoded as
    it streams, and not kept."""

    def __init__(self, start: int, samples: np.ndarray, track: _Track):
        self.start = start
        self.track = track
        self.parts = [samples]
        self.length = len(samples)
        self.streamed: _Encoding | None = None

    def append(self, block: np.ndarray) -> None:
        self.length += len(block)
        if self.streamed is not None:
            self.streamed.feed(block)
            return
        self.parts.append(block)
        if self.length > MAX_KEPT_ISLAND:
            self.streamed = _Encoding(self.start, self.track.spans(self.start))
            self.streamed.feed(np.concatenate(self.parts))
            self.parts = []

    def close(self, end: int) -> None:
        """The island ends at sample `end` (its sound's end): place it in the track."""
        if self.streamed is None:
            self.track.island(np.concatenate(self.parts)[: end - self.start], self.start)
            return
        self.track.drain()
        self.track.place(self.start, self.streamed.finish())
        self.track.encoded += 1


def encode_track(
    blocks: Iterable[np.ndarray], file: BinaryIO, cache: FrameCache, speech: Sequence[tuple[int, int]] = ()
) -> EncodedTrack:
    """Stream int16 blocks to the end of `file` as a gapless CBR MP3, reusing the islands kept in `cache`,
    and meter them: the whole, and the samples inside the `speech` spans ([start, end), in order).

    The MP3 decodes at the level of the blocks; samples within 0.45 dB of full scale clip.
    """
    threads = os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=threads) as encoders:
        return _encode_track(blocks, file, _Track(file, cache, speech, encoders, threads))


def _encode_track(blocks: Iterable[np.ndarray], file: BinaryIO, track: _Track) -> EncodedTrack:
    info_position = file.seek(0, 2)
    file.write(bytes(export.FRAME_BYTES))  # room for the Info frame, written once the counts are known
    position = sound_end = 0
    island: _Open | None = None
    for block in blocks:
        loud = np.flatnonzero(block) if block.any() else np.zeros(0, dtype=np.intp)
        if not len(loud):
            if island is not None and position + len(block) - sound_end >= MIN_GAP:
                island.close(sound_end)
                island = None
            elif island is not None:
                island.append(block)
        breaks = np.flatnonzero(np.diff(loud) >= MIN_GAP) + 1  # where a sound starts after a long silence
        firsts = loud[np.r_[0, breaks]] if len(loud) else loud
        lasts = loud[np.r_[breaks - 1, -1]] if len(loud) else loud
        for index, (first, last) in enumerate(zip(firsts, lasts, strict=True)):
            upto = firsts[index + 1] if index + 1 < len(firsts) else len(block)
            if island is not None and position + first - sound_end >= MIN_GAP:
                island.close(sound_end)
                island = None
            if island is None:
                island = _Open(position + int(first), block[first:upto], track)
            else:
                island.append(block[:upto])
            sound_end = position + int(last) + 1
        position += len(block)
    if island is not None:
        island.close(sound_end)
    track.drain()
    delay = export.ENCODER_DELAY + export.DECODER_DELAY  # the decoder's last output sample is the track's last
    frames = max(-(-(position + delay) // export.SAMPLES_PER_FRAME), track.packer.frames)
    track.packer.add_silence(frames - track.packer.frames)
    track.packer.flush()
    audio_bytes = file.tell() - info_position - export.FRAME_BYTES
    padding = frames * export.SAMPLES_PER_FRAME - position - export.ENCODER_DELAY
    file.seek(info_position)
    file.write(export.info_frame(track.packer.header, frames, audio_bytes, padding))
    file.seek(0, 2)
    loudness = track.loudness
    return EncodedTrack(position, track.true_peak, loudness.whole(), loudness.speech(), track.encoded, track.kept)
