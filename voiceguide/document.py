"""The timeline as a document, in seconds: the one model the sidecars are written from.

NAME.json holds it (with what the build was made from), and NAME.vtt, NAME.md and the player
page are made from it, so all of them agree with each other and with the MP3 to the
millisecond. The next build reads it back to say which chapters' words changed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from voiceguide import audio
from voiceguide.routine import Routine
from voiceguide.timeline import Event, Timeline


def _seconds(sample: int) -> float:
    return round(audio.seconds(sample), 3)


@dataclass(frozen=True)
class EventEntry:
    kind: str  # "speech", "hold", "sound" or "breath"
    start: float  # seconds, to the millisecond
    end: float
    chapter: int  # index into the document's chapters
    text: str | None = None  # speech: what is said
    sound: str | None = None  # sound: the sound file's name, without its suffix
    breath: str | None = None  # breath: "in" or "out"
    cue: bool = False  # speech or sound inside a hold

    @classmethod
    def of(cls, event: Event) -> EventEntry:
        sound = event.sound.stem if event.sound else None
        return cls(event.kind, _seconds(event.start), _seconds(event.end), event.chapter, event.text or None, sound,
                   event.breath or None, event.cue)  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        """The entry as JSON data; the details an event does not have are left out."""
        data = dataclasses.asdict(self)
        for name in ("text", "sound", "breath"):
            if data[name] is None:
                del data[name]
        if not self.cue:
            del data["cue"]
        return data


@dataclass(frozen=True)
class ChapterEntry:
    title: str
    start: float  # seconds, to the millisecond
    end: float
    text: tuple[str, ...]  # the lines spoken in it, cues left out


@dataclass(frozen=True)
class BedEntry:
    sound: str  # the ambient bed's file name, without its suffix
    level: float  # dB relative to the voice


@dataclass(frozen=True)
class TimelineDocument:
    routine: str  # the routine's name (its file stem)
    title: str
    description: str | None
    language: str
    audio: str  # the MP3's file name
    length: float  # seconds
    chapters: tuple[ChapterEntry, ...]
    events: tuple[EventEntry, ...]
    background: BedEntry | None = None  # under the whole track

    def as_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["chapters"] = [{**chapter, "text": list(chapter["text"])} for chapter in data["chapters"]]
        data["events"] = [event.as_json() for event in self.events]
        return data

    @classmethod
    def from_json(cls, data: Any) -> TimelineDocument | None:
        """The document in a JSON sidecar, or None where it is not one (an older voiceguide's, or edited by hand)."""
        try:
            chapters = tuple(
                ChapterEntry(chapter["title"], chapter["start"], chapter["end"], tuple(chapter["text"]))
                for chapter in data["chapters"]
            )
            events = tuple(EventEntry(**event) for event in data["events"])
            background = BedEntry(**data["background"]) if data.get("background") else None
            document = cls(data["routine"], data["title"], data["description"], data["language"], data["audio"],
                           data["length"], chapters, events, background)  # fmt: skip
        except (KeyError, TypeError, ValueError):
            return None
        if not all(isinstance(event.chapter, int) and 0 <= event.chapter < len(chapters) for event in events):
            return None
        return document

    def chapter_events(self, index: int) -> list[EventEntry]:
        return [event for event in self.events if event.chapter == index]


def timeline_document(timeline: Timeline, routine: Routine, audio_file: str) -> TimelineDocument:
    """The plan as a document (times in seconds): the chapters with what is said in each, and every event."""
    chapters = tuple(
        ChapterEntry(
            chapter.title,
            _seconds(chapter.start),
            _seconds(chapter.end),
            tuple(
                event.text
                for event in timeline.events
                if event.chapter == index and event.kind == "speech" and not event.cue and event.text
            ),
        )
        for index, chapter in enumerate(timeline.chapters)
    )
    return TimelineDocument(
        routine=routine.name,
        title=timeline.title,
        description=routine.description,
        language=routine.language,
        audio=audio_file,
        length=_seconds(timeline.length),
        chapters=chapters,
        events=tuple(EventEntry.of(event) for event in timeline.events),
        background=BedEntry(timeline.background.sound.stem, timeline.background.level) if timeline.background else None,
    )
