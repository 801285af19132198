"""What a build writes, read back with real readers: MP3 frames, tags, loudness, and the sidecars."""

from __future__ import annotations

import json
import logging
import re
import shutil
import struct
import subprocess
import sys

import mutagen.id3
import mutagen.mp3
import numpy as np
import pyloudnorm
import pytest
from conftest import SAMPLE_RATE, decode, read_plan, span, true_peak
from mutagen.id3 import PictureType

from voiceguide import audio, cover, export, levels, meter
from voiceguide import build as build_module
from voiceguide.built import read_track
from voiceguide.timeline import Chapter

BITRATES_KBPS = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320]  # MPEG-1 Layer III


def lufs(samples: np.ndarray) -> float:
    return pyloudnorm.Meter(SAMPLE_RATE).integrated_loudness(samples)


def lufs_between_pauses(parts: list[np.ndarray]) -> float:
    """Loudness of sounds as they are levelled: each between pauses of one gating block."""
    pause = np.zeros(int(0.4 * SAMPLE_RATE))
    return lufs(np.concatenate([pause] + [np.concatenate([part, pause]) for part in parts]))


def walk_frames(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, bitrate in kbit/s, length) of every MPEG frame after the ID3v2 tag; fails on lost sync."""
    assert data[:3] == b"ID3"
    size = data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9]  # syncsafe
    position = 10 + size
    frames = []
    while position < len(data):
        header = struct.unpack(">I", data[position : position + 4])[0]
        assert header >> 21 == 0x7FF, f"no frame sync at byte {position}"
        assert (header >> 19) & 3 == 3 and (header >> 17) & 3 == 1, "not MPEG-1 Layer III"
        assert (header >> 10) & 3 == 0, "not 44.1 kHz"
        assert (header >> 6) & 3 == 3, "not mono"
        bitrate = BITRATES_KBPS[(header >> 12) & 0xF]
        length = 144 * bitrate * 1000 // SAMPLE_RATE + ((header >> 9) & 1)
        frames.append((position, bitrate, length))
        position += length
    assert position == len(data), "the last frame is cut short"
    return frames


def test_every_mp3_frame_is_whole_constant_bitrate_and_counted_by_the_info_frame(two_steps_mp3):
    data = two_steps_mp3.read_bytes()
    frames = walk_frames(data)
    assert {bitrate for _, bitrate, _ in frames} == {96}
    info_at = frames[0][0] + 4 + 17  # after the header and the mono side information
    assert data[info_at : info_at + 4] == b"Info"
    flags, frame_count, byte_count = struct.unpack(">III", data[info_at + 4 : info_at + 16])
    assert flags & 3 == 3
    assert frame_count == len(frames) - 1  # the audio frames, after the Info frame
    assert byte_count == len(data) - frames[0][0]
    lame = info_at + 16
    delay = data[lame + 21] << 4 | data[lame + 22] >> 4
    padding = (data[lame + 22] & 0xF) << 8 | data[lame + 23]
    decoded = len(decode(two_steps_mp3))
    assert decoded == frame_count * 1152 - delay - padding
    assert decoded == pytest.approx(read_plan(two_steps_mp3)["length"] * SAMPLE_RATE, abs=SAMPLE_RATE / 2000)


def test_duration_tags_chapters_and_cover_read_back(two_steps_mp3):
    plan = read_plan(two_steps_mp3)
    mp3 = mutagen.mp3.MP3(two_steps_mp3)
    assert mp3.info.length == pytest.approx(plan["length"], abs=0.002)
    tags = mp3.tags
    assert str(tags["TPE1"]) == "voiceguide"
    assert str(tags.getall("COMM")[0]) == "A tiny routine for tests."
    chapters = tags.getall("CHAP")  # in the order they are stored
    assert [(str(c.sub_frames["TIT2"]), c.start_time / 1000, c.end_time / 1000) for c in chapters] == [
        (c["title"], pytest.approx(c["start"], abs=0.001), pytest.approx(c["end"], abs=0.001)) for c in plan["chapters"]
    ]
    (picture,) = tags.getall("APIC")
    assert picture.type == PictureType.COVER_FRONT and picture.mime == "image/png"
    assert picture.data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", picture.data[16:24]) == (cover.SIZE, cover.SIZE)


def test_voice_is_at_minus_16_lufs_with_true_peak_under_minus_1(two_steps_mp3):
    samples = decode(two_steps_mp3)
    speech = [span(samples, e["start"], e["end"]) for e in read_plan(two_steps_mp3)["events"] if e["kind"] == "speech"]
    assert lufs(np.concatenate(speech)) == pytest.approx(-16.0, abs=0.5)
    assert true_peak(samples) <= -1.0
    assert meter.integrated_loudness(samples) == pytest.approx(lufs(samples), abs=0.2)


def test_voice_and_sounds_sit_at_their_set_levels(two_steps_mp3):
    samples = decode(two_steps_mp3)
    events = read_plan(two_steps_mp3)["events"]
    speech = [span(samples, e["start"], e["end"]) for e in events if e["kind"] == "speech"]
    voice = lufs(np.concatenate(speech))  # over the speech alone, as the voice is levelled
    assert voice == pytest.approx(-16.0, abs=0.5)
    for sound in (e for e in events if e["kind"] == "sound"):
        ring = span(samples, sound["start"], sound["end"])
        assert lufs_between_pauses([ring]) - voice == pytest.approx(levels.SOUND_OFFSET, abs=1.0), sound
        assert true_peak(ring) < true_peak(np.concatenate(speech)) - 3, f"the {sound['sound']} peaks near the voice"


def id3_frames(data: bytes) -> list[tuple[str, bytes]]:
    """(frame ID, body) of each frame of a file's ID3v2.3 tag, in the order they are stored."""
    assert data[:4] == b"ID3\x03" and data[5] == 0  # version 2.3, no unsynchronisation, no extended header
    end = 10 + (data[6] << 21 | data[7] << 14 | data[8] << 7 | data[9])
    frames, position = [], 10
    while position < end and data[position] != 0:  # padding follows the frames
        size = struct.unpack(">I", data[position + 4 : position + 8])[0]
        frames.append((data[position : position + 4].decode(), data[position + 10 : position + 10 + size]))
        position += 10 + size
    return frames


