"""Export: PCM blocks become a constant-bit-rate MP3 with ID3 tags and one chapter per step.

The MP3 starts with a LAME "Info" frame that records the encoder delay and end padding, so
decoders that honour it (dr_mp3/miniaudio, ffmpeg, iTunes, most players) play exactly the
planned samples, and chapter times match the timeline to the sample.

MP3 coding can lift a true peak by a dB or two, so PeakAudit checks the finished MP3 where the
encoder's input came near the limit, decoding only those stretches.
"""

from __future__ import annotations

import io
import math
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import lameenc
import miniaudio
import numpy as np
from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, TALB, TCON, TIT2, TLAN, TPE1, TXXX, CTOCFlags, PictureType

from voiceguide import audio, meter
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
AUDIT_RANGE = 12.0  # dB: coding noise cannot lift samples that stay this far under the limit up to it
AUDIT_MARGIN = 2 * SAMPLES_PER_FRAME  # checked around a loud block: coding spreads noise over a frame or so
WARM_UP_FRAMES = 4  # decoded before a stretch and dropped: the decoder's bit reservoir and filters reach back
MAX_AUDIT_FRAMES = 400  # about 10 s: a longer stretch is decoded in parts, so memory stays flat
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
    """Counts MPEG frames in a stream of bytes as it goes past, by walking frame headers.

    It also notes where the frames numbered in `marks` start, in bytes from the first byte fed.
    """

    def __init__(self, marks: Iterable[int] = ()) -> None:
        self.frames = 0
        self.starts: dict[int, int] = {}
        self._marks = sorted(set(marks), reverse=True)  # the next one last
        self._fed = 0  # bytes fed before the current chunk
        self._to_skip = 0  # bytes of the current frame not yet seen
        self._partial = b""  # an incomplete header at the end of the last chunk

    def marks_ahead(self) -> bool:
        return bool(self._marks)

    def feed(self, data: bytes) -> None:
        base = self._fed - len(self._partial)
        self._fed += len(data)
        data = self._partial + data
        self._partial = b""
        position = self._to_skip
        while position + 4 <= len(data):
            if data[position] != 0xFF:
                raise ValueError(f"lost MPEG frame sync at frame {self.frames}")
            if self._marks and self._marks[-1] == self.frames:
                self.starts[self._marks.pop()] = base + position
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


def encode_mp3(blocks: Iterable[np.ndarray], file: BinaryIO) -> int:
    """Stream int16 blocks to the end of `file` as a gapless CBR MP3; returns the number of samples.

    The MP3 decodes at the level of the blocks; samples within 0.45 dB of full scale clip.
    """
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(BITRATE_KBPS)
    encoder.set_in_sample_rate(audio.SAMPLE_RATE)
    encoder.set_channels(1)
    encoder.set_quality(2)
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
        write(encoder.encode(audio.scaled(block, 1 / ENCODER_SCALE).tobytes()))
    write(encoder.flush())
    audio_bytes = file.tell() - info_position - FRAME_BYTES
    padding = counter.frames * SAMPLES_PER_FRAME - total_samples - ENCODER_DELAY
    file.seek(info_position)
    file.write(info_frame(first_header, counter.frames, audio_bytes, padding))
    file.seek(0, 2)
    return total_samples


class PeakAudit:
    """The true peak of an MP3 as a player decodes it, checked where the encoder's input came near `limit` dBTP.

    Pass the blocks going into encode_mp3 through watch(); true_peak() then decodes only the
    stretches of the MP3 around the loud blocks, each with a few frames before it that the
    decoder needs. Everywhere else the input stayed AUDIT_RANGE dB or more under the limit.
    """

    def __init__(self, limit: float):
        self._loud = meter.gain(limit - AUDIT_RANGE) * audio.FULL_SCALE
        self._spans: list[tuple[int, int]] = []  # [first, end) audio frames (the Info frame not counted)

    def watch(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        start = 0
        for block in blocks:
            if audio.peak(block) > self._loud:
                self._note(start, start + len(block))
            start += len(block)
            yield block

    def _note(self, start: int, end: int) -> None:
        delay = ENCODER_DELAY + DECODER_DELAY  # sample t of the track is sample t + delay of the frames' output
        first = max(0, (start - AUDIT_MARGIN + delay) // SAMPLES_PER_FRAME)
        end = (end + AUDIT_MARGIN + delay) // SAMPLES_PER_FRAME + 1
        if self._spans:
            last_first, last_end = self._spans[-1]
            if first <= last_end + WARM_UP_FRAMES and end - last_first <= MAX_AUDIT_FRAMES:  # one stretch with the last
                self._spans[-1] = (last_first, end)
                return
        self._spans.append((first, end))

    def true_peak(self, path: Path) -> float:
        """dBTP of the MP3 at `path` in the stretches noted, as a player decodes it; -inf if none."""
        counter = _FrameCounter(
            [max(0, first - WARM_UP_FRAMES) for first, _ in self._spans] + [end for _, end in self._spans]
        )
        peak = -math.inf
        with path.open("rb") as file:
            audio_start = _audio_start(file)
            file.seek(audio_start)
            while counter.marks_ahead() and (data := file.read(1 << 20)):
                counter.feed(data)
            for first, end in self._spans:
                begin = counter.starts[max(0, first - WARM_UP_FRAMES)]
                file.seek(audio_start + begin)
                data = file.read(counter.starts[end] - begin if end in counter.starts else -1)
                decoded = miniaudio.decode(
                    data, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=audio.SAMPLE_RATE
                )
                samples = np.frombuffer(decoded.samples, dtype=np.int16)
                kept = (min(end, counter.frames) - first) * SAMPLES_PER_FRAME  # the stretch; the warm-up comes before
                context = meter.INTERPOLATION_TAPS // 2  # samples before the stretch that its first points depend on
                peak = meter.true_peak(samples[max(0, len(samples) - kept - context) :] / audio.FULL_SCALE, peak)
        return peak


def _audio_start(file: BinaryIO) -> int:
    """Where the first audio frame starts: after the ID3v2 tag and the Info frame."""
    header = file.read(10)
    if header[:3] != b"ID3":
        return FRAME_BYTES
    size = 0
    for byte in header[6:10]:  # syncsafe: seven bits a byte
        size = size << 7 | byte
    footer = 10 if header[5] & 0x10 else 0
    return 10 + size + footer + FRAME_BYTES


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
