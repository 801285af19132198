"""Routine files: the schema, and `load`, which validates a file against it.

The schema is declared once, as frozen dataclasses whose fields carry their parser and their
documentation (see yaml_walk.key); yaml_walk.py walks the YAML node tree with them, so that every
problem names its line and column, and all of a file's problems are reported together.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from voiceguide import cover, levels, sounds
from voiceguide.durations import DURATION_HINT, format_duration, parse_duration
from voiceguide.errors import RoutineError
from voiceguide.files import not_a_file
from voiceguide.voices import AUTO, ENGINE_CHOICES
from voiceguide.voices.choice import VoiceSettings
from voiceguide.voices.piper_engine import MODEL_SUFFIX
from voiceguide.yaml_walk import (
    Context,
    Invalid,
    KeyProblem,
    Location,
    compose,
    declared_keys,
    describe,
    key,
    mapping_of,
    parse_keys,
    parse_mapping,
    read_text,
    scalar,
    scalar_or_mapping,
)

MAX_STEPS = 2000
MAX_LINE_CHARACTERS = 5000
MAX_SECONDS = 12 * 3600  # no duration, and no whole track, may be longer

DEFAULT_TRANSITION = "chime"
DEFAULT_LANGUAGE = "en"


# ---------------------------------------------------------------- value parsers


# Letters and symbols that show nothing, like the zero-width characters (category Cf) do.
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800")


def parse_text(node: yaml.Node, ctx: Context) -> str:
    """Text to show or say: whitespace made single spaces; no control characters; something visible."""
    text = " ".join(scalar(node).split())
    if not text:
        raise Invalid(node, "is empty; give it some text")
    control = next((char for char in text if unicodedata.category(char) == "Cc"), None)
    if control:  # an escape like "\e" or "\0" in a quoted string: it would reach terminals and sidecars
        raise Invalid(node, f"contains the control character {control!r}; remove it")
    if all(char in INVISIBLE or unicodedata.category(char) in ("Cf", "Zs", "Mn", "Me") for char in text):
        raise Invalid(node, "has no visible characters (only spaces or zero-width ones); give it some text")
    if len(text) > MAX_LINE_CHARACTERS:
        raise Invalid(node, f"is {len(text):,} characters; split it into lines of at most {MAX_LINE_CHARACTERS:,}")
    return text


def parse_lines(node: yaml.Node, ctx: Context) -> tuple[str, ...]:
    """A string, or a list of strings spoken in turn."""
    if isinstance(node, yaml.SequenceNode):
        if not node.value:
            raise Invalid(node, "is an empty list; give at least one line to say")
        return tuple(parse_text(item, ctx) for item in node.value)
    return (parse_text(node, ctx),)


def parse_seconds(node: yaml.Node, ctx: Context) -> float:
    value = scalar(node)
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise Invalid(node, f"{DURATION_HINT}, got {value!r}") from None
    if seconds > MAX_SECONDS:
        raise Invalid(node, f"is longer than {format_duration(MAX_SECONDS)}, the longest a track may be")
    return seconds


def parse_pause_seconds(node: yaml.Node, ctx: Context) -> float:
    seconds = parse_seconds(node, ctx)
    if seconds == 0:
        raise Invalid(node, "is 0s; give a pause longer than that, or remove it")
    return seconds


@dataclass(frozen=True)
class Pause:
    """A longer breath between two lines of narration: it takes the place of the short gap between them."""

    seconds: float = key(
        parse_pause_seconds, "how long to pause between two lines, like 2s, in place of the short gap", name="pause"
    )


Narration = tuple[str | Pause, ...]  # lines spoken in turn, with pauses between some of them


def spoken(lines: Narration) -> tuple[str, ...]:
    """The lines of a narration that are said (its pauses left out)."""
    return tuple(line for line in lines if isinstance(line, str))


def parse_narration(node: yaml.Node, ctx: Context) -> Narration:
    """A string, or a list of lines spoken in turn, where {pause: 2s} between two lines is a longer breath."""
    if not isinstance(node, yaml.SequenceNode):
        return parse_lines(node, ctx)
    if not node.value:
        raise Invalid(node, "is an empty list; give at least one line to say")
    path = ctx.key_path
    lines: list[str | Pause] = []
    for index, item in enumerate(node.value):
        if not isinstance(item, yaml.MappingNode):
            lines.append(parse_text(item, ctx))
            continue
        item_path = f"{path}[{index}]"
        pause = parse_mapping(Pause, item, item_path, ctx)  # None when it has problems, reported already
        misplaced = pause and _misplaced_pause(index, len(node.value), lines)
        if misplaced:
            ctx.report(item, item_path, misplaced)
        lines.append(pause)
    return tuple(lines)


def _misplaced_pause(index: int, count: int, before: list[str | Pause]) -> str | None:
    """Why a pause cannot stand at `index` of `count` lines, after `before`; None if it can."""
    if index == 0:
        return "is a pause before the first line; a pause goes between two lines"
    if index == count - 1:
        return "is a pause after the last line; a pause goes between two lines"
    if isinstance(before[-1], Pause):
        return "follows another pause; make them one pause"
    return None


def _number(node: yaml.Node, accept: Callable[[float], bool], expected: str) -> float:
    """A number that `accept` allows (NaN never is), else an error saying what was `expected`."""
    value = scalar(node)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not accept(number):
        raise Invalid(node, f"expected {expected}, got {value!r}")
    return number


def parse_speed(node: yaml.Node, ctx: Context) -> float:
    return _number(node, lambda speed: 0.5 <= speed <= 2.0, "a number from 0.5 to 2.0 (1.0 is the voice's normal pace)")


def parse_language(node: yaml.Node, ctx: Context) -> str:
    value = scalar(node)
    if not re.fullmatch(r"[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*", value):
        raise Invalid(node, f"expected a language code like en, fr or en-us, got {value!r}")
    return value.lower().replace("_", "-")


def parse_engine(node: yaml.Node, ctx: Context) -> str:
    value = scalar(node)
    if value not in ENGINE_CHOICES:
        raise Invalid(node, f"unknown engine {value!r}; expected one of {', '.join(ENGINE_CHOICES)}")
    return value


def parse_voice_name(node: yaml.Node, ctx: Context) -> str:
    """A voice name, or the path of a Piper .onnx model (relative to the routine)."""
    name = parse_text(node, ctx)
    if not name.endswith(MODEL_SUFFIX):
        return name
    path = ctx.folder / Path(name).expanduser()
    problem = not_a_file(path)
    if problem:
        raise Invalid(node, f"voice model {name!r} {problem}")
    return str(path.absolute())


def parse_pronounce(node: yaml.Node, ctx: Context) -> dict[str, str]:
    """Words mapped to how the voice should say them; every problem is reported."""
    if not isinstance(node, yaml.MappingNode):
        example = "effleurage: eff-luh-rahzh"
        raise Invalid(node, f"expected a mapping of word: spoken form, like {example}, got {describe(node)}")
    spellings: dict[str, str] = {}
    for key_node, value_node in node.value:
        try:
            word = parse_text(key_node, ctx)
            if word.lower() in (known.lower() for known in spellings):
                raise Invalid(key_node, "is given twice (words match in any case); keep one")
            spellings[word] = parse_text(value_node, ctx)
        except Invalid as invalid:
            ctx.report(invalid.node, f"{ctx.key_path}.{getattr(key_node, 'value', '')}", str(invalid))
    return spellings


def parse_sound(node: yaml.Node, ctx: Context, bed: bool = False) -> Path | None:
    """A built-in sound name, a path to an audio file (relative to the routine), or none."""
    value = scalar(node)
    if value.lower() == "none":
        return None
    try:
        return sounds.resolve(value, ctx.folder, bed)
    except ValueError as error:
        raise Invalid(node, str(error)) from None


def parse_sound_required(node: yaml.Node, ctx: Context, bed: bool = False) -> Path:
    sound = parse_sound(node, ctx, bed)
    if sound is None:
        raise Invalid(node, "needs a sound: a built-in name or an audio file")
    return sound


def parse_bed(node: yaml.Node, ctx: Context) -> Path:
    """A background sound: it loops, so it may be longer than a transition or a cue."""
    return parse_sound_required(node, ctx, bed=True)


def parse_image(node: yaml.Node, ctx: Context) -> Path:
    """A PNG or JPEG file, relative to the routine."""
    path = ctx.folder / Path(scalar(node)).expanduser()
    try:
        cover.check_image(path)
    except ValueError as error:
        raise Invalid(node, str(error)) from None
    return path


def _integer(node: yaml.Node, low: int, high: int, what: str) -> int:
    value = scalar(node)
    if not re.fullmatch(r"\d+", value.strip()) or not low <= int(value) <= high:
        raise Invalid(node, f"expected a whole number of {what} from {low} to {high}, got {value!r}")
    return int(value)


def parse_repeat(node: yaml.Node, ctx: Context) -> int:
    return _integer(node, 1, 20, "rounds")


def parse_bool(node: yaml.Node, ctx: Context) -> bool:
    value = scalar(node)
    if node.tag != "tag:yaml.org,2002:bool":
        raise Invalid(node, f"expected true or false, got {value!r}")
    return value.lower() in ("true", "yes", "on", "y")


def parse_weight(node: yaml.Node, ctx: Context) -> float:
    return _number(node, lambda weight: 0 < weight <= 100, "a number above 0 (1 is normal, 2 takes twice the change)")


def parse_level(node: yaml.Node, ctx: Context) -> float:
    """Decibels relative to the voice, like -20 or -20dB; at most 0."""
    value = scalar(node)
    try:
        level = float(re.sub(r"\s*db$", "", value.strip(), flags=re.IGNORECASE))
    except ValueError:
        level = math.nan
    if not -60 <= level <= 0:
        raise Invalid(node, f"expected a level in dB below the voice, from -60 to 0 (like -20dB), got {value!r}")
    return level


@dataclass(frozen=True)
class CueTime:
    """When a cue sounds inside a hold: seconds from its start, seconds before its end, or a fraction."""

    seconds: float = 0.0
    before_end: bool = False
    fraction: float | None = None  # when given, `seconds` is not used
    location: Location | None = field(default=None, compare=False)  # where the routine gives it

    def __str__(self) -> str:
        """As a routine writes it: 30s, -10s or 50%."""
        if self.fraction is not None:
            return f"{self.fraction * 100:g}%"
        return f"{'-' if self.before_end else ''}{format_duration(self.seconds)}"

    def offset(self, hold_seconds: float) -> float:
        if self.fraction is not None:
            return hold_seconds * self.fraction
        return hold_seconds - self.seconds if self.before_end else self.seconds

    def outside(self, hold_seconds: float) -> str | None:
        """Why this time is not a moment inside a hold that long, or None when it is.

        A share of the hold is always inside it; seconds must fall before its end.
        """
        hold = format_duration(hold_seconds)
        if hold_seconds == 0:
            return "the step has no hold for the cue to sound in; give it a 'hold'"
        if self.fraction is not None:
            return None
        if self.before_end and self.seconds > hold_seconds:
            return f"{self} is before the start of the {hold} hold; give a time inside it, or a longer 'hold'"
        if not self.before_end and self.seconds >= hold_seconds:
            where = "past" if self.seconds > hold_seconds else "at"
            return f"{self} is {where} the end of the {hold} hold; give a time inside it, or a longer 'hold'"
        return None


CUE_TIME_HINT = "expected an offset like 30s, -10s (before the end), 50% or half"


def parse_cue_time(node: yaml.Node, ctx: Context) -> CueTime:
    value = scalar(node).strip().lower()
    location = ctx.location(node)
    if value == "half":
        return CueTime(fraction=0.5, location=location)
    try:
        if value.endswith("%"):
            fraction = float(value[:-1]) / 100
            if not 0 <= fraction <= 1:
                raise ValueError(value)
            return CueTime(fraction=fraction, location=location)
        if value.startswith("-"):
            seconds, before_end = parse_duration(value[1:]), True
        else:
            seconds, before_end = parse_duration(value), False
        if seconds > MAX_SECONDS:
            raise ValueError(value)
        return CueTime(seconds=seconds, before_end=before_end, location=location)
    except ValueError:
        raise Invalid(node, f"{CUE_TIME_HINT}, got {value!r}") from None


# ---------------------------------------------------------------- the schema


@dataclass(frozen=True)
class Voice:
    engine: str = key(
        parse_engine,
        "auto (a neural voice for the language if installed, else pyttsx3), pyttsx3 or piper",
        default=AUTO,
    )
    name: str | None = key(
        parse_voice_name,
        "a voice from 'voiceguide voices', or a Piper .onnx file; default: the language's voice",
        default=None,
    )
    speed: float = key(parse_speed, "speaking pace, 1.0 = the voice's normal pace, 0.85 is calmer", default=1.0)
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Cue:
    at: CueTime = key(parse_cue_time, "when, inside the hold: 30s, -10s (before the end), 50% or half")
    say: str | None = key(parse_text, "a short line spoken at that moment", default=None)
    sound: Path | None = key(parse_sound_required, "or a sound played at that moment", default=None)

    @staticmethod
    def rules(known: dict[str, Any]) -> list[str]:
        if "say" in known and "sound" in known and (known["say"] is None) == (known["sound"] is None):
            return ["a cue needs either 'say' or 'sound' (one of them)"]
        return []


def parse_cues(node: yaml.Node, ctx: Context) -> tuple[Cue, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise Invalid(node, f"expected a list of cues, got {describe(node)}")
    path = ctx.key_path
    return tuple(parse_mapping(Cue, item, f"{path}[{index}]", ctx) for index, item in enumerate(node.value))


def parse_countdown_style(node: yaml.Node, ctx: Context) -> str:
    value = scalar(node).strip().lower()
    if value not in ("tick", "voice"):
        raise Invalid(node, f"expected tick or voice, got {value!r}")
    return value


@dataclass(frozen=True)
class Countdown:
    count: int = key(lambda node, ctx: _integer(node, 1, 30, "seconds"), "how many seconds before the hold's end")
    style: str = key(parse_countdown_style, "tick (soft ticks) or voice (spoken numbers)", default="tick")
    location: Location | None = field(default=None, compare=False)


def parse_countdown(node: yaml.Node, ctx: Context) -> Countdown | None:
    if isinstance(node, yaml.ScalarNode) and scalar(node).strip().lower() in ("none", "0", "false"):
        return None
    return scalar_or_mapping(
        node, ctx, lambda n, c: Countdown(count=_integer(n, 1, 30, "seconds"), location=c.location(n)), Countdown
    )


@dataclass(frozen=True)
class Breathe:
    inhale: float = key(parse_seconds, "length of an in-breath", name="in")
    exhale: float = key(parse_seconds, "length of an out-breath", name="out")
    pause: float = key(parse_seconds, "a rest after each in-breath", default=0.0, name="hold")

    @staticmethod
    def rules(known: dict[str, Any]) -> list[str]:
        if any(known.get(name, 1) < 1 for name in ("inhale", "exhale")):
            return ["breaths need 'in' and 'out' of at least 1s each"]
        return []

    @property
    def cycle(self) -> float:
        return self.inhale + self.pause + self.exhale


@dataclass(frozen=True)
class Step:
    name: str = key(parse_text, "short title; becomes the chapter title")
    say: Narration = key(parse_narration, "narration: a string, or a list of lines spoken in turn, with pauses between")
    hold: float = key(parse_seconds, "hands-on time after the narration", default=0.0)
    transition: Path | None = key(
        parse_sound,
        "sound after the step: a built-in name, an audio file, or none",
        default=sounds.builtin_path(DEFAULT_TRANSITION),
    )
    cues: tuple[Cue, ...] = key(parse_cues, "lines or sounds at set moments inside the hold", default=())
    repeat: int = key(parse_repeat, "how many rounds the step runs (e.g. 2 for both sides)", default=1)
    rounds: tuple[str, ...] = key(parse_lines, "a name for each round, added to its chapter title", default=())
    between: Narration = key(parse_narration, "spoken before each round after the first", default=())
    countdown: Countdown | None = key(
        parse_countdown, "ticks or spoken numbers over the hold's last seconds", default=None
    )
    breathe: Breathe | None = key(mapping_of(Breathe), "tones that pace breathing through the hold", default=None)
    min: float | None = key(parse_seconds, "the shortest the hold may become when fitting a length", default=None)
    max: float | None = key(parse_seconds, "the longest the hold may become when fitting a length", default=None)
    flex: bool = key(parse_bool, "false pins the hold to its length when fitting", default=True)
    weight: float = key(parse_weight, "how much of a length change this hold takes (1 is normal)", default=1.0)
    repeatable: bool = key(parse_bool, "may run extra rounds to fill a long --length with --fill repeat", default=False)
    location: Location | None = field(default=None, compare=False)

    @staticmethod
    def rules(known: dict[str, Any]) -> list[str | KeyProblem]:
        broken: list[str | KeyProblem] = []
        rounds, repeat, hold = known.get("rounds"), known.get("repeat"), known.get("hold")
        if rounds and repeat is not None and len(rounds) != repeat:
            broken.append(f"'rounds' names {len(rounds)} rounds but 'repeat' is {repeat}")
        if hold is not None and known.get("min") is not None and known["min"] > hold:
            broken.append(f"'min' ({format_duration(known['min'])}) is longer than 'hold' ({format_duration(hold)})")
        if hold is not None and known.get("max") is not None and known["max"] < hold:
            broken.append(f"'max' ({format_duration(known['max'])}) is shorter than 'hold' ({format_duration(hold)})")
        if hold is not None:
            for index, cue in enumerate(known.get("cues") or ()):
                outside = cue and cue.at.outside(hold)  # a cue with problems of its own is None
                if outside:
                    broken.append(KeyProblem(cue.at.location, f"cues[{index}].at", outside))
        return broken


# Step keys a routine's `defaults:` may set for every step.
DEFAULTABLE = ("hold", "transition", "countdown", "breathe", "min", "max", "flex", "weight", "repeatable")


@dataclass(frozen=True)
class Background:
    sound: Path = key(parse_bed, "a built-in bed (rain, drone) or an audio file, looped")
    level: float = key(parse_level, "loudness relative to the voice, in dB", default=levels.BED_OFFSET)


def parse_background(node: yaml.Node, ctx: Context) -> Background | None:
    if isinstance(node, yaml.ScalarNode) and scalar(node).strip().lower() == "none":
        return None
    return scalar_or_mapping(node, ctx, lambda n, c: Background(sound=parse_bed(n, c)), Background)


def parse_defaults(node: yaml.Node, ctx: Context) -> dict[str, Any]:
    """Step keys that apply to every step that does not set them (read before the steps)."""
    fields = {name: spec for name, spec in declared_keys(Step).items() if spec.name in DEFAULTABLE}
    values, _ = parse_keys(fields, node, ctx.key_path, ctx)
    return values


def parse_steps(node: yaml.Node, ctx: Context) -> tuple[Step, ...]:
    """The steps: each a step of this routine, or `use:`, which takes steps from another routine file."""
    if not isinstance(node, yaml.SequenceNode):
        raise Invalid(node, f"expected a list of steps, got {describe(node)}")
    if not node.value:
        raise Invalid(node, "is empty; a routine needs at least one step")
    if len(node.value) > MAX_STEPS:
        raise Invalid(node, f"has {len(node.value):,} steps; a routine may have at most {MAX_STEPS:,}")
    path = ctx.key_path
    steps: list[Step] = []
    holds, too_long = 0.0, None  # every step speaks too, so holds of 12h in all make the track too long
    for index, item in enumerate(node.value):
        if isinstance(item, yaml.MappingNode) and any(getattr(name, "value", None) == "use" for name, _ in item.value):
            taken = _used_steps(item, f"{path}[{index}]", ctx)
        else:
            taken = [parse_mapping(Step, item, f"{path}[{index}]", ctx)]
        steps += taken
        holds += sum((step.hold * step.repeat for step in taken if step), 0.0)
        if holds >= MAX_SECONDS and too_long is None:
            too_long = Invalid(
                item,
                f"the holds add up to {format_duration(holds)} by {path}[{index}]; a track may be at most "
                f"{format_duration(MAX_SECONDS)}, narration included: shorten them",
            )
    if len(steps) > MAX_STEPS:
        raise Invalid(node, f"has {len(steps):,} steps with those it uses; a routine may have at most {MAX_STEPS:,}")
    if too_long:
        raise too_long
    return tuple(steps)


class _Files(Context):
    """A Context for one routine file among others: which files lead to it (to refuse loops), and every file used.

    `chain` holds the files that use this one, outermost first, as (resolved path, name shown);
    `used` is shared by every file of one load.
    """

    def __init__(self, display_name: str, folder: Path, chain: tuple[tuple[Path, str], ...], used: list[Path]):
        super().__init__(display_name, folder)
        self.chain = chain
        self.used = used
        self.language: str | None = None  # the routine's, read before its steps; None if it is not valid


def parse_used_routine(node: yaml.Node, ctx: Context) -> Routine | None:
    """Another routine file, relative to this one, loaded with this routine's step defaults under its own.

    Its problems are reported in its own file; then None.
    """
    assert isinstance(ctx, _Files)
    value = scalar(node)
    path = (ctx.folder / Path(value).expanduser()).resolve()
    shown = os.path.normpath(Path(ctx.display_name).parent / value)
    chained = [resolved for resolved, _ in ctx.chain]
    if path in chained:
        loop = [name for _, name in ctx.chain[chained.index(path) :]] + [shown]
        raise Invalid(node, f"makes a loop: {' uses '.join(loop)}; a routine cannot use itself, even through another")
    if not path.is_file():
        raise Invalid(node, f"no routine file {value!r} (looked in {ctx.folder})")
    ctx.used.append(path)
    child = _Files(shown, path.parent, (*ctx.chain, (path, shown)), ctx.used)
    try:
        root = compose(read_text(path), shown)
    except RoutineError as error:
        ctx.problems += error.problems
        return None
    routine = _parse_routine(root, child, ctx.defaults.get(Step, {}))
    ctx.problems += child.problems
    return dataclasses.replace(routine, source=Path(shown)) if routine else None


def parse_step_names(node: yaml.Node, ctx: Context) -> tuple[tuple[str, yaml.Node], ...]:
    """Step names, one or a list, each with its node (to point at a name the used routine lacks)."""
    items = node.value if isinstance(node, yaml.SequenceNode) else [node]
    if not items:
        raise Invalid(node, "is an empty list; name the steps to take, or leave 'steps' out to take them all")
    return tuple((parse_text(item, ctx), item) for item in items)


@dataclass(frozen=True)
class Use:
    """Steps taken from another routine: `- use: other.yaml`, and `steps: [...]` to take only some."""

    routine: Routine | None = key(parse_used_routine, "another routine file, relative to this one", name="use")
    steps: tuple[tuple[str, yaml.Node], ...] = key(
        parse_step_names, "only these of its steps, by name, in this order; default: all", default=()
    )


def _used_steps(node: yaml.MappingNode, key_path: str, ctx: Context) -> list[Step]:
    """The steps a `use:` item takes, as its routine file gives them; every missing name is reported."""
    assert isinstance(ctx, _Files)
    values, _ = parse_keys(declared_keys(Use), node, key_path, ctx)
    used: Routine | None = values.get("routine")
    if used is None:
        return []
    if ctx.language and used.language.split("-")[0] != ctx.language.split("-")[0]:
        value_node = next(value for key_node, value in node.value if key_node.value == "use")
        languages = f"is a routine in {used.language!r}, this one is in {ctx.language!r}"
        ctx.report(value_node, f"{key_path}.use", f"{languages}; use routines in one language")
    if "steps" not in values:
        return list(used.steps)
    by_name: dict[str, Step] = {}
    for step in used.steps:
        by_name.setdefault(step.name.casefold(), step)
    chosen = []
    for index, (name, name_node) in enumerate(values["steps"]):
        if name.casefold() in by_name:
            chosen.append(by_name[name.casefold()])
        else:
            names = ", ".join(step.name for step in by_name.values())
            message = f"no step named {name!r} in {used.source}; its steps are: {names}"
            ctx.report(name_node, f"{key_path}.steps[{index}]", message)
    return chosen


@dataclass(frozen=True)
class Routine:
    title: str = key(parse_text, "the track's title (ID3 title and album)")
    steps: tuple[Step, ...] = key(parse_steps, "the steps, in order; at least one")
    description: str | None = key(parse_text, "a sentence or two about the routine (ID3 comment)", default=None)
    author: str | None = key(parse_text, "who wrote the routine (ID3 artist); default: voiceguide", default=None)
    cover: Path | None = key(parse_image, "cover art, a PNG or JPEG file; default: drawn with the title", default=None)
    language: str = key(parse_language, "language of the narration", default=DEFAULT_LANGUAGE)
    voice: Voice = key(mapping_of(Voice), "which voice speaks, and how fast", default=Voice())
    intro: Narration = key(parse_narration, "spoken before the first step", default=())
    outro: Narration = key(parse_narration, "spoken after the last step", default=())
    pronounce: dict[str, str] = key(
        parse_pronounce,
        "words the voice says wrong, with how to say them: {effleurage: eff-luh-rahzh}",
        default_factory=dict,
    )
    background: Background | None = key(parse_background, "an ambient bed under the whole track", default=None)
    defaults: dict[str, Any] = key(
        lambda node, ctx: ctx.defaults.get(Step, {}), "step keys that apply to every step", default_factory=dict
    )
    source: Path | None = field(default=None, compare=False)
    used: tuple[Path, ...] = field(default=(), compare=False)  # the routine files it takes steps from, however deep

    @property
    def name(self) -> str:
        """The routine's file stem: names its outputs (back-pain-relief -> build/back-pain-relief.mp3)."""
        return self.source.stem if self.source else "routine"

    @property
    def voice_settings(self) -> VoiceSettings:
        """What the routine asks of its voice, as voices/ takes it."""
        voice = self.voice
        named_at = str(voice.location) if voice.location else None
        return VoiceSettings(voice.engine, voice.name, voice.speed, self.language, self.pronounce, named_at)


