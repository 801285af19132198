"""Planning: a routine and the lengths of its clips become a timeline, with no audio touched.

Every event has a start and a length in samples at the internal rate. Events may overlap
(the renderer mixes them); time with no event is silence. Because planning is pure data,
`voiceguide plan` answers instantly and timing is testable without synthesizing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from voiceguide import audio
from voiceguide.routine import Routine

LEAD_IN = audio.samples(1.0)  # quiet before the first word
LINE_GAP = audio.samples(0.6)  # between the lines of one narration
AFTER_INTRO = audio.samples(1.5)
AFTER_TRANSITION = audio.samples(0.5)  # after a step's chime, before the next words
TAIL = audio.samples(2.0)  # quiet after the last word, so the track does not end abruptly

INTRO_TITLE = "Introduction"
OUTRO_TITLE = "Closing"


@dataclass(frozen=True)
class Event:
    kind: str  # "speech", "hold" or "sound"
    start: int
    length: int
    chapter: int  # index into Timeline.chapters
    text: str | None = None  # speech: what is said
    sound: Path | None = None  # sound: which file plays

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class Chapter:
    title: str
    start: int
    end: int


@dataclass(frozen=True)
class Timeline:
    title: str
    events: tuple[Event, ...]
    chapters: tuple[Chapter, ...]
    length: int

    def of_kind(self, kind: str) -> list[Event]:
        return [event for event in self.events if event.kind == kind]


def spoken_lines(routine: Routine) -> dict[str, str]:
    """Every distinct line the routine speaks, with a label naming where it is (for messages)."""
    lines: dict[str, str] = {}
    for text in routine.intro:
        lines.setdefault(text, "the intro")
    for index, step in enumerate(routine.steps):
        for text in step.say:
            lines.setdefault(text, f"steps[{index}] ({step.name})")
    for text in routine.outro:
        lines.setdefault(text, "the outro")
    return lines


class _Builder:
    """Appends events one after another and closes chapters as it goes."""

    def __init__(self, speech_length: Mapping[str, int], sound_length: Callable[[Path], int]):
        self.speech_length = speech_length
        self.sound_length = sound_length
        self.cursor = 0
        self.events: list[Event] = []
        self.chapter_starts: list[tuple[str, int]] = []

    def chapter(self, title: str) -> None:
        self.chapter_starts.append((title, 0 if not self.chapter_starts else self.cursor))

    def pause(self, length: int) -> None:
        self.cursor += length

    def add(self, kind: str, length: int, **details) -> None:
        self.events.append(Event(kind, self.cursor, length, len(self.chapter_starts) - 1, **details))
        self.cursor += length

    def say(self, lines: tuple[str, ...]) -> None:
        for index, text in enumerate(lines):
            if index:
                self.pause(LINE_GAP)
            self.add("speech", self.speech_length[text], text=text)

    def finish(self, title: str) -> Timeline:
        ends = [start for _, start in self.chapter_starts[1:]] + [self.cursor]
        chapters = tuple(Chapter(name, start, end) for (name, start), end in zip(self.chapter_starts, ends))
        return Timeline(title, tuple(self.events), chapters, self.cursor)


def plan(routine: Routine, speech_length: Mapping[str, int], sound_length: Callable[[Path], int]) -> Timeline:
    """Lay out the routine: intro, then each step's narration, hold and transition, then outro."""
    builder = _Builder(speech_length, sound_length)
    builder.pause(LEAD_IN)
    if routine.intro:
        builder.chapter(INTRO_TITLE)
        builder.say(routine.intro)
        builder.pause(AFTER_INTRO)
    for step in routine.steps:
        builder.chapter(step.name)
        builder.say(step.say)
        builder.add("hold", audio.samples(step.hold))
        if step.transition is not None:
            builder.add("sound", sound_length(step.transition), sound=step.transition)
        builder.pause(AFTER_TRANSITION)
    if routine.outro:
        builder.chapter(OUTRO_TITLE)
        builder.say(routine.outro)
    builder.pause(TAIL)
    return builder.finish(routine.title)
