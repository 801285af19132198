"""M4B: the finished MP3 as an AAC audiobook with the same tags, cover and chapters.

ffmpeg does the encoding, so it is needed only for this format; it is looked for before any work
starts, and a missing ffmpeg is a one-line error saying how to install it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from voiceguide import audio
from voiceguide.errors import VoiceguideError, last_line
from voiceguide.export import DEFAULT_ARTIST, Tags
from voiceguide.files import atomic_path
from voiceguide.timeline import Chapter

BITRATE = "64k"  # AAC; plenty for one voice
INSTALL_HINT = (
    "install it (Debian/Ubuntu: sudo apt install ffmpeg; macOS: brew install ffmpeg; Windows: winget install ffmpeg)"
)


def find_ffmpeg() -> str:
    """The ffmpeg command on PATH, or a VoiceguideError saying how to get it."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise VoiceguideError(
            f"--format m4b needs ffmpeg, which is not on PATH; {INSTALL_HINT}, or leave out --format m4b"
        )
    return ffmpeg


def _escape(value: str) -> str:
    """A value for an ffmetadata file, where = ; # \\ and line breaks must be escaped."""
    return re.sub(r"([=;#\\\n])", r"\\\1", value)


def ffmetadata(tags: Tags, chapters: Iterable[Chapter]) -> str:
    """The tags and one [CHAPTER] per chapter, times in milliseconds, as ffmpeg reads them."""
    fields = {
        "title": tags.title,
        "artist": tags.artist or DEFAULT_ARTIST,
        "album": tags.album or tags.title,
        "comment": tags.comment,
        "genre": "Speech",
    }
    lines = [";FFMETADATA1"] + [f"{name}={_escape(value)}" for name, value in fields.items() if value]
    for chapter in chapters:
        start, end = (round(audio.seconds(sample) * 1000) for sample in (chapter.start, chapter.end))
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={end}", f"title={_escape(chapter.title)}"]
    return "\n".join(lines) + "\n"


def write_m4b(mp3: Path, target: Path, tags: Tags, chapters: Iterable[Chapter], ffmpeg: str) -> None:
    """Encode `mp3` (with its cover) into `target` as AAC in an M4B, with the tags and chapters."""
    with tempfile.TemporaryDirectory(prefix="voiceguide-") as folder, atomic_path(target) as temporary:
        metadata = Path(folder) / "metadata.txt"
        metadata.write_text(ffmetadata(tags, chapters), encoding="utf-8")
        command = [
            ffmpeg, "-nostdin", "-y", "-loglevel", "error",
            "-i", str(mp3), "-i", str(metadata),
            "-map", "0:a", "-map", "0:v?", "-map_metadata", "1", "-map_chapters", "1",
            "-c:a", "aac", "-b:a", BITRATE, "-c:v", "copy", "-disposition:v", "attached_pic",
            "-f", "ipod", str(temporary),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            ran = " ".join(command)
            raise VoiceguideError(f"ffmpeg could not make {target.name} (ran: {ran}): {last_line(done.stderr)}")
