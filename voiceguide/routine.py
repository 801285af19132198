"""Routine files: the schema, duration syntax, and loading with file:line:column errors.

The schema is declared once, as frozen dataclasses whose fields carry their parser in
`metadata`. One generic walker drives validation from those declarations over the YAML node
tree (not the plain loaded values) so that every problem can name its line and column, and it
collects every problem in the file before raising one `RoutineError`.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from voiceguide import sounds
from voiceguide.errors import RoutineError

MAX_FILE_BYTES = 1_000_000

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

    def location(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.display_name, mark.line + 1, mark.column + 1)

    def report(self, node: yaml.Node, key_path: str, message: str) -> None:
        where = f"{key_path}: " if key_path else ""
        self.problems.append(f"{self.location(node)}: {where}{message}")


Parser = Callable[[yaml.Node, _Context], Any]


def key(parse: Parser, doc: str, default: Any = dataclasses.MISSING, name: str | None = None):
    """Declare a routine key: its parser, a one-line description, its default, its YAML name."""
    return field(default=default, metadata={"parse": parse, "doc": doc, "key": name})


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
    """The inverse of parse_duration, for messages: 400 -> '6m40s', 45.5 -> '45.5s'."""
    total = round(seconds, 1)
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
        return parse_duration(value)
    except ValueError:
        raise _Invalid(node, f"{DURATION_HINT}, got {value!r}") from None


def parse_speed(node: yaml.Node, ctx: _Context) -> float:
    value = _scalar(node)
    try:
        speed = float(value)
    except ValueError:
        speed = math.nan
    if not 0.5 <= speed <= 2.0:
        raise _Invalid(node, f"expected a number from 0.5 to 2.0 (1.0 is the voice's normal pace), got {value!r}")
    return speed


def parse_language(node: yaml.Node, ctx: _Context) -> str:
    value = _scalar(node)
    if not re.fullmatch(r"[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*", value):
        raise _Invalid(node, f"expected a language code like en, fr or en-us, got {value!r}")
    return value.lower().replace("_", "-")


def parse_engine(node: yaml.Node, ctx: _Context) -> str:
    from voiceguide.voices import ENGINE_NAMES

    value = _scalar(node)
    if value not in ENGINE_NAMES:
        raise _Invalid(node, f"unknown engine {value!r}; expected one of {', '.join(ENGINE_NAMES)}")
    return value


def parse_sound(node: yaml.Node, ctx: _Context) -> Path | None:
    """A built-in sound name, a path to an audio file (relative to the routine), or none."""
    value = _scalar(node)
    if value.lower() == "none":
        return None
    try:
        return sounds.resolve(value, ctx.folder)
    except ValueError as error:
        raise _Invalid(node, str(error)) from None


# ---------------------------------------------------------------- the schema


@dataclass(frozen=True)
class Voice:
    engine: str = key(parse_engine, "text-to-speech engine: pyttsx3", default="pyttsx3")
    name: str | None = key(parse_text, "the engine's voice name or id; default: the language's voice", default=None)
    speed: float = key(parse_speed, "speaking pace, 1.0 = the voice's normal pace, 0.85 is calmer", default=1.0)


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
    location: Location | None = field(default=None, compare=False)


def parse_steps(node: yaml.Node, ctx: _Context) -> tuple[Step, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise _Invalid(node, f"expected a list of steps, got {_describe(node)}")
    if not node.value:
        raise _Invalid(node, "is empty; a routine needs at least one step")
    return tuple(_parse_mapping(Step, item, f"steps[{index}]", ctx) for index, item in enumerate(node.value))


def parse_voice(node: yaml.Node, ctx: _Context) -> Voice:
    return _parse_mapping(Voice, node, "voice", ctx)


@dataclass(frozen=True)
class Routine:
    title: str = key(parse_text, "the track's title (ID3 title and album)")
    steps: tuple[Step, ...] = key(parse_steps, "the steps, in order; at least one")
    description: str | None = key(parse_text, "a sentence or two about the routine (ID3 comment)", default=None)
    language: str = key(parse_language, "language of the narration", default="en")
    voice: Voice = key(parse_voice, "which voice speaks, and how fast", default=Voice())
    intro: tuple[str, ...] = key(parse_lines, "spoken before the first step", default=())
    outro: tuple[str, ...] = key(parse_lines, "spoken after the last step", default=())
    source: Path | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        """The routine's file stem: names its outputs (back-pain-relief -> build/back-pain-relief.mp3)."""
        return self.source.stem if self.source else "routine"


# ---------------------------------------------------------------- the walker


def _parse_mapping(cls, node: yaml.Node, key_path: str, ctx: _Context):
    """Build `cls` from a mapping node, reporting every problem; returns None if any."""
    if not isinstance(node, yaml.MappingNode):
        ctx.report(node, key_path, f"expected a mapping of keys, got {_describe(node)}")
        return None
    fields = {f.metadata.get("key") or f.name: f for f in dataclasses.fields(cls) if "parse" in f.metadata}
    problems_before = len(ctx.problems)
    values: dict[str, Any] = {}
    seen: set[str] = set()
    for key_node, value_node in node.value:
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        child_path = f"{key_path}.{name}" if key_path else str(name)
        if name not in fields:
            ctx.report(key_node, child_path, _unknown_key_message(name, fields))
            continue
        if name in seen:
            ctx.report(key_node, child_path, "is given twice; keep one")
            continue
        seen.add(name)
        spec = fields[name]
        try:
            values[spec.name] = spec.metadata["parse"](value_node, ctx)
        except _Invalid as invalid:
            ctx.report(invalid.node, child_path, str(invalid))
    for name, spec in fields.items():
        if name not in seen and spec.default is dataclasses.MISSING:
            ctx.report(node, key_path, f"missing required key '{name}' ({spec.metadata['doc']})")
    if len(ctx.problems) > problems_before:
        return None
    if "location" in {f.name for f in dataclasses.fields(cls)}:
        values["location"] = ctx.location(node)
    return cls(**values)


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
    routine = _parse_mapping(Routine, root, "", ctx)
    if ctx.problems:
        raise RoutineError(ctx.problems)
    return dataclasses.replace(routine, source=source)


def _compose(text: str, display_name: str) -> yaml.Node | None:
    """The YAML node tree (safe tags only), with merge keys (<<) applied."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        _flatten_merges(loader, root, set())
        return root
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        raise RoutineError([f"{display_name}:{where}: YAML syntax error: {error.problem or error.context}"]) from None
    except yaml.YAMLError as error:
        raise RoutineError([f"{display_name}:1:1: YAML error: {error}"]) from None
    finally:
        loader.dispose()


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
