"""Routine files: the schema, duration syntax, and loading with file:line:column errors.

The schema is declared once, as frozen dataclasses whose fields carry their parser in
`metadata`. One generic walker drives validation from those declarations over the YAML node
tree (not the plain loaded values) so that every problem can name its line and column, and it
collects every problem in the file before raising one `RoutineError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from voiceguide import cover, sounds
from voiceguide.errors import RoutineError

MAX_FILE_BYTES = 1_000_000
MAX_STEPS = 2000
MAX_LINE_CHARACTERS = 5000
MAX_SECONDS = 12 * 3600  # no duration, and no whole track, may be longer
MAX_NODES = 200_000  # YAML nodes after aliases and merges are expanded: refuses "alias bombs"

DEFAULT_TRANSITION = "chime"


class _Invalid(Exception):
    """A value failed validation; carries the node to point at and the message."""

    def __init__(self, node: yaml.Node, message: str):
        self.node = node
        super().__init__(message)


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class _Context:
    """What a parser needs besides its node: where the file is, and the problems so far."""

    def __init__(self, display_name: str, folder: Path):
        self.display_name = display_name
        self.folder = folder
        self.problems: list[str] = []
        self.key_path = ""  # the key being parsed, like steps[3].hold
        self.step_defaults: dict[str, Any] = {}

    def location(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.display_name, mark.line + 1, mark.column + 1)

    def report(self, node: yaml.Node, key_path: str, message: str) -> None:
        where = f"{key_path}: " if key_path else ""
        self.problems.append(f"{self.location(node)}: {where}{message}")


Parser = Callable[[yaml.Node, _Context], Any]


def key(parse: Parser, doc: str, default: Any = dataclasses.MISSING, name: str | None = None, default_factory=dataclasses.MISSING):
    """Declare a routine key: its parser, a one-line description, its default, its YAML name."""
    metadata = {"parse": parse, "doc": doc, "key": name}
    return field(default=default, default_factory=default_factory, metadata=metadata)


# ---------------------------------------------------------------- value parsers

_DURATION_UNITS = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)
_DURATION_CLOCK = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d{2}(?:\.\d+)?)$")
DURATION_HINT = "expected a duration like 45s, 1m30s, 2m or 1:30"


def parse_duration(text: str) -> float:
    """Seconds in `text` ('45', '45s', '1m30s', '2m', '1h', '1:30', '1:02:30'); ValueError if not one."""
    compact = text.strip().lower().replace(" ", "")
    if not compact:
        raise ValueError(text)
    try:
        seconds = float(compact)
    except ValueError:
        match = _DURATION_CLOCK.match(compact) or _DURATION_UNITS.match(compact)
        if not match or not any(match.groupdict().values()):
            raise ValueError(text) from None
        parts = {unit: float(value or 0) for unit, value in match.groupdict().items()}
        seconds = parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(text)
    return seconds


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration, for messages: 400 -> '6m40s', 45.5 -> '45.5s'.

    Tenths of a second are shown only under a minute, where they matter.
    """
    total = round(seconds, 1) if seconds < 60 else round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{int(hours)}h" if hours else "") + (f"{int(minutes)}m" if minutes else "")
    if secs or not text:
        text += f"{secs:g}s"
    return text


def _scalar(node: yaml.Node) -> str:
    if not isinstance(node, yaml.ScalarNode):
        raise _Invalid(node, f"expected a single value, got {_describe(node)}")
    if node.tag == "tag:yaml.org,2002:null" and node.style is None:
        raise _Invalid(node, "is empty; give it a value")
    return node.value


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(node.value)


def parse_text(node: yaml.Node, ctx: _Context) -> str:
    text = " ".join(_scalar(node).split())
    if not text:
        raise _Invalid(node, "is empty; give it some text")
    if len(text) > MAX_LINE_CHARACTERS:
        raise _Invalid(node, f"is {len(text):,} characters; split it into lines of at most {MAX_LINE_CHARACTERS:,}")
    return text


def parse_lines(node: yaml.Node, ctx: _Context) -> tuple[str, ...]:
    """A string, or a list of strings spoken in turn."""
    if isinstance(node, yaml.SequenceNode):
        if not node.value:
            raise _Invalid(node, "is an empty list; give at least one line to say")
        return tuple(parse_text(item, ctx) for item in node.value)
    return (parse_text(node, ctx),)


