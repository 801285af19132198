"""What an output was built from, so an unchanged routine is not built again, and a rebuild says what changed.

Each build records in its JSON sidecar, under "built_from", a digest of everything that shapes
the track: the routine file, every sound and image it uses (by content, not file times), the
voice that speaks (the same string its clip keys start with: engine, version, voice, speed),
the options, and voiceguide's version. Under "outputs" it records a digest of every file it
wrote. An output is up to date when the same inputs give the same digest and every recorded
output is still the file that was written, so an interrupted build is never mistaken for a
finished one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from voiceguide import __version__, sounds
from voiceguide.routine import Routine
from voiceguide.timeline import TICK
from voiceguide.voices.clips import voice_key
from voiceguide.voices.pool import VoiceRequest

BUILT_FROM = "built_from"
OUTPUTS = "outputs"
TITLES_SHOWN = 4  # a report names at most this many chapters of each kind


def input_files(routine: Routine) -> dict[str, Path]:
    """Every file the track is made from (the routine, its cover, its sounds), by the name a report gives it."""
    used = [routine.cover, routine.background.sound if routine.background else None]
    for step in routine.steps:
        used += [step.transition, *(cue.sound for cue in step.cues)]
        if step.countdown and step.countdown.style == "tick":
            used.append(sounds.builtin_path(TICK))
    folder = routine.source.resolve().parent
    files = {routine.source.name: routine.source}
    for path in used:
        if path is None:
            continue
        if path.parent == sounds.BUILTIN_DIR:
            name = f"{path.stem} (built-in)"
        else:
            name = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
        files.setdefault(name, path)
    return files


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str | None:
    """The file's content digest, or None if it cannot be read; read in pieces, so a long MP3 takes little memory."""
    try:
        with path.open("rb") as file:
            return hashlib.file_digest(file, "sha256").hexdigest()
    except OSError:
        return None


def record(routine: Routine, routine_digest: str | None, request: VoiceRequest, options: dict) -> dict:
    """What a build of `routine` in this voice, with these options, is made from, with one digest of it all.

    `routine_digest` is the routine file's, read before it was loaded: had it been read after,
    a save in between would be recorded as built. The other files are read here, before the
    build reads them, for the same reason.
    """
    files = {
        name: routine_digest if path == routine.source else file_digest(path)
        for name, path in input_files(routine).items()
    }
    inputs = {"voiceguide": __version__, "voice": voice_key(request), "options": options, "files": files}
    return {"digest": _sha256(json.dumps(inputs, sort_keys=True).encode()), **inputs}


def output_digests(paths: list[Path]) -> dict[str, str | None]:
    """Each written file's digest, by its name in the output folder."""
    return {path.name: file_digest(path) for path in paths}


def previous_build(mp3: Path) -> dict | None:
    """The JSON sidecar the last build of `mp3` wrote, or None if there is none that can be read."""
    return _read_document(mp3.with_suffix(".json"))


def _read_document(path: Path) -> dict | None:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def _section(document: dict | None, key: str) -> dict:
    value = (document or {}).get(key)
    return value if isinstance(value, dict) else {}


def up_to_date(previous: dict | None, inputs: dict, folder: Path) -> bool:
    """Whether the last build had these inputs, and every file it wrote in `folder` is still as it wrote it."""
    outputs = _section(previous, OUTPUTS)
    if _section(previous, BUILT_FROM).get("digest") != inputs["digest"] or not outputs:
        return False
    return all(
        digest is not None and file_digest(folder / Path(name).name) == digest for name, digest in outputs.items()
    )


def changes(previous: dict | None, inputs: dict, document: dict) -> tuple[str, ...]:
    """What differs from the previous build, in words for the report: inputs, then chapters whose words changed.

    Empty for a first build, and when no input changed (a forced rebuild, or an output was missing).
    """
    if previous is None:
        return ()
    before = _section(previous, BUILT_FROM)
    said: list[str] = []
    if before:
        old_files = _section(before, "files")
        said += [name for name, digest in inputs["files"].items() if old_files.get(name) != digest]
        if before.get("voice") != inputs["voice"]:
            said.append("the voice")
        if before.get("options") != inputs["options"]:
            said.append("the options")
        if before.get("voiceguide") != inputs["voiceguide"]:
            said.append(f"voiceguide {before.get('voiceguide')} -> {inputs['voiceguide']}")
    return tuple(said + _changed_words(previous, document))


def _words(document: dict) -> dict[str, list[list[str]]]:
    """Each chapter's spoken lines, cues included, by chapter title (a title used twice keeps both, in order)."""
    chapters = document["chapters"]
    lines: list[list[str]] = [[] for _ in chapters]
    for event in document["events"]:
        if event["kind"] == "speech":
            lines[event["chapter"]].append(event["text"])
    by_title: dict[str, list[list[str]]] = {}
    for chapter, spoken in zip(chapters, lines):
        by_title.setdefault(chapter["title"], []).append(spoken)
    return by_title


def _changed_words(previous: dict, document: dict) -> list[str]:
    try:
        before = _words(previous)
    except (KeyError, TypeError, IndexError):  # a sidecar from an older voiceguide, or edited by hand
        return []
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
        document = _read_document(sidecar)
        voice = _section(document, BUILT_FROM).get("voice")
        if document and document.get("routine") == routine_name and isinstance(voice, str):
            voices.add(voice)
    return voices
