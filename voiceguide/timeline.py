"""Planning: a routine and the lengths of its clips become a timeline, with no audio touched.

Every event has a start and a length in samples at the internal rate. Events may overlap
(the renderer mixes them); time with no event is silence. Planning runs in three steps: the
steps become rounds (a step with `repeat: 2` runs twice), each round's hold gets its bounds,
and, for a custom length, the holds are fitted (fitting.py) before the events are laid out.
Because planning is pure data, `voiceguide plan` answers instantly and timing is testable
without synthesizing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from voiceguide import audio, sounds, words
from voiceguide.durations import format_duration
from voiceguide.errors import VoiceguideError
from voiceguide.fitting import Hold, Unreachable, fit
from voiceguide.routine import (
    MAX_SECONDS,
    Background,
    Breathe,
    Countdown,
    CueTime,
    Narration,
    Pause,
    Routine,
    Step,
    spoken,
)

LEAD_IN = audio.samples(1.0)  # quiet before the first word
LINE_GAP = audio.samples(0.6)  # between the lines of one narration, where no pause is written
AFTER_INTRO = audio.samples(1.5)
BETWEEN_ROUNDS = audio.samples(1.0)  # after a round's hold, before the next round's words
AFTER_TRANSITION = audio.samples(0.5)  # after a step's chime, before the next words
TAIL = audio.samples(2.0)  # quiet after the last word, so the track does not end abruptly
# Every chapter lasts a whole number of MP3 frames: the pause before the next one is lengthened by
# up to 26 ms. So an edit in one chapter moves the later ones by whole frames, and the frames they
# encoded to can be kept (islands.py).
FRAME = audio.SAMPLES_PER_FRAME
TAIL_GIVES = audio.samples(1.0)  # how much the tail may lengthen or shorten, so a fitted track is exact
ALIGNING_TRIES = 3
CUE_GAP = audio.samples(0.3)  # the least space between two cues, and before a hold's end
MOVED_TOLERANCE = audio.samples(0.05)  # a cue moved less than this is not worth a warning

# Without `min`/`max`, a hold may shrink to a quarter or grow to four times its length.
MIN_FRACTION = 0.25
MAX_FRACTION = 4.0
MAX_EXTRA_ROUNDS = 200

# Chapter titles of the intro and the outro, by the routine's language (English otherwise).
FRAME_TITLES = {
    "en": ("Introduction", "Closing"),
    "fr": ("Introduction", "Conclusion"),
    "de": ("Einleitung", "Abschluss"),
    "es": ("Introducción", "Cierre"),
    "it": ("Introduzione", "Chiusura"),
}
TICK = "tick"


@dataclass(frozen=True)
class Event:
    kind: str  # "speech", "pause" (written between two lines), "hold", "sound" or "breath"
    start: int
    length: int
    chapter: int  # index into Timeline.chapters
    text: str | None = None  # speech: what is said
    sound: Path | None = None  # sound: which file plays
    breath: str | None = None  # breath: "in" or "out"
    cue: bool = False  # speech or sound inside a hold

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
    background: Background | None = None
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # what fitting did, e.g. which steps were repeated

    def of_kind(self, kind: str) -> list[Event]:
        return [event for event in self.events if event.kind == kind]


@dataclass(frozen=True)
class Round:
    """One run of a step: its chapter title, what is said before its hold, and which step it is."""

    step: Step
    index: int  # the step's index in the routine
    title: str
    narration: Narration
    last: bool  # the step's last round: its transition follows


def countdown_words(count: int) -> list[str]:
    """Spoken countdown numbers as digits, so every voice says them in its own language."""
    return [str(number) for number in range(count, 0, -1)]


def spoken_lines(routine: Routine) -> dict[str, str]:
    """Every distinct line the routine may speak, with a label naming where it is (for messages)."""
    lines: dict[str, str] = {}
    for text in spoken(routine.intro):
        lines.setdefault(text, "the intro")
    for index, step in enumerate(routine.steps):
        label = f"steps[{index}] ({step.name})"
        for text in spoken(step.say + step.between) + tuple(cue.say for cue in step.cues if cue.say):
            lines.setdefault(text, label)
        if step.countdown and step.countdown.style == "voice":
            for text in countdown_words(step.countdown.count):
                lines.setdefault(text, f"{label} countdown")
    for text in spoken(routine.outro):
        lines.setdefault(text, "the outro")
    return lines


def narration_layout(lines: Narration, speech: Mapping[str, int]) -> list[tuple[int, int, str | Pause]]:
    """Where each line and pause of a narration falls: (offset from its start, length, line), in order.

    Lines follow one another LINE_GAP apart; a pause written between two lines takes that gap's place.
    """
    layout: list[tuple[int, int, str | Pause]] = []
    cursor = 0
    for index, line in enumerate(lines):
        if isinstance(line, Pause):
            length = audio.samples(line.seconds)
        else:
            if index and not isinstance(lines[index - 1], Pause):
                cursor += LINE_GAP
            length = speech[line]
        layout.append((cursor, length, line))
        cursor += length
    return layout


def _rounds(routine: Routine, extra: Mapping[int, int]) -> list[Round]:
    """The steps as rounds; `extra` adds rounds to repeatable steps (step index -> count)."""
    rounds = []
    for index, step in enumerate(routine.steps):
        count = step.repeat + extra.get(index, 0)
        for number in range(count):
            if step.rounds:
                title = f"{step.name}, {step.rounds[number % len(step.rounds)]}"
            elif count > 1:
                title = f"{step.name} (round {number + 1} of {count})"
            else:
                title = step.name
            narration = step.say if number == 0 or not step.between else step.between
            rounds.append(Round(step, index, title, narration, last=number == count - 1))
    return rounds


class _Lengths:
    """Clip and sound lengths in samples, as the planner asks for them."""

    def __init__(self, speech: Mapping[str, int], sound: Callable[[Path], int]):
        self.speech = speech
        self.sound = sound

    def cue(self, step: Step, cue) -> int:
        return self.speech[cue.say] if cue.say else self.sound(cue.sound)

    def countdown(self, countdown: Countdown) -> list[int]:
        if countdown.style == "voice":
            return [self.speech[word] for word in countdown_words(countdown.count)]
        return [self.sound(sounds.builtin_path(TICK))] * countdown.count


def _cue_need(at: CueTime, clip_length: int) -> int:
    """How long a hold must be for a cue at `at` to sound in it whole, ending CUE_GAP before the hold does."""
    whole = clip_length + CUE_GAP
    if at.fraction is not None:
        return whole
    if at.before_end:
        return max(audio.samples(at.seconds), whole)
    return audio.samples(at.seconds) + whole


def _shortest_hold(step: Step, lengths: _Lengths, as_shares: bool = False) -> int:
    """The shortest a flexible hold may become: its `min` (or a share of its length), and long
    enough for its countdown and for every cue at the moment the routine gives it (or, with
    `as_shares`, as if every cue were given as a share of the hold), but never past its length.
    """
    natural = audio.samples(step.hold)
    own = audio.samples(step.min) if step.min is not None else round(natural * MIN_FRACTION)
    needed = [_cue_need(CueTime(fraction=0.5) if as_shares else cue.at, lengths.cue(step, cue)) for cue in step.cues]
    if step.countdown:
        needed.append(audio.samples(step.countdown.count) + CUE_GAP)
    return max(own, min(max(needed, default=0), natural))


def _hold_bounds(step: Step, lengths: _Lengths) -> Hold:
    natural = audio.samples(step.hold)
    if not step.flex:
        return Hold(natural, natural, natural, step.weight)
    maximum = audio.samples(step.max) if step.max is not None else round(natural * MAX_FRACTION)
    return Hold(natural, _shortest_hold(step, lengths), maximum, step.weight)


@dataclass(frozen=True)
class _Wanted:
    """A cue, or a countdown number, where the routine puts it in a hold (before collisions are resolved)."""

    start: int
    length: int
    details: dict  # the event's text or sound
    where: str  # file:line:column: key path, for warnings
    name: str  # for warnings: the cue 'Halfway.', countdown 3


class _Builder:
    """Appends events one after another and closes chapters as it goes; with `align`, every
    chapter after the first starts on an MP3 frame (see FRAME)."""

    def __init__(self, lengths: _Lengths, align: bool):
        self.lengths = lengths
        self.align = align
        self.cursor = 0
        self.events: list[Event] = []
        self.chapter_starts: list[tuple[str, int]] = []
        self.warnings: list[str] = []

    def chapter(self, title: str) -> None:
        if self.chapter_starts and self.align:
            self.pause(-self.cursor % FRAME)
        self.chapter_starts.append((title, 0 if not self.chapter_starts else self.cursor))

    def pause(self, length: int) -> None:
        self.cursor += length

    def place(self, kind: str, start: int, length: int, **details) -> None:
        self.events.append(Event(kind, start, length, len(self.chapter_starts) - 1, **details))

    def add(self, kind: str, length: int, **details) -> None:
        self.place(kind, self.cursor, length, **details)
        self.cursor += length

    def say(self, lines: Narration) -> None:
        start = self.cursor
        for offset, length, line in narration_layout(lines, self.lengths.speech):
            if isinstance(line, Pause):
                self.place("pause", start + offset, length)
            else:
                self.place("speech", start + offset, length, text=line)
            self.cursor = start + offset + length

    def hold(self, round_: Round, length: int) -> None:
        start = self.cursor
        self.add("hold", length)
        step = round_.step
        if step.breathe:
            self._breaths(step.breathe, start, length)
        self._cues(round_, start, length)

    def _breaths(self, breathe: Breathe, start: int, length: int) -> None:
        offset = 0
        phases = [("in", breathe.inhale, breathe.pause), ("out", breathe.exhale, 0.0)]
        while True:
            for direction, seconds, rest in phases:
                tone = audio.samples(seconds)
                if offset + tone > length:
                    return
                self.place("breath", start + offset, tone, breath=direction)
                offset += tone + audio.samples(rest)

    def _cues(self, round_: Round, start: int, length: int) -> None:
        """Place the round's cues and countdown inside its hold, moving any that would collide."""
        step = round_.step
        path = f"steps[{round_.index}]"
        wanted: list[_Wanted] = []
        hold_seconds = audio.seconds(length)
        for index, cue in enumerate(step.cues):
            details: dict[str, str | Path]
            if cue.say:
                details, name = {"text": cue.say}, cue.say
            else:
                assert cue.sound is not None  # a cue says something or sounds (Cue.rules)
                details, name = {"sound": cue.sound}, cue.sound.stem
            wanted.append(_Wanted(
                start + audio.samples(cue.at.offset(hold_seconds)), self.lengths.cue(step, cue), details,
                f"{cue.at.location}: {path}.cues[{index}] ({step.name})", f"the cue {name!r}",
            ))
        countdown = step.countdown
        if countdown:
            numbers = range(countdown.count, 0, -1)
            for number, clip_length in zip(numbers, self.lengths.countdown(countdown), strict=True):
                tick = {"text": str(number)} if countdown.style == "voice" else {"sound": sounds.builtin_path(TICK)}
                wanted.append(_Wanted(
                    start + length - audio.samples(number), clip_length, tick,
                    f"{countdown.location}: {path}.countdown ({step.name})", f"countdown {number}",
                ))
        wanted.sort(key=lambda item: item.start)
        placed = _without_overlaps(wanted, start, start + length)
        for index, (item, (new_start, reason)) in enumerate(zip(wanted, placed, strict=True)):
            room_until = placed[index + 1][0] if index + 1 < len(placed) else start + length
            warning = _moved(item, new_start, reason, room_until, length, alone=len(wanted) == 1)
            if warning:
                self.warnings.append(f"{item.where}: {item.name} {warning}")
            kind = "speech" if "text" in item.details else "sound"
            self.place(kind, new_start, item.length, cue=True, **item.details)

    def finish(self, title: str, background: Background | None, notes: tuple[str, ...]) -> Timeline:
        ends = [start for _, start in self.chapter_starts[1:]] + [self.cursor]
        starts = self.chapter_starts
        chapters = tuple(Chapter(name, start, end) for (name, start), end in zip(starts, ends, strict=True))
        events = tuple(sorted(self.events, key=lambda event: event.start))
        warnings = tuple(dict.fromkeys(self.warnings))  # a step's rounds would each say the same
        return Timeline(title, events, chapters, self.cursor, background, warnings, notes)