def parse_seconds(node: yaml.Node, ctx: _Context) -> float:
    value = _scalar(node)
    try:
        seconds = parse_duration(value)
    except ValueError:
        raise _Invalid(node, f"{DURATION_HINT}, got {value!r}") from None
    if seconds > MAX_SECONDS:
        raise _Invalid(node, f"is longer than {format_duration(MAX_SECONDS)}, the longest a track may be")
    return seconds


def _number(node: yaml.Node, accept: Callable[[float], bool], expected: str) -> float:
    """A number that `accept` allows (NaN never is), else an error saying what was `expected`."""
    value = _scalar(node)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not accept(number):
        raise _Invalid(node, f"expected {expected}, got {value!r}")
    return number


def parse_speed(node: yaml.Node, ctx: _Context) -> float:
    return _number(node, lambda speed: 0.5 <= speed <= 2.0, "a number from 0.5 to 2.0 (1.0 is the voice's normal pace)")


def parse_language(node: yaml.Node, ctx: _Context) -> str:
    value = _scalar(node)
    if not re.fullmatch(r"[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*", value):
        raise _Invalid(node, f"expected a language code like en, fr or en-us, got {value!r}")
    return value.lower().replace("_", "-")


def parse_engine(node: yaml.Node, ctx: _Context) -> str:
    from voiceguide.voices import ENGINE_CHOICES

    value = _scalar(node)
    if value not in ENGINE_CHOICES:
        raise _Invalid(node, f"unknown engine {value!r}; expected one of {', '.join(ENGINE_CHOICES)}")
    return value


def parse_voice_name(node: yaml.Node, ctx: _Context) -> str:
    """A voice name, or the path of a Piper .onnx model (relative to the routine)."""
    from voiceguide.voices.piper_engine import MODEL_SUFFIX

    name = parse_text(node, ctx)
    if not name.endswith(MODEL_SUFFIX):
        return name
    path = ctx.folder / Path(name).expanduser()
    if not path.is_file():
        raise _Invalid(node, f"voice model {name!r} does not exist (looked in {ctx.folder})")
    return str(path.absolute())


def parse_pronounce(node: yaml.Node, ctx: _Context) -> dict[str, str]:
    """Words mapped to how the voice should say them; every problem is reported."""
    if not isinstance(node, yaml.MappingNode):
        raise _Invalid(node, f"expected a mapping of word: spoken form, like effleurage: eff-luh-rahzh, got {_describe(node)}")
    spellings: dict[str, str] = {}
    for key_node, value_node in node.value:
        try:
            word = parse_text(key_node, ctx)
            if word.lower() in (known.lower() for known in spellings):
                raise _Invalid(key_node, "is given twice (words match in any case); keep one")
            spellings[word] = parse_text(value_node, ctx)
        except _Invalid as invalid:
            ctx.report(invalid.node, f"{ctx.key_path}.{getattr(key_node, 'value', '')}", str(invalid))
    return spellings


def parse_sound(node: yaml.Node, ctx: _Context) -> Path | None:
    """A built-in sound name, a path to an audio file (relative to the routine), or none."""
    value = _scalar(node)
    if value.lower() == "none":
        return None
    try:
        return sounds.resolve(value, ctx.folder)
    except ValueError as error:
        raise _Invalid(node, str(error)) from None


def parse_sound_required(node: yaml.Node, ctx: _Context) -> Path:
    sound = parse_sound(node, ctx)
    if sound is None:
        raise _Invalid(node, "needs a sound: a built-in name or an audio file")
    return sound


def parse_image(node: yaml.Node, ctx: _Context) -> Path:
    """A PNG or JPEG file, relative to the routine."""
    path = ctx.folder / Path(_scalar(node)).expanduser()
    try:
        cover.check_image(path)
    except ValueError as error:
        raise _Invalid(node, str(error)) from None
    return path


def _integer(node: yaml.Node, low: int, high: int, what: str) -> int:
    value = _scalar(node)
    if not re.fullmatch(r"\d+", value.strip()) or not low <= int(value) <= high:
        raise _Invalid(node, f"expected a whole number of {what} from {low} to {high}, got {value!r}")
    return int(value)


def parse_repeat(node: yaml.Node, ctx: _Context) -> int:
    return _integer(node, 1, 20, "rounds")


