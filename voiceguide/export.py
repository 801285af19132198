"""Export: PCM blocks become a constant-bit-rate MP3 with ID3 tags and one chapter per step.

The MP3 starts with a LAME "Info" frame that records the encoder delay and end padding, so
decoders that honour it (dr_mp3/miniaudio, ffmpeg, iTunes, most players) play exactly the
planned samples, and chapter times match the timeline to the sample. The build encodes
through islands.py, which keeps what each stretch of sound encoded to; encode_mp3 is the
plain encoder, for short things (a preview) and the benchmark's baseline.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

import lameenc
import numpy as np
from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, TALB, TCON, TIT2, TLAN, TPE1, TXXX, CTOCFlags, PictureType

from voiceguide import audio
from voiceguide.cover import Artwork
from voiceguide.timeline import Chapter

BITRATE_KBPS = 96
ENCODER_DELAY = 576  # samples LAME adds at the start (decoders add their own 529 and trim both)
SAMPLES_PER_FRAME = audio.SAMPLES_PER_FRAME
FRAME_BYTES = 144 * BITRATE_KBPS * 1000 // audio.SAMPLE_RATE  # 313; frames with the padding bit have 314
SIDE_INFO_BYTES = 17  # MPEG-1 Layer III, mono
INFO_FLAGS = 0x3  # the Info tag carries the frame count and the byte count
DEFAULT_ARTIST = "voiceguide"
# LAME turns its input down to 0.95 (its default scale, which lameenc cannot set); the encoder's
# input is raised by the inverse, so the MP3 plays at the level it was given.
ENCODER_SCALE = 0.95
DECODER_DELAY = 529  # samples every decoder adds to the encoder's delay; players trim both
MAX_TABLE_ENTRIES = 255  # a CTOC frame counts its entries in one byte


@dataclass(frozen=True)
class Tags:
    title: str
    artist: str | None = None  # None: DEFAULT_ARTIST
    album: str | None = None
    comment: str | None = None
    language: str | None = None
    voice: str | None = None  # the engine and voice that spoke, as a TXXX:voice frame
    artwork: Artwork | None = None  # the front cover


class _FrameCounter:
    """Counts MPEG frames in a stream of bytes as it goes past, by walking frame headers."""

    def __init__(self) -> None:
        self.frames = 0
        self._to_skip = 0  # bytes of the current frame not yet seen
        self._partial = b""  # an incomplete header at the end of the last chunk

    def feed(self, data: bytes) -> None:
        data = self._partial + data
        self._partial = b""
        position = self._to_skip
        while position + 4 <= len(data):
            if data[position] != 0xFF:
                raise ValueError(f"lost MPEG frame sync at frame {self.frames}")
            padding = (data[position + 2] >> 1) & 1
            position += FRAME_BYTES + padding
            self.frames += 1
        if position < len(data):
            self._partial = data[position:]
            self._to_skip = 0
        else:
            self._to_skip = position - len(data)


def _crc16(data: bytes) -> int:
    """CRC-16 (polynomial 0x8005, reflected), as the LAME tag requires."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def info_frame(header: bytes, frames: int, audio_bytes: int, padding: int) -> bytes:
    """A silent first frame holding the Xing 'Info' tag and the LAME extension with delay/padding."""
    frame = bytearray(FRAME_BYTES)
    frame[0:4] = header[:2] + bytes([header[2] & ~0x02]) + header[3:4]  # same format, no padding bit
    offset = 4 + SIDE_INFO_BYTES
    frame[offset : offset + 16] = b"Info" + struct.pack(">III", INFO_FLAGS, frames, audio_bytes + FRAME_BYTES)
    lame = offset + 16
    frame[lame : lame + 9] = b"LAME3.100"
    frame[lame + 9] = 0x01  # tag revision 0, CBR
    frame[lame + 21 : lame + 24] = bytes(
        [ENCODER_DELAY >> 4, ((ENCODER_DELAY & 0xF) << 4) | (padding >> 8), padding & 0xFF]
    )
    frame[lame + 34 : lame + 36] = struct.pack(">H", _crc16(bytes(frame[: lame + 34])))
    return bytes(frame)


def new_encoder() -> lameenc.Encoder:
    """LAME as every MP3 here is made: constant bit rate, mono, at the internal rate."""
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(BITRATE_KBPS)
    encoder.set_in_sample_rate(audio.SAMPLE_RATE)
    encoder.set_channels(1)
    encoder.set_quality(2)
    return encoder


def encoder_input(block: np.ndarray) -> bytes:
    """int16 samples as LAME is fed them: raised by the inverse of its scale (see ENCODER_SCALE)."""
    return audio.scaled(block, 1 / ENCODER_SCALE).tobytes()


