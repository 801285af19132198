"""An edit re-encodes only what changed: islands of sound kept as MP3 frames and spliced in silence.

The tracks here are made of test signals (tones and noise bursts between stretches of digital
silence), so every case is exact and quick; the whole loop through the CLI and a real voice is
at the end. Each spliced MP3 is checked as players meet it: decoded by miniaudio and by ffmpeg,
its gapless header read byte by byte, its true peak measured independently.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import struct
import subprocess

import miniaudio
import mutagen.mp3
import numpy as np
import pytest
from conftest import FIXTURES, ROUTINES, SAMPLE_RATE, read_plan, true_peak

from voiceguide import audio, export, islands, timeline
from voiceguide.build import BuildOptions, build, sound_length
from voiceguide.routine import load
from voiceguide.voices.choice import VoiceOverride
from voiceguide.voices.clips import estimate_lengths

FRAME = audio.SAMPLES_PER_FRAME
ESPEAK = ("--engine", "pyttsx3")


def test_chapters_last_whole_mp3_frames_and_a_fitted_track_is_still_exact():
    routine = load(ROUTINES / "back-pain-relief.yaml")
    speech = estimate_lengths(dict.fromkeys(timeline.spoken_lines(routine)), routine.voice.speed)
    for length in (None, audio.samples(20 * 60), audio.samples(33 * 60 + 0.123)):
        plan = timeline.plan(routine, speech, sound_length, length)
        assert [chapter.start % FRAME for chapter in plan.chapters] == [0] * len(plan.chapters)
        if length is not None:
            assert plan.length == length


def signal_track(starts: list[int], lengths: list[int], total: int, seed: int = 1) -> np.ndarray:
    """Tones with a little noise, each faded in and out, at `starts`, in digital silence."""
    track = np.zeros(total, dtype=np.int16)
    for index, (start, length) in enumerate(zip(starts, lengths, strict=True)):
        rng = np.random.default_rng([seed, index])  # each its own, so changing one leaves the others as they were
        t = np.arange(length) / SAMPLE_RATE
        tone = np.sin(2 * np.pi * rng.uniform(150, 900) * t) * rng.uniform(3000, 15000) + rng.normal(0, 400, length)
        track[start : start + length] = np.round(tone * np.hanning(length)).astype(np.int16)
    return track


def blocks(track: np.ndarray):
    return (track[start : start + SAMPLE_RATE] for start in range(0, len(track), SAMPLE_RATE))


def encode(track: np.ndarray, cache: islands.FrameCache) -> tuple[bytes, islands.EncodedTrack]:
    file = io.BytesIO()
    result = islands.encode_track(blocks(track), file, cache)
    return file.getvalue(), result


def decoded(mp3: bytes) -> np.ndarray:
    samples = miniaudio.decode(mp3, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=SAMPLE_RATE)
    return np.frombuffer(samples.samples, dtype=np.int16)


STARTS = [SAMPLE_RATE, 100_000, 180_000, 221_000, 305_000, 420_000]
LENGTHS = [30_000, 50_000, 20_000, 70_000, 4_000, 60_000]
TOTAL = 560_000


@pytest.fixture
def frames(tmp_path) -> islands.FrameCache:
    return islands.FrameCache(tmp_path / "cache")


def test_a_spliced_track_decodes_to_exactly_its_samples_with_silence_left_silent(frames, tmp_path):
    track = signal_track(STARTS, LENGTHS, TOTAL)
    mp3, result = encode(track, frames)
    assert (result.samples, result.islands_encoded, result.islands_kept) == (TOTAL, len(STARTS), 0)
    samples = decoded(mp3)
    assert len(samples) == TOTAL
    sounding = np.zeros(TOTAL, dtype=bool)
    for start, length in zip(STARTS, LENGTHS, strict=True):
        sounding[max(0, start - 2 * FRAME) : start + length + 2 * FRAME] = True
        island = slice(start, start + length)
        noise = samples[island].astype(float) - track[island]
        assert 10 * np.log10(np.sum(track[island].astype(float) ** 2) / np.sum(noise**2)) > 15  # MP3 coding noise
    assert not samples[~sounding].any()  # digital silence between the islands
    assert result.true_peak == pytest.approx(true_peak(samples / 32768), abs=0.1)
    if shutil.which("ffmpeg"):
        (tmp_path / "t.mp3").write_bytes(mp3)
        ffmpeg = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", tmp_path / "t.mp3", "-f", "s16le", "-ac", "1", "-"], capture_output=True
        )
        assert ffmpeg.stderr == b""
        assert np.abs(np.frombuffer(ffmpeg.stdout, dtype=np.int16).astype(int) - samples).max() <= 1


def test_the_gapless_header_counts_the_frames_and_gives_the_delay_and_padding(frames):
    mp3, result = encode(signal_track(STARTS, LENGTHS, TOTAL), frames)
    info = mp3[: export.FRAME_BYTES]
    tag = 4 + export.SIDE_INFO_BYTES
    assert info[tag : tag + 4] == b"Info"
    flags, frame_count, byte_count = struct.unpack(">III", info[tag + 4 : tag + 16])
    audio_frames = 0
    position = export.FRAME_BYTES
    while position < len(mp3):
        assert mp3[position] == 0xFF
        position += export.FRAME_BYTES + (mp3[position + 2] >> 1 & 1)
        audio_frames += 1
    assert (flags, frame_count, byte_count) == (3, audio_frames, len(mp3))
    delay_padding = int.from_bytes(info[tag + 16 + 21 : tag + 16 + 24], "big")
    assert (delay_padding >> 12, delay_padding & 0xFFF) == (576, audio_frames * FRAME - TOTAL - 576)
    assert mutagen.mp3.MP3(io.BytesIO(mp3)).info.bitrate == 96_000  # constant, as players seek by it


def test_a_rebuild_keeps_every_island_and_is_the_same_file(frames, tmp_path):
    track = signal_track(STARTS, LENGTHS, TOTAL)
    first, _ = encode(track, frames)
    again, result = encode(track, frames)
    assert (result.islands_encoded, result.islands_kept) == (0, len(STARTS))
    assert again == first


@pytest.mark.parametrize("shift", [3 * FRAME, -FRAME])
def test_islands_moved_by_whole_frames_are_kept(frames, tmp_path, shift):
    encode(signal_track(STARTS, LENGTHS, TOTAL), frames)
    moved = STARTS[:3] + [start + shift for start in STARTS[3:]]
    spliced, result = encode(signal_track(moved, LENGTHS, TOTAL + shift), frames)
    assert (result.islands_encoded, result.islands_kept) == (0, len(STARTS))
    full, _ = encode(signal_track(moved, LENGTHS, TOTAL + shift), islands.FrameCache(tmp_path / "empty"))
    assert spliced == full


def test_changed_or_moved_islands_are_encoded_again_and_the_result_is_a_full_build(frames, tmp_path):
    encode(signal_track(STARTS, LENGTHS, TOTAL), frames)
    moved = STARTS[:4] + [start + 1000 for start in STARTS[4:]]  # within a frame: these must be encoded again
    lengths = LENGTHS[:1] + [LENGTHS[1] - 2000] + LENGTHS[2:]  # and this one changed
    edited = signal_track(moved, lengths, TOTAL + 1000)
    spliced, result = encode(edited, frames)
    assert (result.islands_encoded, result.islands_kept) == (3, 3)
    full, _ = encode(edited, islands.FrameCache(tmp_path / "empty"))
    assert spliced == full
    assert len(decoded(spliced)) == TOTAL + 1000


def test_sound_from_the_first_sample_and_islands_too_long_to_keep_stream(frames, monkeypatch):
    monkeypatch.setattr(islands, "MAX_KEPT_ISLAND", 3 * SAMPLE_RATE)
    starts, lengths = [0, 4 * SAMPLE_RATE], [2 * SAMPLE_RATE, 5 * SAMPLE_RATE]
    track = signal_track(starts, lengths, 10 * SAMPLE_RATE)
    track[0] = 500  # sound from the very first sample
    mp3, result = encode(track, frames)
    assert (result.islands_encoded, result.islands_kept) == (2, 0)
    samples = decoded(mp3)
    assert len(samples) == len(track)
    noise = samples.astype(float) - track
    assert 10 * np.log10(np.sum(track.astype(float) ** 2) / np.sum(noise**2)) > 15
    assert result.true_peak == pytest.approx(true_peak(samples / 32768), abs=0.1)
    _, again = encode(track, frames)
    assert (again.islands_encoded, again.islands_kept) == (1, 1)  # the long one is not kept


def test_a_damaged_kept_island_is_encoded_again(frames):
    track = signal_track(STARTS, LENGTHS, TOTAL)
    first, _ = encode(track, frames)
    entry = sorted(frames.folder.rglob("*.frames"))[0]
    data = bytearray(entry.read_bytes())
    data[len(data) // 2] ^= 0xFF
    entry.write_bytes(bytes(data))
    again, result = encode(track, frames)
    assert (result.islands_encoded, result.islands_kept) == (1, len(STARTS) - 1)
    assert again == first


# ---------------------------------------------------------------- through the build, with a real voice


def chapters(mp3) -> list[tuple[str, int, int]]:
    tags = mutagen.mp3.MP3(mp3).tags
    return [(frame.sub_frames["TIT2"].text[0], frame.start_time, frame.end_time) for frame in tags.getall("CHAP")]


def test_a_one_line_edit_encodes_its_chapter_and_the_rebuild_is_a_full_build(tmp_path, monkeypatch):
    """Voiced by eSpeak (the same text, the same clip, every time); a step and the closing follow the edit."""
    routine = tmp_path / "two-steps.yaml"
    shutil.copy(FIXTURES / routine.name, routine)
    cache = tmp_path / "cache"
    options = BuildOptions(output_dir=tmp_path / "out", cache_dir=cache, voice=VoiceOverride(engine="pyttsx3"))
    first = build(routine, options)
    encoded: list[int] = []  # where each island encoded starts

    def encode(samples, start, spans):
        encoded.append(start)
        return real_encode(samples, start, spans)

    real_encode = islands._encode
    monkeypatch.setattr(islands, "_encode", encode)
    routine.write_text(routine.read_text().replace("Rub your hands together", "Rub your hands together slowly"))
    edited = build(routine, options)
    (chapter,) = [chapter for chapter in edited.timeline.chapters if chapter.title == "Warm the hands"]
    assert encoded and all(chapter.start <= start < chapter.end for start in encoded)  # that chapter's, no other
    assert edited.encoded.islands_kept == first.encoded.islands_encoded - len(encoded)
    spliced = (tmp_path / "out" / "two-steps.mp3").read_bytes()

    shutil.rmtree(cache / islands.FRAMES)  # the same clips, and nothing encoded yet
    full = build(routine, dataclasses.replace(options, output_dir=tmp_path / "full"))
    assert full.encoded.islands_kept == 0
    mp3 = tmp_path / "full" / "two-steps.mp3"
    assert mp3.read_bytes() == spliced
    assert (edited.encoded.speech_loudness, edited.encoded.loudness) == (full.encoded.speech_loudness, full.encoded.loudness)
    samples = decoded(spliced)
    assert len(samples) == full.timeline.length  # to the sample
    assert read_plan(mp3)["length"] == pytest.approx(len(samples) / SAMPLE_RATE, abs=0.001)
    assert chapters(mp3) == [
        (chapter.title, round(chapter.start * 1000 / SAMPLE_RATE), round(chapter.end * 1000 / SAMPLE_RATE))
        for chapter in edited.timeline.chapters
    ]
    assert edited.encoded.true_peak == pytest.approx(true_peak(samples / 32768), abs=0.1)