def parse_bool(node: yaml.Node, ctx: _Context) -> bool:
    value = _scalar(node)
    if node.tag != "tag:yaml.org,2002:bool":
        raise _Invalid(node, f"expected true or false, got {value!r}")
    return value.lower() in ("true", "yes", "on", "y")


def parse_weight(node: yaml.Node, ctx: _Context) -> float:
    return _number(node, lambda weight: 0 < weight <= 100, "a number above 0 (1 is normal, 2 takes twice the change)")


def parse_level(node: yaml.Node, ctx: _Context) -> float:
    """Decibels relative to the voice, like -20 or -20dB; at most 0."""
    value = _scalar(node)
    try:
        level = float(re.sub(r"\s*db$", "", value.strip(), flags=re.IGNORECASE))
    except ValueError:
        level = math.nan
    if not -60 <= level <= 0:
        raise _Invalid(node, f"expected a level in dB below the voice, from -60 to 0 (like -20dB), got {value!r}")
    return level


@dataclass(frozen=True)
class CueTime:
    """When a cue sounds inside a hold: seconds from its start, seconds before its end, or a fraction."""

    seconds: float | None = None
    before_end: bool = False
    fraction: float | None = None

    def offset(self, hold_seconds: float) -> float:
        if self.fraction is not None:
            return hold_seconds * self.fraction
        return hold_seconds - self.seconds if self.before_end else self.seconds

    def latest_start(self) -> float:
        """How long the hold must be for this cue to fall inside it (0 for fractions)."""
        return 0.0 if self.fraction is not None else self.seconds


CUE_TIME_HINT = "expected an offset like 30s, -10s (before the end), 50% or half"


def parse_cue_time(node: yaml.Node, ctx: _Context) -> CueTime:
    value = _scalar(node).strip().lower()
    if value == "half":
        return CueTime(fraction=0.5)
    try:
        if value.endswith("%"):
            fraction = float(value[:-1]) / 100
            if not 0 <= fraction <= 1:
                raise ValueError(value)
            return CueTime(fraction=fraction)
        if value.startswith("-"):
            seconds, before_end = parse_duration(value[1:]), True
        else:
            seconds, before_end = parse_duration(value), False
        if seconds > MAX_SECONDS:
            raise ValueError(value)
        return CueTime(seconds=seconds, before_end=before_end)
    except ValueError:
        raise _Invalid(node, f"{CUE_TIME_HINT}, got {value!r}") from None


def mapping_of(cls) -> Parser:
    """A parser for a nested mapping of `cls`'s keys."""
    return lambda node, ctx: _parse_mapping(cls, node, ctx.key_path, ctx)


def _scalar_or_mapping(node: yaml.Node, ctx: _Context, scalar_parser: Parser, cls):
    """A value given either as one scalar (its main field) or as a mapping of `cls`'s keys."""
    if isinstance(node, yaml.ScalarNode):
        return scalar_parser(node, ctx)
    return _parse_mapping(cls, node, ctx.key_path, ctx)


# ---------------------------------------------------------------- the schema


@dataclass(frozen=True)
class Voice:
    engine: str = key(
        parse_engine, "auto (a neural voice for the language if installed, else pyttsx3), pyttsx3 or piper", default="auto"
    )
    name: str | None = key(
        parse_voice_name, "a voice from 'voiceguide voices', or a Piper .onnx file; default: the language's voice", default=None
    )
    speed: float = key(parse_speed, "speaking pace, 1.0 = the voice's normal pace, 0.85 is calmer", default=1.0)
    location: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Cue:
    at: CueTime = key(parse_cue_time, "when, inside the hold: 30s, -10s (before the end), 50% or half")
    say: str | None = key(parse_text, "a short line spoken at that moment", default=None)
    sound: Path | None = key(parse_sound_required, "or a sound played at that moment", default=None)

    def __post_init__(self):
        if (self.say is None) == (self.sound is None):
            raise ValueError("a cue needs either 'say' or 'sound' (one of them)")


