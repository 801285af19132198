"""The YAML walker under routine files: reading within limits, composing safely, parsing declared keys.

A schema is declared as frozen dataclasses whose fields carry their parser in `metadata` (see
`key`). The walker drives validation from those declarations over the YAML node tree (not the
plain loaded values), so that every problem can name its line and column, and it collects
every problem in the file rather than stopping at the first.
"""

from __future__ import annotations

import dataclasses
import difflib
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from voiceguide.errors import RoutineError
from voiceguide.files import not_a_file

MAX_FILE_BYTES = 1_000_000
MAX_NODES = 200_000  # YAML nodes after aliases and merges are expanded: refuses "alias bombs"


class Invalid(Exception):
    """A value failed validation; carries the node to point at and the message."""

    def __init__(self, node: yaml.Node, message: str):
        self.node = node
        super().__init__(message)


@dataclass(frozen=True)
class KeyProblem:
    """A rule across keys broken at a key below the mapping, like `cues[1].at`, rather than at the mapping."""

    location: Location | None  # None: the mapping's own
    key: str  # below the mapping
    message: str


@dataclass(frozen=True)
class Location:
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Context:
    """What a parser needs besides its node: where the file is, and the problems so far."""

    def __init__(self, display_name: str, folder: Path):
        self.display_name = display_name
        self.folder = folder
        self.problems: list[str] = []
        self.key_path = ""  # the key being parsed, like steps[3].hold
        self.defaults: dict[type, dict[str, Any]] = {}  # field values a class takes where its mapping omits them

    def location(self, node: yaml.Node) -> Location:
        mark = node.start_mark
        return Location(self.display_name, mark.line + 1, mark.column + 1)

    def report(self, node: yaml.Node, key_path: str, message: str) -> None:
        self.report_at(self.location(node), key_path, message)

    def report_at(self, location: Location, key_path: str, message: str) -> None:
        where = f"{key_path}: " if key_path else ""
        self.problems.append(f"{location}: {where}{message}")


Parser = Callable[[yaml.Node, Context], Any]