def _without_overlaps(items: list[_Wanted], hold_start: int, hold_end: int) -> list[tuple[int, str]]:
    """Where each item (in order of wanted start) sounds, kept CUE_GAP apart inside the hold, and what it made room for.

    An item moves earlier to make room for the one after it, so a countdown, which ends the
    hold, stays where it is; it moves later only where the hold's start or the item before it
    leaves no room.
    """
    starts = [item.start for item in items]
    reasons = [""] * len(items)
    latest_end, reason = hold_end - CUE_GAP, "ends before the hold does"
    for index in reversed(range(len(items))):
        if starts[index] + items[index].length > latest_end:
            starts[index], reasons[index] = latest_end - items[index].length, reason
        latest_end, reason = starts[index] - CUE_GAP, f"does not overlap {items[index].name}"
    earliest, reason = hold_start, "starts inside the hold"
    for index, item in enumerate(items):
        if starts[index] < earliest:
            starts[index], reasons[index] = earliest, reason
        earliest, reason = starts[index] + item.length + CUE_GAP, f"does not overlap {item.name}"
    return list(zip(starts, reasons, strict=True))


def _moved(item: _Wanted, start: int, reason: str, room_until: int, hold_length: int, alone: bool) -> str | None:
    """What placing `item` at `start` did to it, and why, for a warning; None if it sounds where it was set.

    `room_until` is where the next item starts (or the hold ends): the item must end CUE_GAP before.
    """
    if start + item.length + CUE_GAP > room_until:
        others = "" if alone else " beside the other cues and countdown"
        return (
            f"({format_duration(audio.seconds(item.length))}) does not fit in the "
            f"{format_duration(audio.seconds(hold_length))} hold{others}; give the step a longer hold"
        )
    if abs(start - item.start) <= MOVED_TOLERANCE:
        return None
    direction = "later" if start > item.start else "earlier"
    return f"was moved {audio.seconds(abs(start - item.start)):.1f}s {direction} so it {reason}"


