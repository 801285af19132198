"""What builds left in an output folder: each track, read from the MP3 itself, and its timeline.

A built track is NAME.mp3 with its timeline NAME.json beside it (a preview MP3 has none).
Chapters, artist, cover and length come from the MP3's own tags, so whatever shows or serves
them (the terminal player, the server, the podcast feed) agrees with what a player reads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import mutagen
import mutagen.mp3
from mutagen.id3 import CTOCFlags

from voiceguide.cover import Artwork
from voiceguide.document import TimelineDocument
from voiceguide.errors import VoiceguideError


@dataclass(frozen=True)
class TrackChapter:
    title: str
    start: float  # seconds, to the millisecond as the CHAP frame holds it
    end: float


@dataclass(frozen=True)
class Track:
    path: Path
    title: str
    artist: str | None
    length: float  # seconds
    chapters: tuple[TrackChapter, ...]  # in the order of the table of contents
    artwork: Artwork | None
    audio_start: int  # bytes: where the audio begins, after the ID3 tag

    def chapter_at(self, seconds: float) -> int:
        """The chapter playing at `seconds` (the first one before any starts)."""
        return max([0, *(index for index, chapter in enumerate(self.chapters) if chapter.start <= seconds)])


def read_track(path: Path) -> Track:
    """The MP3's length, tags and chapters (CHAP frames, in CTOC order); a track without chapters has one."""
    if not path.is_file():
        raise VoiceguideError(f"{path}: no such file")
    try:
        mp3 = mutagen.mp3.MP3(path)
    except (mutagen.MutagenError, OSError) as error:
        raise VoiceguideError(f"{path}: not an MP3 file ({error})") from None
    tags, length = mp3.tags, float(mp3.info.length) if mp3.info else 0.0
    title = str(tags["TIT2"]) if tags and "TIT2" in tags else path.stem
    chapters = (_chapters(tags) if tags else ()) or (TrackChapter(title, 0.0, length),)
    pictures: list = tags.getall("APIC") if tags else []
    artwork = Artwork(pictures[0].data, pictures[0].mime) if pictures else None
    return Track(
        path=path,
        title=title,
        artist=str(tags["TPE1"]) if tags and "TPE1" in tags else None,
        length=length,
        chapters=chapters,
        artwork=artwork,
        audio_start=tags.size if tags else 0,
    )


def _chapters(tags) -> tuple[TrackChapter, ...]:
    frames = {frame.element_id: frame for frame in tags.getall("CHAP")}
    tables = {table.element_id: table for table in tags.getall("CTOC")}
    top = [table for table in tables.values() if table.flags & CTOCFlags.TOP_LEVEL]
    listed = [name for name in _listed(top[0], tables, set()) if name in frames] if top else []
    order = listed or sorted(frames, key=lambda name: frames[name].start_time)
    return tuple(
        TrackChapter(
            str(frames[name].sub_frames.get("TIT2", name)), frames[name].start_time / 1000, frames[name].end_time / 1000
        )
        for name in order
    )


def _listed(table, tables: dict, opened: set[str]) -> list[str]:
    """The entries of a table of contents, with the tables it lists opened in place (a long list of
    chapters is a table of tables: a CTOC holds 255 entries at most). A table is opened once."""
    opened.add(table.element_id)
    entries = []
    for child in table.child_element_ids:
        if child not in tables:
            entries.append(child)
        elif child not in opened:
            entries += _listed(tables[child], tables, opened)
    return entries


def audio_digest(track: Track) -> str:
    """A digest of the audio alone (not the tags), so retitling a track keeps it and new audio changes it."""
    with track.path.open("rb") as file:
        file.seek(track.audio_start)
        return hashlib.file_digest(file, "sha256").hexdigest()


@dataclass(frozen=True)
class BuiltTrack:
    """One built MP3 and what its timeline says of it."""

    routine: str  # the routine's name; several tracks share it when built at several lengths
    variant: str  # "" for the routine's own length, else the length asked for, as in NAME-20m.mp3
    description: str
    language: str
    track: Track

    @property
    def name(self) -> str:
        return self.track.path.stem


def find_built(folder: Path) -> list[BuiltTrack]:
    """Every built track in `folder` (not its subfolders), by routine, then by length."""
    found = []
    for mp3 in sorted(folder.glob("*.mp3")):
        document = _document(mp3)
        if document is None:
            continue
        routine = document.routine
        variant = mp3.stem[len(routine) + 1 :] if mp3.stem.startswith(f"{routine}-") else ""
        try:
            track = read_track(mp3)
        except VoiceguideError:
            continue  # being written, or damaged: not a track to offer
        found.append(BuiltTrack(routine, variant, document.description or "", document.language, track))
    return sorted(found, key=lambda built: (built.routine, built.variant != "", built.track.length))


def is_built(mp3: Path) -> bool:
    """Whether `mp3` is a built track: NAME.json beside it is its timeline (a preview has none)."""
    return _document(mp3) is not None


def _document(mp3: Path) -> TimelineDocument | None:
    """The timeline in NAME.json beside NAME.mp3 when it is that track's; None otherwise (and for hidden files)."""
    if mp3.name.startswith("."):
        return None
    try:
        document = TimelineDocument.from_json(json.loads(mp3.with_suffix(".json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
    return document if document is not None and document.audio == mp3.name else None