def key(
    parse: Parser,
    doc: str,
    default: Any = dataclasses.MISSING,
    name: str | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """Declare a key of a schema dataclass: its parser, a one-line description, its default, its YAML name."""
    metadata = {"parse": parse, "doc": doc, "key": name}
    return field(default=default, default_factory=default_factory, metadata=metadata)


def scalar(node: yaml.Node) -> str:
    """The text of a single, non-empty value."""
    if not isinstance(node, yaml.ScalarNode):
        raise Invalid(node, f"expected a single value, got {describe(node)}")
    if node.tag == "tag:yaml.org,2002:null" and not node.style:  # unquoted: '' (libyaml) or None
        if not node.value:
            raise Invalid(node, "is empty; give it a value")
        raise Invalid(node, f"is {node.value}, which YAML reads as no value; give a value (in quotes to mean the word)")
    return node.value


def describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return repr(node.value)


def mapping_of(cls: type) -> Parser:
    """A parser for a nested mapping of `cls`'s keys."""
    return lambda node, ctx: parse_mapping(cls, node, ctx.key_path, ctx)


def scalar_or_mapping(node: yaml.Node, ctx: Context, scalar_parser: Parser, cls: type) -> Any:
    """A value given either as one scalar (its main field) or as a mapping of `cls`'s keys."""
    if isinstance(node, yaml.ScalarNode):
        return scalar_parser(node, ctx)
    return parse_mapping(cls, node, ctx.key_path, ctx)


def declared_keys(cls: type) -> dict[str, dataclasses.Field]:
    """The fields of `cls` that a mapping may give, by their YAML name."""
    return {f.metadata.get("key") or f.name: f for f in dataclasses.fields(cls) if "parse" in f.metadata}


def parse_keys(
    fields: dict[str, dataclasses.Field], node: yaml.Node, key_path: str, ctx: Context
) -> tuple[dict[str, Any], set[str]]:
    """Parse the keys of a mapping node that `fields` declares; report unknown, repeated and bad ones.

    Returns the parsed values by field name, and the key names that were given.
    """
    values: dict[str, Any] = {}
    seen: set[str] = set()
    if not isinstance(node, yaml.MappingNode):
        ctx.report(node, key_path, f"expected a mapping of keys, got {describe(node)}")
        return values, seen
    for index, (key_node, value_node) in enumerate(node.value):
        name = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        shown = name if name and re.fullmatch(r"[\w-]+", name) else repr(name)
        child_path = f"{key_path}.{shown}" if key_path else shown
        if name not in fields:
            split = _split_at_comma(node, index)
            if split is None:
                ctx.report(key_node, child_path, _unknown_key_message(name, fields))
            elif split:  # the first piece of the text; the pieces after it were cut from the same text
                message = f"unknown key; text with a comma needs quotes inside {{braces}}: {split}"
                ctx.report(key_node, child_path, message)
            continue
        if name in seen:
            ctx.report(key_node, child_path, "is given twice; keep one")
            continue
        seen.add(name)
        spec = fields[name]
        ctx.key_path = child_path
        try:
            values[spec.name] = spec.metadata["parse"](value_node, ctx)
        except Invalid as invalid:
            ctx.report(invalid.node, child_path, str(invalid))
        finally:
            ctx.key_path = key_path
    return values, seen


def parse_mapping(cls: type, node: yaml.Node, key_path: str, ctx: Context) -> Any:
    """Build `cls` from a mapping node, reporting every problem; returns None if any.

    A class may declare rules across its keys: a static `rules(known)` that takes the values
    known (parsed, inherited or default; not those that failed or are missing) and returns what
    breaks them: a message about the mapping, or a KeyProblem at a key below it. They are
    checked even when other keys are wrong, so every problem shows at once.
    """
    fields = declared_keys(cls)
    problems_before = len(ctx.problems)
    values, seen = parse_keys(fields, node, key_path, ctx)
    if not isinstance(node, yaml.MappingNode):
        return None
    inherited = ctx.defaults.get(cls, {})
    known = dict(values)
    for name, spec in fields.items():
        if name in seen:
            continue
        if spec.name in inherited:
            values[spec.name] = known[spec.name] = inherited[spec.name]
        elif spec.default is not dataclasses.MISSING:
            known[spec.name] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            known[spec.name] = spec.default_factory()
        else:
            ctx.report(node, key_path, f"missing required key '{name}' ({spec.metadata['doc']})")
    for broken in getattr(cls, "rules", lambda known: [])(known):
        if isinstance(broken, KeyProblem):
            below = f"{key_path}.{broken.key}" if key_path else broken.key
            ctx.report_at(broken.location or ctx.location(node), below, broken.message)
        else:
            ctx.report(node, key_path, broken)
    if len(ctx.problems) > problems_before:
        return None
    if "location" in {f.name for f in dataclasses.fields(cls)}:
        values["location"] = ctx.location(node)
    return cls(**values)


def _split_at_comma(node: yaml.MappingNode, index: int) -> str | None:
    """The text a {flow mapping} cut at a comma, if the key at `index` is a piece of it, as it should be written.

    In braces a comma ends a value: `{say: Long, slow and even.}` reads as `say: Long` and a key
    `slow and even.` with no value. None if the key is not such a piece (or the pieces are not
    words); "" for a piece after the first.
    """

    def piece(position: int) -> bool:
        key_node, value_node = node.value[position]
        return (
            isinstance(key_node, yaml.ScalarNode)
            and isinstance(value_node, yaml.ScalarNode)
            and value_node.tag == "tag:yaml.org,2002:null"
            and value_node.value == ""
        )

    if not node.flow_style or not piece(index):
        return None
    first = index
    while first > 0 and piece(first - 1):
        first -= 1
    last = index
    while last + 1 < len(node.value) and piece(last + 1):
        last += 1
    if first == 0:
        return None
    key_node, value_node = node.value[first - 1]
    if not isinstance(value_node, yaml.ScalarNode) or not value_node.value:
        return None
    parts = [value_node.value, *(node.value[position][0].value for position in range(first, last + 1))]
    if not any(" " in part or part.endswith((".", "!", "?")) for part in parts):
        return None  # not words, like {hold: 3s, extra}: a plain unknown key
    return f"{key_node.value}: {json.dumps(', '.join(parts), ensure_ascii=False)}" if first == index else ""


def _unknown_key_message(name: str | None, fields: dict[str, dataclasses.Field]) -> str:
    if name is None:
        return "keys must be plain words"
    close = difflib.get_close_matches(name, list(fields), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key; {hint}expected one of {', '.join(fields)}"


def read_text(path: Path) -> str:
    """A routine file's text; RoutineError if it is missing, too large, or not UTF-8 text."""
    display = str(path)
    problem = not_a_file(path)
    if problem and not path.exists():
        raise RoutineError([f"{display}: no such routine file"])
    if problem:
        raise RoutineError([f"{display}: {problem}; a routine is a YAML file"])
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RoutineError([f"{display}:1:1: the file is {size:,} bytes; a routine may be at most 1 MB"])
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RoutineError([f"{display}: no such routine file"]) from None
    except UnicodeDecodeError as error:
        raise RoutineError([f"{display}:1:1: not UTF-8 text ({error.reason} at byte {error.start})"]) from None
    except OSError as error:
        raise RoutineError([f"{display}: cannot read: {error.strerror}"]) from None


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when PyYAML has it: ten times faster


def compose(text: str, display_name: str) -> yaml.Node | None:
    """The YAML node tree (safe tags only), with merge keys (<<) applied."""
    unprintable = yaml.reader.Reader.NON_PRINTABLE.search(text)
    if unprintable:
        line = text.count("\n", 0, unprintable.start()) + 1
        column = unprintable.start() - text.rfind("\n", 0, unprintable.start())
        refused = f"control character {unprintable.group()!r} is not allowed in a routine"
        raise RoutineError([f"{display_name}:{line}:{column}: {refused}"])
    stream = io.StringIO(text)
    stream.name = display_name  # so marks, and messages made from them, name the file
    loader = _LOADER(stream)
    try:
        root = loader.get_single_node()
        if root is not None and _expanded_size(root, {}) > MAX_NODES:
            too_many = f"aliases and merges expand to over {MAX_NODES:,} values; write the routine out plainly"
            raise RoutineError([f"{display_name}:1:1: {too_many}"])
        _flatten_merges(loader, root, set())
        return root
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        tab = _indenting_tab(text, mark.line) if mark else None
        if mark and tab is not None:
            where = f"{display_name}:{mark.line + 1}:{tab + 1}"
            raise RoutineError([f"{where}: a tab indents this line; indent with spaces only"]) from None
        where = f"{mark.line + 1}:{mark.column + 1}" if mark else "1:1"
        raise RoutineError([f"{display_name}:{where}: YAML syntax error: {error.problem or error.context}"]) from None
    except yaml.YAMLError as error:
        raise RoutineError([f"{display_name}:1:1: YAML error: {' '.join(str(error).split())}"]) from None
    finally:
        loader.dispose()


def _indenting_tab(text: str, line: int) -> int | None:
    """The column (from 0) of the first tab in the indentation of `line` (from 0), if there is one.

    YAML forbids tabs there, and says so only as "found character that cannot start any token".
    """
    lines = text.splitlines()
    if line >= len(lines):
        return None
    indentation = lines[line][: len(lines[line]) - len(lines[line].lstrip(" \t-"))]
    return indentation.index("\t") if "\t" in indentation else None


def _expanded_size(node: yaml.Node, sizes: dict[int, int]) -> int:
    """How many values the node becomes once aliases and merges are expanded, counted without
    expanding them (each shared node is measured once), so an "alias bomb" is refused at once."""
    if id(node) in sizes:
        if sizes[id(node)] < 0:
            raise RoutineError([f"{_mark(node)}: an alias refers to itself"])
        return sizes[id(node)]
    sizes[id(node)] = -1
    size = 1
    for child in _children(node):
        size = min(size + _expanded_size(child, sizes), MAX_NODES + 1)
    sizes[id(node)] = size
    return size


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def _mark(node: yaml.Node) -> str:
    return f"{node.start_mark.name}:{node.start_mark.line + 1}:{node.start_mark.column + 1}"


def _flatten_merges(loader: yaml.SafeLoader, node: yaml.Node | None, visited: set[int]) -> None:
    if node is None or id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)
    for child in _children(node):
        _flatten_merges(loader, child, visited)