def _layout(
    routine: Routine, rounds: list[Round], holds: list[int], lengths: _Lengths, notes=(), align: bool = True,
    tail: int = TAIL,
) -> Timeline:
    intro_title, outro_title = FRAME_TITLES.get(routine.language.split("-")[0], FRAME_TITLES["en"])
    builder = _Builder(lengths, align)
    builder.pause(LEAD_IN)
    if routine.intro:
        builder.chapter(intro_title)
        builder.say(routine.intro)
        builder.pause(AFTER_INTRO)
    for round_, hold in zip(rounds, holds, strict=True):
        builder.chapter(round_.title)
        builder.say(round_.narration)
        builder.hold(round_, hold)
        if not round_.last:
            builder.pause(BETWEEN_ROUNDS)
            continue
        if round_.step.transition is not None:
            builder.add("sound", lengths.sound(round_.step.transition), sound=round_.step.transition)
        builder.pause(AFTER_TRANSITION)
    if routine.outro:
        builder.chapter(outro_title)
        builder.say(routine.outro)
    builder.pause(tail)
    return builder.finish(routine.title, routine.background, tuple(notes))


def plan(
    routine: Routine,
    speech_length: Mapping[str, int],
    sound_length: Callable[[Path], int],
    length: int | None = None,
    fill_repeat: bool = False,
) -> Timeline:
    """Lay out the routine; with `length` (samples), fit the holds so the total is exactly that.

    With `fill_repeat`, a length beyond every hold's maximum adds rounds to steps marked
    `repeatable`. An unreachable length raises VoiceguideError naming the reachable range.
    """
    longest = audio.samples(MAX_SECONDS)
    if length is not None and length > longest:
        raise VoiceguideError(
            f"asked for {format_duration(audio.seconds(length))}; a track may be at most {format_duration(MAX_SECONDS)}"
        )
    lengths = _Lengths(speech_length, sound_length)
    extra: dict[int, int] = {}
    rounds = _rounds(routine, extra)
    holds = [_hold_bounds(round_.step, lengths) for round_ in rounds]
    if length is None:
        timeline = _layout(routine, rounds, [hold.natural for hold in holds], lengths)
        if timeline.length > longest:
            raise VoiceguideError(
                f"{routine.name} is {format_duration(audio.seconds(timeline.length))} long; "
                f"a track may be at most {format_duration(MAX_SECONDS)}: shorten its holds"
            )
        return timeline

    def fixed_length(rounds: list[Round]) -> int:
        """The track's length with every hold at zero: what fitting cannot change (the chapters' alignment aside)."""
        return _layout(routine, rounds, [0] * len(rounds), lengths, align=False).length

    repeatable = [index for index, step in enumerate(routine.steps) if step.repeatable]
    extra_sets: list[int] = []
    while fill_repeat and repeatable and sum(extra.values()) < MAX_EXTRA_ROUNDS:
        if fixed_length(rounds) + sum(hold.maximum for hold in holds) >= length:
            break
        step_index = repeatable[len(extra_sets) % len(repeatable)]
        extra_sets.append(step_index)
        # A whole set of rounds at a time, so a both-sides step stays even.
        extra[step_index] = extra.get(step_index, 0) + routine.steps[step_index].repeat
        rounds = _rounds(routine, extra)
        holds = [_hold_bounds(round_.step, lengths) for round_ in rounds]
    fixed = fixed_length(rounds)
    notes = [
        f"repeated {routine.steps[index].name!r} {words.count(count, 'more time')}"
        for index, count in sorted(extra.items())
    ]
    aligning = 0  # what the chapters' alignment adds, taken from the holds
    for _ in range(ALIGNING_TRIES):
        try:
            fitted = fit(holds, length - fixed - aligning)
        except Unreachable as unreachable:
            shortest, longest = fixed + aligning + unreachable.shortest, fixed + aligning + unreachable.longest
            reason = _cues_keeping_holds(routine, lengths, shortest, length) if length < shortest else None
            raise LengthUnreachable(routine.name, shortest, longest, [length], reason) from None
        over = _layout(routine, rounds, fitted, lengths).length - length
        if abs(over) <= TAIL_GIVES:  # the tail makes the length exact
            return _layout(routine, rounds, fitted, lengths, notes, tail=TAIL - over)
        aligning += over
    raise VoiceguideError(f"{routine.name} cannot be fitted to exactly {format_duration(audio.seconds(length))}; "
                          "ask for a second more or less")  # fmt: skip


