"""What an output was built from, so an unchanged routine is not built again, and a rebuild says what changed.

Each build records in its JSON sidecar, under "built_from", a digest of everything that shapes
the track: the routine file, every sound and image it uses (by content, not file times), the
voice that speaks (the same string its clip keys start with: engine, version, voice, speed),
the options that shape the MP3, and voiceguide's version. Under "outputs" it records a digest
of every file it wrote. An output is up to date when the same inputs give the same digest and
every recorded output is still the file that was written, so an interrupted build is never
mistaken for a finished one. Extra formats (the M4B) are made from the MP3, so asking for one
more, or one fewer, leaves an up-to-date MP3 as it is.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from voiceguide import __version__, sounds
from voiceguide.document import TimelineDocument
from voiceguide.files import not_a_file
from voiceguide.routine import Routine
from voiceguide.timeline import TICK
from voiceguide.voices.clips import voice_key
from voiceguide.voices.pool import VoiceRequest

BUILT_FROM = "built_from"
OUTPUTS = "outputs"
TITLES_SHOWN = 4  # a report names at most this many chapters of each kind


@dataclass(frozen=True)
class Inputs:
    """What a build is made from; `digest` covers it all."""

    voiceguide: str  # its version
    voice: str  # the voice as clip keys start with it: engine, version, voice, speed
    options: Mapping[str, Any]  # the build options that shape the output besides the voice
    files: Mapping[str, str | None]  # each input file's digest, by the name a report gives it

    def _content(self) -> dict[str, Any]:
        options, files = dict(self.options), dict(self.files)
        return {"voiceguide": self.voiceguide, "voice": self.voice, "options": options, "files": files}

    @property
    def digest(self) -> str:
        return _sha256(json.dumps(self._content(), sort_keys=True).encode())

    def as_json(self) -> dict[str, Any]:
        return {"digest": self.digest, **self._content()}


@dataclass(frozen=True)
class Recorded:
    """What the last build's JSON sidecar says, read leniently: it may be an older voiceguide's, or edited by hand."""

    built_from: Mapping[str, Any]  # its Inputs as written (see Inputs.as_json); empty if none
    outputs: Mapping[str, Any]  # the digest of each file it wrote, by name; empty if none
    routine: Any  # the routine's name, as written
    document: TimelineDocument | None


def input_files(routine: Routine) -> dict[str, Path]:
    """Every file the track is made from (the routine, those it takes steps from, its cover, its sounds).

    By the name a report gives each.
    """
    assert routine.source is not None, "a routine loaded from a file knows it"
    used: list[Path | None] = [*routine.used, routine.cover, routine.background.sound if routine.background else None]
    for step in routine.steps:
        used += [step.transition, *(cue.sound for cue in step.cues)]
        if step.countdown and step.countdown.style == "tick":
            used.append(sounds.builtin_path(TICK))
    folder = routine.source.resolve().parent
    files = {routine.source.name: routine.source}
    for path in filter(None, used):
        if path.parent == sounds.BUILTIN_DIR:
            name = f"{path.stem} (built-in)"
        else:
            name = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
        files.setdefault(name, path)
    return files


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str | None:
    """The file's content digest, or None if it cannot be read; read in pieces, so a long MP3 takes little memory.

    Only a regular file is read (a device or a pipe never ends): the routine is digested before it is
    loaded, and loading then says what is wrong with it.
    """
    if not_a_file(path):
        return None
    try:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def record(routine: Routine, routine_digest: str | None, request: VoiceRequest, options: Mapping[str, Any]) -> Inputs:
    """What a build of `routine` in this voice, with these options, is made from, with one digest of it all.

    `routine_digest` is the routine file's, read before it was loaded: had it been read after,
    a save in between would be recorded as built. The other files are read here, before the
    build reads them, for the same reason.
    """
    files = {
        name: routine_digest if path == routine.source else file_digest(path)
        for name, path in input_files(routine).items()
    }
    return Inputs(__version__, voice_key(request), options, files)


def output_digests(paths: list[Path]) -> dict[str, str | None]:
    """Each written file's digest, by its name in the output folder."""
    return {path.name: file_digest(path) for path in paths}


