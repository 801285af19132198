"""Watch mode: build routines, then build each again whenever it, or a sound or cover it uses, is saved.

Files are polled for their size, modification time and inode ten times a second: no extra
dependency, and the same on every system. A save is read once the file has stopped changing.
A build that fails is reported and leaves the last good output in place; the routine is built
again at its next save. Folders are scanned again at each poll, so a new routine is built too.

The synthesis workers live as long as the watch, each routine's voice loaded from the start,
so a save voices its changed lines at once instead of first starting the engine.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from voiceguide import provenance
from voiceguide import routine as routines
from voiceguide.batch import build_one, find_routines
from voiceguide.build import SILENT, BuildOptions, Reporter
from voiceguide.errors import VoiceguideError
from voiceguide.voices.cache import ClipCache
from voiceguide.voices.choice import voice_request
from voiceguide.voices.pool import WarmWorkers, default_workers

POLL_SECONDS = 0.1
SETTLE_SECONDS = 0.05  # a saved file is read once it has not changed for this long

Stamps = dict[Path, tuple[int, int, int] | None]  # file -> (modified ns, size, inode), None while missing


def watch(
    paths: Sequence[Path],
    options: BuildOptions = BuildOptions(),
    reporter: Reporter = SILENT,
    stop: Callable[[], bool] = lambda: False,
    poll: float = POLL_SECONDS,
) -> None:
    """Build each routine in `paths` (see find_routines), then again whenever its files change, until `stop()`.

    The reporter hears which files were saved before each build again, and each build's outcome.
    """
    found = find_routines(paths)
    stamped: dict[Path, Stamps] = {}  # each routine's files as they were when its last build started
    with WarmWorkers() as warm:
        while not stop():
            for routine in found:
                before = stamped.get(routine)
                if before is not None:
                    saved = [path for path, stamp in _stamps(list(before)).items() if stamp != before[path]]
                    if not saved:
                        continue
                    _settle(list(before))
                    reporter.saved(routine, saved)
                stamped[routine] = _stamps(_files(routine))
                build_one(routine, options, reporter, warm)
                if before is None:
                    _warm_up(warm, routine, options)
            time.sleep(poll)
            with contextlib.suppress(VoiceguideError):  # the folder is empty for now: keep watching what was there
                found = find_routines(paths)


def _warm_up(warm: WarmWorkers, routine: Path, options: BuildOptions) -> None:
    """Start the workers of `routine`'s voice in the background, so its first save need not wait for them.

    Builds after that keep their workers in `warm` (for a voice changed meanwhile, too)."""
    try:
        request = voice_request(routines.load(routine).voice_settings, options.voice)
    except VoiceguideError:  # reported by its build
        return
    warm.warm(request, ClipCache(options.cache_dir).folder, options.workers or default_workers())


def _files(routine: Path) -> list[Path]:
    """The routine file and every file it uses; just the routine file while it does not load."""
    try:
        return list(provenance.input_files(routines.load(routine)).values())
    except VoiceguideError:
        return [routine]


def _stamps(files: Sequence[Path]) -> Stamps:
    stamps: Stamps = {}
    for path in files:
        try:
            status = os.stat(path)
        except OSError:
            stamps[path] = None
        else:
            stamps[path] = (status.st_mtime_ns, status.st_size, status.st_ino)
    return stamps


def _settle(files: list[Path]) -> None:
    """Wait until `files` stop changing, so a save still being written is not read half done."""
    stamps = _stamps(files)
    while True:
        time.sleep(SETTLE_SECONDS)
        again = _stamps(files)
        if again == stamps:
            return
        stamps = again