def chapter_frames(data: bytes) -> list[tuple[str, int]]:
    """(element ID, start in ms) of each CHAP frame, in the order they are stored."""
    found = []
    for frame_id, body in id3_frames(data):
        if frame_id == "CHAP":
            element_id, rest = body.split(b"\0", 1)
            found.append((element_id.decode(), struct.unpack(">I", rest[:4])[0]))
    return found


def test_chapter_frames_are_stored_in_time_order(two_steps_mp3):
    plan = read_plan(two_steps_mp3)
    assert [start for _, start in chapter_frames(two_steps_mp3.read_bytes())] == [
        round(chapter["start"] * 1000) for chapter in plan["chapters"]
    ]


def ffprobe_chapters(path) -> list[tuple[str, float, float]]:
    """(title, start, end) of each chapter, as ffprobe lists them."""
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    return [(c["tags"]["title"], float(c["start_time"]), float(c["end_time"])) for c in probe["chapters"]]


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
def test_ffmpeg_carries_the_chapters_over_in_order(two_steps_mp3, tmp_path):
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(two_steps_mp3), "-vn", "-c:a", "aac", str(tmp_path / "out.m4a")], check=True
    )
    # ffmpeg counts an MP3's chapter times from its priming (the 576 samples LAME adds and the
    # 529 every decoder adds, which players trim), so in the M4A they come 25 ms earlier.
    priming = 1105 / SAMPLE_RATE
    assert ffprobe_chapters(tmp_path / "out.m4a") == [
        (c["title"], pytest.approx(max(0, c["start"] - priming), abs=1e-3), pytest.approx(c["end"] - priming, abs=1e-3))
        for c in read_plan(two_steps_mp3)["chapters"]
    ]


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffmpeg is not installed")
def test_more_chapters_than_one_table_of_contents_holds_are_all_read_in_order(tmp_path):
    step = audio.samples(0.05)
    chapters = [Chapter(f"Point {number}", number * step, (number + 1) * step) for number in range(600)]
    path = tmp_path / "many.mp3"
    with path.open("wb") as file:
        file.write(export.id3_tag(export.Tags(title="Many"), chapters))
        export.encode_mp3([np.zeros(len(chapters) * step, dtype=np.int16)], file)
    assert ffprobe_chapters(path) == [
        (c.title, pytest.approx(c.start / SAMPLE_RATE, abs=0.001), pytest.approx(c.end / SAMPLE_RATE, abs=0.001))
        for c in chapters
    ]
    data = path.read_bytes()
    assert [element_id for element_id, _ in chapter_frames(data)] == [f"chp{number}" for number in range(600)]
    tables = {frame.element_id: frame for frame in mutagen.id3.ID3(path).getall("CTOC")}
    (top,) = [table for table in tables.values() if table.flags & mutagen.id3.CTOCFlags.TOP_LEVEL]
    assert all(len(table.child_element_ids) <= 255 for table in tables.values())
    leaves = [entry for child in top.child_element_ids for entry in tables[child].child_element_ids]
    assert leaves == [f"chp{number}" for number in range(600)]  # a table of tables, in order
    assert [chapter.title for chapter in read_track(path).chapters] == [c.title for c in chapters]  # as serve reads it