class LengthUnreachable(VoiceguideError):
    """Lengths (samples) outside the range the routine can reach; the message says the range and how to widen it."""

    def __init__(self, name: str, shortest: int, longest: int, asked: list[int], reason: str | None = None):
        self.shortest, self.longest, self.asked = shortest, longest, asked
        if reason:  # a more precise account of why, like the cues that keep holds from shrinking
            super().__init__(reason)
            return
        hints = []
        if any(length < shortest for length in asked):
            hints.append("lower some steps' 'min', or shorten the narration")
        if any(length > longest for length in asked):
            hints.append("raise some steps' 'max', or mark steps 'repeatable: true' and use --fill repeat")
        shown = [format_duration(audio.seconds(length)) for length in asked]
        lengths = " and ".join([", ".join(shown[:-1]), shown[-1]] if len(shown) > 1 else shown)
        super().__init__(
            f"{name} can run from {format_duration(audio.seconds(shortest))} to "
            f"{format_duration(audio.seconds(longest))}; asked for {lengths}{''.join(f'; {hint}' for hint in hints)}"
        )


def _cues_keeping_holds(routine: Routine, lengths: _Lengths, shortest: int, asked: int) -> str | None:
    """The cues, set in seconds, that keep a hold from shrinking to fit `asked`, in words; None if none do.

    A cue keeps the moment the routine gives it when its hold is fitted to a length (a share
    of the hold moves with it), so its hold may not shrink past it. When that makes the length
    too short to reach, the error says so, rather than moving the cue where it was not meant to be.
    """
    keeping = []  # (key path, step, cue, the hold it needs)
    for index, step in enumerate(routine.steps):
        if not step.flex:
            continue
        shortest_as_shares = _shortest_hold(step, lengths, as_shares=True)
        for cue_index, cue in enumerate(step.cues):
            need = min(_cue_need(cue.at, lengths.cue(step, cue)), audio.samples(step.hold))
            if need > shortest_as_shares:
                keeping.append((f"steps[{index}].cues[{cue_index}]", step, cue, need))
    if not keeping:
        return None
    path, step, cue, need = keeping[0]
    share = round(100 * cue.at.offset(step.hold) / step.hold)
    others = ", ".join(other for other, *_ in keeping[1:])
    return (
        f"{cue.at.location}: {path}.at: {cue.at} keeps its {format_duration(step.hold)} hold from shrinking below "
        f"{format_duration(audio.seconds(need))}, so {routine.name} runs at least "
        f"{format_duration(audio.seconds(shortest))}; asked for {format_duration(audio.seconds(asked))}; to let the "
        f"cue move as its hold shrinks, give it as a share of the hold, like {share}%"
        + (f" (and so for {others})" if others else "")
    )
