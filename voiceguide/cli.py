"""The command line: parse options, call one library function, print what the user needs.

Errors a user can cause arrive as VoiceguideError and leave as one line each on stderr with
exit status 2; nothing else here knows how the work is done.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from voiceguide import __version__, audio
from voiceguide import routine as routines
from voiceguide.build import build as build_routine
from voiceguide.errors import VoiceguideError, RoutineError

EXIT_USER_ERROR = 2


def _user_errors(command):
    """Turn the project's errors into one line each and exit status 2, and Ctrl-C into a message."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except RoutineError as error:
            for problem in error.problems:
                click.echo(f"error: {problem}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except VoiceguideError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("\ninterrupted; earlier outputs are unchanged", err=True)
            sys.exit(130)

    return wrapper


class _TerminalProgress:
    """A one-line progress display on a terminal; silent when stderr is a pipe or --quiet."""

    UNITS = {"voicing": "clips", "rendering": "s of audio"}

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty()
        self.shown = False

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.enabled:
            click.echo(f"\r{stage} {done}/{total} {self.UNITS[stage]}\x1b[K", err=True, nl=False)
            self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", err=True, nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="voiceguide")
def main() -> None:
    """Turn a routine (a YAML file of steps) into one voice-guided MP3 with a chapter per step.

    \b
    Example:
      voiceguide validate routines/back-pain-relief.yaml
      voiceguide build routines/back-pain-relief.yaml    # -> build/back-pain-relief.mp3
    """


@main.command()
@click.argument("routine", type=click.Path(path_type=Path))
@click.option("-o", "--output-dir", type=click.Path(path_type=Path), default=Path("build"), show_default=True,
              help="Folder for the MP3; the clip cache is kept in its cache/ subfolder.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Synthesis worker processes (default: one per core).")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@_user_errors
def build(routine: Path, output_dir: Path, jobs: int | None, quiet: bool) -> None:
    """Build ROUTINE into OUTPUT_DIR/NAME.mp3.

    Each step is narrated, followed by its hands-on hold and its transition sound. Clips are
    cached by content, so a rebuild after an edit voices only the lines that changed.

    \b
    Example:
      voiceguide build routines/back-pain-relief.yaml
    """
    progress = _TerminalProgress(enabled=not quiet)
    try:
        result = build_routine(routine, output_dir, workers=jobs, progress=progress)
    finally:
        progress.clear()
    if not quiet:
        length = routines.format_duration(audio.seconds(result.timeline.length))
        click.echo(
            f"built {result.output} ({length}, {len(result.timeline.chapters)} chapters): "
            f"{result.clips_reused} clips reused, {result.clips_made} new, in {result.elapsed:.1f}s"
        )


@main.command()
@click.argument("routines_to_check", metavar="ROUTINE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@_user_errors
def validate(routines_to_check: tuple[Path, ...]) -> None:
    """Check routine files without making any audio; report every problem with file:line:column.

    \b
    Example:
      voiceguide validate routines/*.yaml
    """
    problems: list[str] = []
    for path in routines_to_check:
        try:
            routine = routines.load(path)
        except RoutineError as error:
            problems.extend(error.problems)
        else:
            click.echo(f"ok: {path} ({len(routine.steps)} steps)")
    if problems:
        raise RoutineError(problems)
