"""Many routines at once: finding a folder's routines, building each, and pruning the clip cache to what they use.

A routine that fails does not stop the others: its error is part of its outcome, and the
caller reports it and decides the exit status.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from voiceguide import provenance
from voiceguide import routine as routines
from voiceguide.build import SILENT, BuildOptions, Outcome, Reporter, build, check_lengths
from voiceguide.errors import RoutineError, VoiceguideError
from voiceguide.islands import FrameCache
from voiceguide.timeline import spoken_lines
from voiceguide.voices.cache import ClipCache, Usage
from voiceguide.voices.choice import voice_request
from voiceguide.voices.clips import line_keys
from voiceguide.voices.pool import WarmWorkers

DEFAULT_FOLDER = Path("routines")


def find_routines(paths: Sequence[Path]) -> list[Path]:
    """The routines in `paths`: each file as given, and each folder's *.yaml files in name order; routines/ if none.

    Raises VoiceguideError if there are none, or if two would be built into the same files.
    """
    found: list[Path] = []
    for path in paths or [DEFAULT_FOLDER]:
        found += sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    found = list(dict.fromkeys(found))
    if not found:
        where = ", ".join(str(path) for path in paths or [DEFAULT_FOLDER])
        raise VoiceguideError(f"no routines (*.yaml) in {where}; give a routine file, or a folder of them")
    stems = [path.stem for path in found]
    twins = [str(path) for path in found if stems.count(path.stem) > 1]
    if twins:
        raise VoiceguideError(f"{', '.join(twins)} would be built into the same files; rename all but one")
    return found


def build_one(
    routine: Path, options: BuildOptions, reporter: Reporter, warm: WarmWorkers | None = None
) -> list[Outcome]:
    """Build one routine, at each of options.lengths when several, and report each outcome.

    A user error becomes an outcome instead of stopping the caller. Every length is checked
    first, so one the routine cannot reach fails before anything is voiced. With `warm`,
    synthesis runs on the workers kept there.
    """
    try:
        check_lengths(routine, options)
    except VoiceguideError as error:
        failed = Outcome(routine, error=error)
        reporter.finished(failed)
        return [failed]
    outcomes = []
    for each in options.each_length():
        try:
            outcome = Outcome(routine, result=build(routine, each, reporter, warm))
        except VoiceguideError as error:
            outcome = Outcome(routine, error=error)
        reporter.finished(outcome)
        outcomes.append(outcome)
    return outcomes


def build_routines(
    paths: Sequence[Path], options: BuildOptions = BuildOptions(), reporter: Reporter = SILENT
) -> list[Outcome]:
    """Build every routine in `paths` (see find_routines) that is not up to date, going on past failures.

    The reporter hears each routine's outcome as soon as it is known.
    """
    return [outcome for routine in find_routines(paths) for outcome in build_one(routine, options, reporter)]


@dataclass(frozen=True)
class PruneResult:
    removed: Usage  # clips no routine uses
    frames_freed: int  # bytes of encoded stretches of sound (all: builds make them again)
    sentences_freed: int  # bytes of voiced sentences (all: builds voice them again)
    kept: Usage
    routines: int


def prune_cache(paths: Sequence[Path], output_dir: Path = Path("build"), cache_dir: Path | None = None) -> PruneResult:
    """Remove the clips in the clip cache (CACHE_DIR, None for the user's) that no routine in `paths` uses any more.

    The routines are found by find_routines.

    A routine uses the clips of its lines in the voice it resolves to, as a plain build would,
    and in every voice its outputs in OUTPUT_DIR were last built with (say, with --engine).
    The encoded stretches of sound (islands.py) and the voiced sentences (piper_engine.py) are
    all removed: a build makes what it needs again. Nothing is removed unless every routine
    loads and finds its voice.
    """
    found = find_routines(paths)
    cache = ClipCache(cache_dir)
    keep: set[str] = set()
    problems: list[str] = []
    for path in found:
        try:
            routine = routines.load(path)
            request = voice_request(routine.voice_settings)
        except RoutineError as error:
            problems += error.problems
            continue
        except VoiceguideError as error:
            problems.append(f"{path}: {error}")
            continue
        lines = spoken_lines(routine)
        for prefix in {None, *provenance.recorded_voices(output_dir, routine.name)}:
            keep.update(line_keys(lines, request, prefix).values())
    if problems:
        problems.append(f"nothing was removed from {cache.folder}; fix the routines, or name those to keep")
        raise RoutineError(problems)
    removed = cache.prune(keep)
    frames_freed = FrameCache(cache.folder).clear()
    return PruneResult(removed, frames_freed, cache.clear_sentences(), cache.usage(), len(found))