def encode_mp3(blocks: Iterable[np.ndarray], file: BinaryIO) -> int:
    """Stream int16 blocks to the end of `file` as a gapless CBR MP3; returns the number of samples.

    The MP3 decodes at the level of the blocks; samples within 0.45 dB of full scale clip.
    """
    encoder = new_encoder()
    counter = _FrameCounter()
    info_position = file.seek(0, 2)
    file.write(bytes(FRAME_BYTES))  # room for the Info frame, written once the counts are known
    total_samples = 0
    first_header = b""

    def write(data: bytes) -> None:
        nonlocal first_header
        first_header = first_header or data[:4]
        counter.feed(data)
        file.write(data)

    for block in blocks:
        total_samples += len(block)
        write(encoder.encode(encoder_input(block)))
    write(encoder.flush())
    audio_bytes = file.tell() - info_position - FRAME_BYTES
    padding = counter.frames * SAMPLES_PER_FRAME - total_samples - ENCODER_DELAY
    file.seek(info_position)
    file.write(info_frame(first_header, counter.frames, audio_bytes, padding))
    file.seek(0, 2)
    return total_samples


def id3_tag(tags: Tags, chapters: Sequence[Chapter]) -> bytes:
    """An ID3v2.3 tag: title/artist/album/comment/voice tags, cover art, and one CHAP frame per chapter.

    The CHAP frames are stored in time order (some readers, ffmpeg among them, take chapters in
    the order stored), under a table of contents: a CTOC lists at most 255 entries, so longer
    lists are split into tables of tables (ID3 chapter frame addendum, section 4).
    """
    id3 = ID3()
    id3.add(TIT2(encoding=3, text=[tags.title]))
    id3.add(TPE1(encoding=3, text=[tags.artist or DEFAULT_ARTIST]))
    id3.add(TALB(encoding=3, text=[tags.album or tags.title]))
    id3.add(TCON(encoding=3, text=["Speech"]))
    if tags.comment:
        id3.add(COMM(encoding=3, lang="eng", desc="", text=[tags.comment]))
    if tags.language:
        id3.add(TLAN(encoding=3, text=[tags.language]))
    if tags.voice:
        id3.add(TXXX(encoding=3, desc="voice", text=[tags.voice]))
    if tags.artwork:
        artwork = tags.artwork
        id3.add(APIC(encoding=3, mime=artwork.mime, type=PictureType.COVER_FRONT, desc="Cover", data=artwork.data))
    chapter_ids = [f"chp{index}" for index in range(len(chapters))]
    tables = _tables_of_contents(chapter_ids)
    for element_id, entries, flags in tables:
        id3.add(CTOC(element_id=element_id, flags=flags, child_element_ids=entries, sub_frames=[_title("Steps")]))
    for element_id, chapter in zip(chapter_ids, chapters, strict=True):
        start, end = _milliseconds(chapter.start), _milliseconds(chapter.end)
        id3.add(CHAP(element_id=element_id, start_time=start, end_time=end, sub_frames=[_title(chapter.title)]))
    with io.BytesIO() as buffer:
        id3.save(buffer, v2_version=3)
        return _in_order(buffer.getvalue(), [element_id for element_id, _, _ in tables] + chapter_ids)


def _title(text: str) -> TIT2:
    return TIT2(encoding=3, text=[text])


def _tables_of_contents(entries: list[str]) -> list[tuple[str, list[str], int]]:
    """Tables of contents over `entries`, as (element ID, entries, flags): the top-level one first,
    then the tables under it, level by level."""
    tiers: list[list[tuple[str, list[str], int]]] = []
    while len(entries) > MAX_TABLE_ENTRIES:
        groups = [entries[start : start + MAX_TABLE_ENTRIES] for start in range(0, len(entries), MAX_TABLE_ENTRIES)]
        tiers.append([(f"toc{len(tiers)}.{index}", group, CTOCFlags.ORDERED) for index, group in enumerate(groups)])
        entries = [element_id for element_id, _, _ in tiers[-1]]
    top = ("toc", entries, CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED)
    return [top] + [table for tier in reversed(tiers) for table in tier]


def _in_order(tag: bytes, element_ids: list[str]) -> bytes:
    """An ID3v2.3 `tag` with its CTOC and CHAP frames in the order of `element_ids`, after the other frames.

    mutagen writes frames sorted by size, so chapters come out of order; the frames are moved
    as they are, so the tag keeps its size.
    """
    assert tag[:4] == b"ID3\x03" and tag[5] == 0, "an ID3v2.3 tag without unsynchronisation or extended header"
    frames, position = [], 10
    while position + 10 <= len(tag) and tag[position] != 0:  # padding follows the last frame
        end = position + 10 + int.from_bytes(tag[position + 4 : position + 8], "big")
        frames.append(tag[position:end])
        position = end
    rank = {element_id.encode(): index for index, element_id in enumerate(element_ids)}
    chapters = [frame for frame in frames if frame[:4] in (b"CHAP", b"CTOC")]
    chapters.sort(key=lambda frame: rank[frame[10:].split(b"\0", 1)[0]])
    others = [frame for frame in frames if frame[:4] not in (b"CHAP", b"CTOC")]
    return tag[:10] + b"".join(others + chapters) + tag[position:]


def _milliseconds(sample: int) -> int:
    return round(sample * 1000 / audio.SAMPLE_RATE)