def vtt_cues(text: str) -> list[tuple[float, float, str]]:
    """A strict reading of a WebVTT file: the header, then numbered cues with their timings."""
    header, *blocks = text.strip().split("\n\n")
    assert header == "WEBVTT"
    cues = []
    for number, block in enumerate(blocks, 1):
        identifier, timing, *lines = block.split("\n")
        assert identifier == str(number)
        match = re.fullmatch(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)", timing)
        assert match, timing
        h1, m1, s1, ms1, h2, m2, s2, ms2 = map(int, match.groups())
        cues.append((h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000, "\n".join(lines)))
    return cues


def test_captions_are_the_spoken_lines_at_their_times(two_steps_mp3):
    speech = [e for e in read_plan(two_steps_mp3)["events"] if e["kind"] == "speech"]
    cues = vtt_cues(two_steps_mp3.with_suffix(".vtt").read_text(encoding="utf-8"))
    ms = 0.0011  # the VTT's precision
    assert cues == [(pytest.approx(e["start"], abs=ms), pytest.approx(e["end"], abs=ms), e["text"]) for e in speech]


def test_script_lists_every_step_with_its_time_and_words(two_steps_mp3):
    plan = read_plan(two_steps_mp3)
    script = two_steps_mp3.with_suffix(".md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (\d+:\d\d) (.+)$", script, flags=re.MULTILINE)
    assert headings == [(f"{int(c['start']) // 60}:{int(c['start']) % 60:02d}", c["title"]) for c in plan["chapters"]]
    for event in plan["events"]:
        if event["kind"] == "speech":
            assert event["text"] in script
    assert script.count("*Hands on for") == 2 and "*Hands on for 3s.*" in script


def test_timeline_gives_each_chapter_its_narration(two_steps_mp3):
    plan = json.loads(two_steps_mp3.with_suffix(".json").read_text(encoding="utf-8"))
    assert plan["audio"] == "two-steps.mp3"
    assert [c["text"] for c in plan["chapters"]] == [
        ["Welcome. Sit comfortably."],
        ["Rub your hands together until they feel warm."],
        ["Place both palms on the upper back.", "Let them rest there."],
        ["That is all. Well done."],
    ]


@pytest.fixture
def out(two_steps_mp3, tmp_path):
    """An output folder to build the two-step routine into; the clip cache already holds its clips."""
    return tmp_path / "out"


def test_author_and_cover_from_the_routine(cli, routine_file, out):
    routine = routine_file("two-steps.yaml")
    image = cover.encode_png(np.full((8, 8, 3), 120, dtype=np.uint8))
    (routine.parent / "art.png").write_bytes(image)
    routine.write_text(routine.read_text() + "author: Ada Lovelace\ncover: art.png\n")
    result = cli("build", routine, "-o", out)
    assert result.exit_code == 0, result.stderr
    tags = mutagen.mp3.MP3(out / "two-steps.mp3").tags
    assert str(tags["TPE1"]) == "Ada Lovelace"
    assert tags.getall("APIC")[0].data == image


@pytest.mark.parametrize(
    "value, content, message",
    [
        ("nope.png", None, "cover: image 'nope.png' does not exist"),
        ("notes.png", b"just text", "cover: 'notes.png' is not a PNG or JPEG image"),
    ],
)
def test_a_bad_cover_is_reported_with_its_line(cli, routine_file, value, content, message):
    routine = routine_file("two-steps.yaml")
    if content is not None:
        (routine.parent / value).write_bytes(content)
    lines = routine.read_text().count("\n")
    routine.write_text(routine.read_text() + f"cover: {value}\n")
    result = cli("build", routine, "-o", routine.parent / "out")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {routine}:{lines + 1}:8: {message}")
    assert not (routine.parent / "out").exists()