def parse_cues(node: yaml.Node, ctx: _Context) -> tuple[Cue, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise _Invalid(node, f"expected a list of cues, got {_describe(node)}")
    path = ctx.key_path
    return tuple(_parse_mapping(Cue, item, f"{path}[{index}]", ctx) for index, item in enumerate(node.value))


def parse_countdown_style(node: yaml.Node, ctx: _Context) -> str:
    value = _scalar(node).strip().lower()
    if value not in ("tick", "voice"):
        raise _Invalid(node, f"expected tick or voice, got {value!r}")
    return value


@dataclass(frozen=True)
class Countdown:
    count: int = key(lambda node, ctx: _integer(node, 1, 30, "seconds"), "how many seconds before the hold's end")
    style: str = key(parse_countdown_style, "tick (soft ticks) or voice (spoken numbers)", default="tick")


def parse_countdown(node: yaml.Node, ctx: _Context) -> Countdown | None:
    if isinstance(node, yaml.ScalarNode) and _scalar(node).strip().lower() in ("none", "0", "false"):
        return None
    return _scalar_or_mapping(node, ctx, lambda n, c: Countdown(count=_integer(n, 1, 30, "seconds")), Countdown)


@dataclass(frozen=True)
class Breathe:
    inhale: float = key(parse_seconds, "length of an in-breath", name="in")
    exhale: float = key(parse_seconds, "length of an out-breath", name="out")
    pause: float = key(parse_seconds, "a rest after each in-breath", default=0.0, name="hold")

    def __post_init__(self):
        if self.inhale < 1 or self.exhale < 1:
            raise ValueError("breaths need 'in' and 'out' of at least 1s each")

    @property
    def cycle(self) -> float:
        return self.inhale + self.pause + self.exhale


@dataclass(frozen=True)
class Step:
    name: str = key(parse_text, "short title; becomes the chapter title")
    say: tuple[str, ...] = key(parse_lines, "narration: a string, or a list of strings spoken in turn")
    hold: float = key(parse_seconds, "hands-on time after the narration", default=0.0)
    transition: Path | None = key(
        parse_sound,
        "sound after the step: a built-in name, an audio file, or none",
        default=sounds.builtin_path(DEFAULT_TRANSITION),
    )
    cues: tuple[Cue, ...] = key(parse_cues, "lines or sounds at set moments inside the hold", default=())
    repeat: int = key(parse_repeat, "how many rounds the step runs (e.g. 2 for both sides)", default=1)
    rounds: tuple[str, ...] = key(parse_lines, "a name for each round, added to its chapter title", default=())
    between: tuple[str, ...] = key(parse_lines, "spoken before each round after the first", default=())
    countdown: Countdown | None = key(parse_countdown, "ticks or spoken numbers over the hold's last seconds", default=None)
    breathe: Breathe | None = key(mapping_of(Breathe), "tones that pace breathing through the hold", default=None)
    min: float | None = key(parse_seconds, "the shortest the hold may become when fitting a length", default=None)
    max: float | None = key(parse_seconds, "the longest the hold may become when fitting a length", default=None)
    flex: bool = key(parse_bool, "false pins the hold to its length when fitting", default=True)
    weight: float = key(parse_weight, "how much of a length change this hold takes (1 is normal)", default=1.0)
    repeatable: bool = key(parse_bool, "may run extra rounds to fill a long --length with --fill repeat", default=False)
    location: Location | None = field(default=None, compare=False)

    def __post_init__(self):
        if self.rounds and len(self.rounds) != self.repeat:
            raise ValueError(f"'rounds' names {len(self.rounds)} rounds but 'repeat' is {self.repeat}")
        if self.min is not None and self.min > self.hold:
            raise ValueError(f"'min' ({format_duration(self.min)}) is longer than 'hold' ({format_duration(self.hold)})")
        if self.max is not None and self.max < self.hold:
            raise ValueError(f"'max' ({format_duration(self.max)}) is shorter than 'hold' ({format_duration(self.hold)})")


# Step keys a routine's `defaults:` may set for every step.
DEFAULTABLE = ("hold", "transition", "countdown", "breathe", "min", "max", "flex", "weight", "repeatable")


@dataclass(frozen=True)
class Background:
    sound: Path = key(parse_sound_required, "a built-in bed (rain, drone) or an audio file, looped")
    level: float = key(parse_level, "loudness relative to the voice, in dB", default=-22.0)


def parse_background(node: yaml.Node, ctx: _Context) -> Background | None:
    if isinstance(node, yaml.ScalarNode) and _scalar(node).strip().lower() == "none":
        return None
    return _scalar_or_mapping(node, ctx, lambda n, c: Background(sound=parse_sound_required(n, c)), Background)


def parse_defaults(node: yaml.Node, ctx: _Context) -> dict[str, Any]:
    """Step keys that apply to every step that does not set them (read before the steps)."""
    fields = {f.metadata.get("key") or f.name: f for f in dataclasses.fields(Step) if f.name in DEFAULTABLE}
    values, _ = _parse_keys(fields, node, ctx.key_path, ctx)
    return values


def parse_steps(node: yaml.Node, ctx: _Context) -> tuple[Step, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise _Invalid(node, f"expected a list of steps, got {_describe(node)}")
    if not node.value:
        raise _Invalid(node, "is empty; a routine needs at least one step")
    if len(node.value) > MAX_STEPS:
        raise _Invalid(node, f"has {len(node.value):,} steps; a routine may have at most {MAX_STEPS:,}")
    path = ctx.key_path
    return tuple(_parse_mapping(Step, item, f"{path}[{index}]", ctx) for index, item in enumerate(node.value))


@dataclass(frozen=True)
class Routine:
    title: str = key(parse_text, "the track's title (ID3 title and album)")
    steps: tuple[Step, ...] = key(parse_steps, "the steps, in order; at least one")
    description: str | None = key(parse_text, "a sentence or two about the routine (ID3 comment)", default=None)
    author: str | None = key(parse_text, "who wrote the routine (ID3 artist); default: voiceguide", default=None)
    cover: Path | None = key(parse_image, "cover art, a PNG or JPEG file; default: drawn with the title", default=None)
    language: str = key(parse_language, "language of the narration", default="en")
    voice: Voice = key(mapping_of(Voice), "which voice speaks, and how fast", default=Voice())
    intro: tuple[str, ...] = key(parse_lines, "spoken before the first step", default=())
    outro: tuple[str, ...] = key(parse_lines, "spoken after the last step", default=())
    pronounce: dict[str, str] = key(
        parse_pronounce, "words the voice says wrong, with how to say them: {effleurage: eff-luh-rahzh}", default_factory=dict
    )
    background: Background | None = key(parse_background, "an ambient bed under the whole track", default=None)
    defaults: dict = key(lambda node, ctx: ctx.step_defaults, "step keys that apply to every step", default_factory=dict)
    source: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """The routine's file stem: names its outputs (back-pain-relief -> build/back-pain-relief.mp3)."""
        return self.source.stem if self.source else "routine"


# ---------------------------------------------------------------- the walker


def _parse_keys(fields: dict, node: yaml.Node, key_path: str, ctx: _Context) -> tuple[dict[str, Any], set[str]]:
    """Parse the keys of a mapping node that `fields` declares; report unknown, repeated and bad ones.

    Returns the parsed values by field name, and the key names that were given.
    """
    values: dict[str, Any] = {}
    seen: set[str] = set()
    if not isinstance(node, yaml.MappingNode):
        ctx.report(node, key_path, f"expected a mapping of keys, got {_describe(node)}")
        return values, seen
    for key_node, value_node in node.value:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        shown = name if name and re.fullmatch(r"[\w-]+", name) else repr(name)
        child_path = f"{key_path}.{shown}" if key_path else shown
        if name not in fields:
            ctx.report(key_node, child_path, _unknown_key_message(name, fields))
            continue
        if name in seen:
            ctx.report(key_node, child_path, "is given twice; keep one")
            continue
        seen.add(name)
        spec = fields[name]
        ctx.key_path = child_path
        try:
            values[spec.name] = spec.metadata["parse"](value_node, ctx)
        except _Invalid as invalid:
            ctx.report(invalid.node, child_path, str(invalid))
        finally:
            ctx.key_path = key_path
    return values, seen


def _parse_mapping(cls, node: yaml.Node, key_path: str, ctx: _Context):
    """Build `cls` from a mapping node, reporting every problem; returns None if any."""
    fields = {f.metadata.get("key") or f.name: f for f in dataclasses.fields(cls) if "parse" in f.metadata}
    problems_before = len(ctx.problems)
    values, seen = _parse_keys(fields, node, key_path, ctx)
    if not isinstance(node, yaml.MappingNode):
        return None
    for name, spec in fields.items():
        if name in seen:
            continue
        if cls is Step and spec.name in ctx.step_defaults:
            values[spec.name] = ctx.step_defaults[spec.name]
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            ctx.report(node, key_path, f"missing required key '{name}' ({spec.metadata['doc']})")
    if len(ctx.problems) > problems_before:
        return None
    if "location" in {f.name for f in dataclasses.fields(cls)}:
        values["location"] = ctx.location(node)
    try:
        return cls(**values)
    except ValueError as error:  # a rule across keys, checked in __post_init__
        ctx.report(node, key_path, str(error))
        return None


def _unknown_key_message(name: str | None, fields: dict) -> str:
    if name is None:
        return "keys must be plain words"
    close = difflib.get_close_matches(name, list(fields), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key; {hint}expected one of {', '.join(fields)}"


def load(path: str | Path) -> Routine:
    """Read and validate a routine file; raise RoutineError listing every problem found."""
    path = Path(path)
    display = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RoutineError([f"{display}:1:1: the file is {size:,} bytes; a routine may be at most 1 MB"])
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RoutineError([f"{display}: no such routine file"]) from None
    except IsADirectoryError:
        raise RoutineError([f"{display}: is a folder, not a routine file"]) from None
    except UnicodeDecodeError as error:
        raise RoutineError([f"{display}:1:1: not UTF-8 text ({error.reason} at byte {error.start})"]) from None
    except OSError as error:
        raise RoutineError([f"{display}: cannot read: {error.strerror}"]) from None
    return loads(text, display, path.resolve().parent, source=path)


def loads(text: str, display_name: str, folder: Path, source: Path | None = None) -> Routine:
    """Validate routine YAML given as text; `folder` is where relative sound paths start."""
    ctx = _Context(display_name, folder)
    root = _compose(text, display_name)
    if root is None:
        raise RoutineError([f"{display_name}:1:1: the file is empty; a routine needs a title and steps"])
    _read_step_defaults(root, ctx)
    routine = _parse_mapping(Routine, root, "", ctx)
    if ctx.problems:
        raise RoutineError(ctx.problems)
    return dataclasses.replace(routine, source=source)


def _read_step_defaults(root: yaml.Node, ctx: _Context) -> None:
    """Read `defaults:` first, wherever it stands in the file, so every step can use it."""
    if not isinstance(root, yaml.MappingNode):
        return
    for key_node, value_node in root.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == "defaults":
            ctx.key_path = "defaults"
            try:
                ctx.step_defaults = parse_defaults(value_node, ctx)
            except _Invalid as invalid:
                ctx.report(invalid.node, "defaults", str(invalid))
            ctx.key_path = ""


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it: ten times faster


def _compose(text: str, display_name: str) -> yaml.Node | None:
    """The YAML node tree (safe tags only), with merge keys (<<) applied."""
    unprintable = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if unprintable:
        line = text.count("\n", 0, unprintable.start()) + 1
        column = unprintable.start() - text.rfind("\n", 0, unprintable.start())
        raise RoutineError([f"{display_name}:{line}:{column}: control character {unprintable.group()!r} is not allowed in a routine"])
    stream = io.StringIO(text)
    stream.name = display_name  # so marks, and messages made from them, name the file
    loader = _LOADER(stream)
    try:
        root = loader.get_single_node()
        if root is not None and _expanded_size(root, {}) > MAX_NODES:
            raise RoutineError([f"{display_name}:1:1: aliases and merges expand to over {MAX_NODES:,} values; write the routine out plainly"])
        _flatten_merges(loader, root, set())
        return root
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        raise RoutineError([f"{display_name}:{where}: YAML syntax error: {error.problem or error.context}"]) from None
    except yaml.YAMLError as error:
        raise RoutineError([f"{display_name}:1:1: YAML error: {' '.join(str(error).split())}"]) from None
    finally:
        loader.dispose()


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the node becomes once aliases and merges are expanded, counted without
    expanding them (each shared node is measured once), so an "alias bomb" is refused at once."""
    if id(node) in sizes:
        if sizes[id(node)] < 0:
            raise RoutineError([f"{_mark(node)}: an alias refers to itself"])
        return sizes[id(node)]
    sizes[id(node)] = -1
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    size = 1
    for child in children:
        size = min(size + _expanded_size(child, sizes), MAX_NODES + 1)
    sizes[id(node)] = size
    return size


def _mark(node: yaml.Node) -> str:
    return f"{node.start_mark.name}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _flatten_merges(loader: yaml.SafeLoader, node: yaml.Node | None, visited: set[int]) -> None:
    if node is None or id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        return
    for child in children:
        _flatten_merges(loader, child, visited)