def previous_build(mp3: Path) -> Recorded | None:
    """What the JSON sidecar the last build of `mp3` wrote says, or None if there is none that can be read."""
    return _read_recorded(mp3.with_suffix(".json"))


def _read_recorded(path: Path) -> Recorded | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    document = TimelineDocument.from_json(data)
    return Recorded(_section(data, BUILT_FROM), _section(data, OUTPUTS), data.get("routine"), document)


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def up_to_date(previous: Recorded | None, inputs: Inputs, folder: Path, extras: frozenset[str] = frozenset()) -> bool:
    """Whether the last build had these inputs, and every file it wrote in `folder` is still as it wrote it.

    The files named in `extras` (extra formats, made from the MP3) are not looked at.
    """
    if previous is None or previous.built_from.get("digest") != inputs.digest or not previous.outputs:
        return False
    return all(
        digest is not None and file_digest(folder / Path(name).name) == digest
        for name, digest in previous.outputs.items()
        if Path(name).name not in extras
    )


def output_current(previous: Recorded | None, path: Path) -> bool:
    """Whether the last build wrote `path` and it is still as written."""
    digest = previous.outputs.get(path.name) if previous else None
    return digest is not None and file_digest(path) == digest


def changes(previous: Recorded | None, inputs: Inputs, document: TimelineDocument) -> tuple[str, ...]:
    """What differs from the previous build, in words for the report: inputs, then chapters whose words changed.

    Empty for a first build, and when no input changed (a forced rebuild, or an output was missing).
    """
    if previous is None:
        return ()
    before = previous.built_from
    said: list[str] = []
    if before:
        old_files = _section(before, "files")
        said += [name for name, digest in inputs.files.items() if old_files.get(name) != digest]
        if before.get("voice") != inputs.voice:
            said.append("the voice")
        if before.get("options") != inputs.options:
            said.append("the options")
        if before.get("voiceguide") != inputs.voiceguide:
            said.append(f"voiceguide {before.get('voiceguide')} -> {inputs.voiceguide}")
    return tuple(said + _changed_words(previous.document, document))


def _words(document: TimelineDocument) -> dict[str, list[list[str | None]]]:
    """Each chapter's spoken lines, cues included, by chapter title (a title used twice keeps both, in order)."""
    lines: list[list[str | None]] = [[] for _ in document.chapters]
    for event in document.events:
        if event.kind == "speech":
            lines[event.chapter].append(event.text)
    by_title: dict[str, list[list[str | None]]] = {}
    for chapter, spoken in zip(document.chapters, lines, strict=True):
        by_title.setdefault(chapter.title, []).append(spoken)
    return by_title


def _changed_words(previous: TimelineDocument | None, document: TimelineDocument) -> list[str]:
    if previous is None:  # a sidecar from an older voiceguide, or edited by hand
        return []
    before = _words(previous)
    after = _words(document)
    phrases = [
        ("the words of", [title for title in after if title in before and after[title] != before[title]]),
        ("new", [title for title in after if title not in before]),
        ("no more", [title for title in before if title not in after]),
    ]
    return [f"{what} {_titles(titles)}" for what, titles in phrases if titles]


def _titles(titles: list[str]) -> str:
    shown = ", ".join(f'"{title}"' for title in titles[:TITLES_SHOWN])
    more = len(titles) - TITLES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


def recorded_voices(folder: Path, routine_name: str) -> set[str]:
    """The voices (clip-key prefixes) the outputs of `routine_name` in `folder` were last built with."""
    voices = set()
    for sidecar in folder.glob("*.json"):
        recorded = _read_recorded(sidecar)
        voice = recorded.built_from.get("voice") if recorded else None
        if recorded and recorded.routine == routine_name and isinstance(voice, str):
            voices.add(voice)
    return voices