def test_a_peak_lifted_by_mp3_coding_is_found_in_the_mp3_and_encoded_again(cli, routine_file, monkeypatch, out, caplog):
    """With the limiter's ceiling at full scale, MP3 coding must lift a peak over -1 dBTP, and the build must see it.

    The track is made 12 dB hotter on its way to the limiter, so that the limiter holds many peaks at its
    ceiling: the ceiling alone leaves every peak far under it.
    """
    rendered = build_module.render

    def twelve_db_hotter(timeline, source):
        return (audio.scaled(block, 4.0) for block in rendered(timeline, source))

    monkeypatch.setattr(build_module, "render", twelve_db_hotter)
    monkeypatch.setattr(levels, "TRACK_CEILING", 0.0)
    with caplog.at_level(logging.INFO, logger="voiceguide.build"):
        result = cli("build", routine_file("two-steps.yaml"), "-o", out)
    assert result.exit_code == 0, result.stderr
    lifted = re.findall(r"MP3 coding lifted a peak to (-?\d+\.\d+) dBTP; encoding again", caplog.text)
    assert lifted and float(lifted[0]) > -1.0, caplog.text  # the first encoding went over
    assert true_peak(decode(out / "two-steps.mp3")) <= -1.0  # the last does not, measured by scipy's resampler


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffmpeg is not installed")
def test_a_routine_of_257_chapters_validates_builds_and_plays_every_chapter_in_order(cli, tmp_path):
    lines = ["title: Many points", "intro: Welcome.", "steps:"]
    for number in range(1, 65):
        lines += [f"  - name: Point {number}", "    say: Press.", "    hold: 0s", "    repeat: 4"]
        lines += ["    transition: none"]
    routine = tmp_path / "many.yaml"
    routine.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert cli("validate", routine).exit_code == 0
    result = cli("build", routine, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    mp3 = tmp_path / "out" / "many.mp3"
    titles = ["Introduction"] + [f"Point {n} (round {r} of 4)" for n in range(1, 65) for r in range(1, 5)]
    assert ffprobe_chapters(mp3) == [
        (c["title"], pytest.approx(c["start"], abs=0.001), pytest.approx(c["end"], abs=0.001))
        for c in read_plan(mp3)["chapters"]
    ]
    assert [title for title, _, _ in ffprobe_chapters(mp3)] == titles
    tables = {frame.element_id: frame for frame in mutagen.id3.ID3(mp3).getall("CTOC")}
    (top,) = [table for table in tables.values() if table.flags & mutagen.id3.CTOCFlags.TOP_LEVEL]
    leaves = [entry for child in top.child_element_ids for entry in tables[child].child_element_ids]
    assert leaves == [element_id for element_id, _ in chapter_frames(mp3.read_bytes())]
    assert len(leaves) == 257


def test_a_full_disk_while_the_tags_are_written_is_a_one_line_error(routine_file, out, tmp_path):
    """On a real full filesystem: a small tmpfs, mounted in a namespace of its own, filled up before the build."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = (
        f'mount -t tmpfs -o size=4m tmpfs "{disk}" || exit 99; '
        f'cat /dev/zero > "{disk}/filler" 2>/dev/null; '
        f'"{sys.executable}" -m voiceguide build "{routine_file("two-steps.yaml")}" -o "{disk}"; '
        f'status=$?; ls -a "{disk}"; exit $status'
    )
    try:
        done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    except FileNotFoundError:
        pytest.skip("unshare is not installed")
    if done.returncode == 99 or "unshare:" in done.stderr:
        pytest.skip(f"cannot mount a small filesystem here: {done.stderr.strip()}")
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"error: cannot write {disk / 'two-steps.mp3'}: No space left on device\n"
    assert done.stdout.split()[-3:] == [".", "..", "filler"]  # nothing half-written is left


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed (it is needed only for M4B)")
def test_m4b_has_the_chapters_tags_and_cover(cli, routine_file, out):
    result = cli("build", routine_file("two-steps.yaml"), "-o", out, "--format", "m4b")
    assert result.exit_code == 0, result.stderr
    m4b = out / "two-steps.m4b"
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-show_format", "-show_streams", "-of", "json", str(m4b)],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    plan = read_plan(out / "two-steps.mp3")
    assert [(c["tags"]["title"], float(c["start_time"])) for c in probe["chapters"]] == [
        (c["title"], pytest.approx(c["start"], abs=0.001)) for c in plan["chapters"]
    ]
    assert float(probe["format"]["duration"]) == pytest.approx(plan["length"], abs=0.1)
    assert probe["format"]["tags"]["title"] == "Two quick steps"
    assert any(stream["disposition"]["attached_pic"] for stream in probe["streams"])


def test_m4b_without_ffmpeg_says_how_to_install_it(cli, routine_file, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    routine = routine_file("two-steps.yaml")
    result = cli("build", routine, "-o", routine.parent / "out", "--format", "m4b")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --format m4b needs ffmpeg, which is not on PATH; install it")
    assert len(result.stderr.strip().splitlines()) == 1