# ---------------------------------------------------------------- loading


def load(path: str | Path) -> Routine:
    """Read and validate a routine file; raise RoutineError listing every problem found."""
    path = Path(path)
    return loads(read_text(path), str(path), path.resolve().parent, source=path)


def loads(text: str, display_name: str, folder: Path, source: Path | None = None) -> Routine:
    """Validate routine YAML given as text; `folder` is where relative sound paths start."""
    chain = ((source.resolve(), display_name),) if source else ()
    ctx = _Files(display_name, folder, chain, used=[])
    routine = _parse_routine(compose(text, display_name), ctx, inherited={})
    if ctx.problems or routine is None:
        raise RoutineError(ctx.problems)
    return dataclasses.replace(routine, source=source, used=tuple(dict.fromkeys(ctx.used)))


def _parse_routine(root: yaml.Node | None, ctx: _Files, inherited: dict[str, Any]) -> Routine | None:
    """A routine from its node tree, or None if it has problems (in ctx.problems).

    `inherited` are the step defaults of the routine using this one: its own defaults come first.
    """
    if root is None:
        ctx.problems.append(f"{ctx.display_name}:1:1: the file is empty; a routine needs a title and steps")
        return None
    _read_first(root, ctx, inherited)
    return parse_mapping(Routine, root, "", ctx)


def _read_first(root: yaml.Node, ctx: _Files, inherited: dict[str, Any]) -> None:
    """Read `defaults:` and `language:` first, wherever they stand in the file: the steps need them."""
    ctx.defaults[Step] = dict(inherited)
    ctx.language = DEFAULT_LANGUAGE
    if not isinstance(root, yaml.MappingNode):
        return
    for key_node, value_node in root.value:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if name == "defaults":
            ctx.key_path = "defaults"
            try:
                ctx.defaults[Step] = {**inherited, **parse_defaults(value_node, ctx)}
            except Invalid as invalid:
                ctx.report(invalid.node, "defaults", str(invalid))
            ctx.key_path = ""
        elif name == "language":
            try:
                ctx.language = parse_language(value_node, ctx)
            except Invalid:  # reported where the routine's keys are parsed
                ctx.language = None
