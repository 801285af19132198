"""The command line: parse options, call one library function, print what the user needs.

Errors a user can cause arrive as VoiceguideError and leave as one line each on stderr with
exit status 2; nothing else here knows how the work is done.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import signal
import sys
import threading
import time
import unicodedata
from pathlib import Path

import click

from voiceguide import __version__, audio, words
from voiceguide import routine as routines
from voiceguide.batch import build_routines, prune_cache
from voiceguide.build import BuildOptions, BuildResult, Outcome, Reporter, UpToDate, plan_routine
from voiceguide.built import Track
from voiceguide.durations import DURATION_HINT, format_duration, parse_duration
from voiceguide.errors import RoutineError, VoiceguideError
from voiceguide.lan import qr_code
from voiceguide.play import KEY_HELP
from voiceguide.play import Status as PlayStatus
from voiceguide.play import play as play_track
from voiceguide.preview import preview
from voiceguide.serve import DEFAULT_HOST, DEFAULT_PORT, Serving, serve
from voiceguide.sidecars import clock
from voiceguide.starter import DEFAULT_FOLDER, new_routine
from voiceguide.urls import FEED
from voiceguide.voices import ENGINE_CHOICES, ENGINE_NAMES
from voiceguide.voices.cache import CACHE_DIR_VARIABLE, ClipCache
from voiceguide.voices.choice import VoiceOverride, catalogue
from voiceguide.voices.pool import VoiceRequest
from voiceguide.watch import watch as watch_routines

EXIT_USER_ERROR = 2


def _user_errors(command):
    """Turn the project's errors into one line each and exit status 2, and Ctrl-C into a message."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except VoiceguideError as error:
            for line in _error_lines(error):
                _echo(f"error: {line}", err=True)
            sys.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt as stop:
            how = "terminated" if isinstance(stop, _Terminated) else "interrupted"
            _echo(f"\n{how}; earlier outputs are unchanged", err=True)
            sys.exit(_stop_status(stop))

    return wrapper


class _Terminated(KeyboardInterrupt):
    """A polite kill (SIGTERM): unwinds like Ctrl-C, so half-written files are removed on the way out."""


def _interrupt(signum, frame) -> None:
    raise _Terminated


def _stop_status(stop: KeyboardInterrupt) -> int:
    """What a shell expects of a process a signal stopped: 128 + its number (130 for Ctrl-C, 143 for SIGTERM)."""
    return 128 + (signal.SIGTERM if isinstance(stop, _Terminated) else signal.SIGINT)


def _echo(message: str = "", err: bool = False, nl: bool = True) -> None:
    """click.echo through _printable: what is printed may come from a routine, an MP3 or a file name."""
    click.echo(_printable(message), err=err, nl=nl)


def _printable(text: str) -> str:
    """`text` with control characters (ESC, BEL, NUL, ...) written as escapes: a terminal shows, never obeys, them."""
    return "".join(char if char == "\n" or unicodedata.category(char) != "Cc" else repr(char)[1:-1] for char in text)


def _error_lines(error: VoiceguideError, routine: Path | None = None) -> list[str]:
    """One line per problem: a routine's problems each name their file, line and column.

    With `routine` (when several are checked or built), any other line that does not start with
    it is prefixed with it, so every line says which routine it is about.
    """
    if isinstance(error, RoutineError):
        return error.problems
    line = str(error)
    return [line if routine is None or line.startswith(str(routine)) else f"{routine}: {line}"]


class _TerminalProgress:
    """A progress bar on a terminal: the stage, the bar, done/total and the time left, redrawn in place.

    Silent with --quiet, and plain when stderr is a pipe or a dumb terminal: nothing is drawn,
    so logs get no carriage returns; the summary lines still say what was done.
    """

    UNITS = {"voicing": "clips", "rendering": "s of audio"}
    WIDTH = 24  # characters in the bar
    REDRAW_SECONDS = 0.1

    def __init__(self, enabled: bool):
        self.enabled = enabled and sys.stderr.isatty() and os.environ.get("TERM") != "dumb"
        self.shown = False
        self.stage = ""
        self.started = 0.0
        self.drawn = -float("inf")
        self.done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if stage != self.stage or done < self.done:  # a new stage, or the next routine's
            self.stage, self.started = stage, now
        self.done = done
        if now - self.drawn < self.REDRAW_SECONDS and done < total:
            return
        self.drawn = now
        filled = round(self.WIDTH * done / total) if total else self.WIDTH
        elapsed = now - self.started
        left = ""
        if 0 < done < total and elapsed >= 1:
            left = f", {clock(elapsed * (total - done) / done)} left"
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        click.echo(f"\r{stage} [{bar}] {done}/{total} {self.UNITS[stage]}{left}\x1b[K", err=True, nl=False)
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            click.echo("\r\x1b[K", err=True, nl=False)
            self.shown = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="voiceguide")
def main() -> None:
    """Turn a routine (a YAML file of steps) into one voice-guided MP3 with a chapter per step.

    \b
    Example:
      voiceguide validate routines/back-pain-relief.yaml
      voiceguide build routines/back-pain-relief.yaml    # -> build/back-pain-relief.mp3
    """
    # Ctrl-C is restored too, for a process started with SIGINT ignored (a shell's background job).
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, signal.default_int_handler)


class _Lengths(click.ParamType):
    """Lengths like 20m, 1h15m or 45:00, comma-separated when `several` (10m,20m,30m), as whole numbers of samples.

    A bare number under a minute (20) is refused: it would be seconds, and was surely meant as minutes.
    """

    name = "duration"

    def __init__(self, several: bool):
        self.several = several

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value  # already converted (a default)
        lengths = tuple(dict.fromkeys(self._length(text.strip(), param, ctx) for text in value.split(",")))
        if self.several:
            return lengths
        if len(lengths) > 1:
            self.fail(f"plan shows one length at a time, got {value!r}; build takes several", param, ctx)
        return lengths[0]

    def _length(self, text: str, param, ctx) -> int:
        try:
            seconds = parse_duration(text)
        except ValueError:
            self.fail(f"{DURATION_HINT}, got {text!r}", param, ctx)
        if seconds <= 0:
            self.fail("must be longer than 0s", param, ctx)
        if re.fullmatch(r"\d+(\.\d+)?", text) and seconds < 60:
            meant = f"{text} alone would be {text} seconds; write {text}m for minutes ({text}s if you mean seconds)"
            self.fail(meant, param, ctx)
        return audio.samples(seconds)


def _jobs_option(command):
    return click.option(
        "-j", "--jobs", type=click.IntRange(min=1), default=None,
        help="Synthesis worker processes (default: one per core).",
    )(command)


def _output_dir_option(command):
    return click.option(
        "-o", "--output-dir", type=click.Path(path_type=Path), default=Path("build"), show_default=True,
        help="Folder for the MP3 and its sidecars.",
    )(command)


def _cache_dir_option(command):
    return click.option(
        "--cache-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
        help=f"The clip cache (default: ${CACHE_DIR_VARIABLE}, else your user cache folder, shared by every build).",
    )(command)


def _length_options(several: bool):
    """--length (several, comma-separated, if `several`) and --fill."""

    def decorate(command):
        command = click.option(
            "--fill", type=click.Choice(["none", "repeat"]), default="none", show_default=True,
            help="Beyond every hold's max, 'repeat' runs extra rounds of steps marked repeatable.",
        )(command)
        return click.option(
            "--length", "lengths" if several else "length", type=_Lengths(several), default=None,
            help="Fit the track to this length (e.g. 20m): the holds stretch or shrink."
            + (" Several, comma-separated (10m,20m,30m), build one track each." if several else ""),
        )(command)

    return decorate


def _voice_options(command):
    """--engine, --voice and --speed, which override the routine's voice; the command gets `voice`."""

    @functools.wraps(command)
    def wrapper(*args, engine: str | None, voice_name: str | None, speed: float | None, **kwargs):
        return command(*args, voice=VoiceOverride(engine, voice_name, speed), **kwargs)

    wrapper = click.option(
        "--speed", type=click.FloatRange(0.5, 2.0), default=None,
        help="Speaking pace for every engine: 1.0 is the voice's normal pace, 0.85 is calmer.",
    )(wrapper)
    wrapper = click.option(
        "--voice", "voice_name", metavar="NAME",
        help="A voice from 'voiceguide voices', or a Piper .onnx model file.",
    )(wrapper)
    return click.option(
        "--engine", type=click.Choice(ENGINE_CHOICES), default=None,
        help="auto: a neural voice for the routine's language if one is installed, else pyttsx3. "
        "Another engine than the routine's drops its voice name.",
    )(wrapper)


def _echo_warnings(timeline) -> None:
    for warning in timeline.warnings:
        _echo(f"warning: {warning}", err=True)
    for note in timeline.notes:
        _echo(f"note: {note}", err=True)


def _format_option(command):
    return click.option(
        "--format", "formats", type=click.Choice(["mp3", "m4b"]), multiple=True,
        help="m4b: also make NAME.m4b, an audiobook with the same chapters (needs ffmpeg).",
    )(command)


def _quiet_option(command):
    return click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")(command)


def _verbose_option(command):
    return click.option(
        "-v", "--verbose", is_flag=True, expose_value=False, callback=_show_log,
        help="Also print each stage of the work as it starts (the library's log messages).",
    )(command)


_LOG = logging.StreamHandler()


def _show_log(ctx, param, verbose: bool) -> None:
    """Send voiceguide's log messages (INFO and up) to stderr with -v; by default only its warnings show."""
    library = logging.getLogger("voiceguide")
    library.removeHandler(_LOG)
    if verbose:
        _LOG.setStream(sys.stderr)
        _LOG.setFormatter(_PrintableFormatter("%(name)s: %(message)s"))
        library.addHandler(_LOG)
    library.setLevel(logging.INFO if verbose else logging.WARNING)


class _PrintableFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return _printable(super().format(record))


def _routines_argument(command):
    return click.argument("paths", metavar="[ROUTINE|FOLDER]...", nargs=-1, type=click.Path(path_type=Path))(command)


def _build_options(
    output_dir: Path, cache_dir: Path | None, lengths: tuple[int, ...] | None, fill: str, voice: VoiceOverride,
    jobs: int | None, formats: tuple[str, ...], force: bool = False,
) -> BuildOptions:
    return BuildOptions(
        output_dir=output_dir, cache_dir=cache_dir, lengths=lengths or (), fill_repeat=fill == "repeat", voice=voice,
        m4b="m4b" in formats, workers=jobs, force=force,
    )


def _several(paths: tuple[Path, ...]) -> bool:
    """Whether PATHS may hold more than one routine: then errors name their routine, and a total is printed."""
    return len(paths) != 1 or paths[0].is_dir()


class _TerminalReporter(Reporter):
    """What build, watch and preview print: voice, progress, a summary per routine, what changed; errors on stderr."""

    def __init__(self, quiet: bool, several: bool, lengths: int = 1):
        self.quiet = quiet
        self.several = several
        self.lengths = lengths  # tracks asked of each routine
        self.bar = _TerminalProgress(enabled=not quiet)

    def progress(self, stage: str, done: int, total: int) -> None:
        self.bar(stage, done, total)

    def voice_chosen(self, request: VoiceRequest) -> None:
        if not self.quiet:
            _echo(f"voice: {request}")

    def saved(self, routine: Path, files: list[Path]) -> None:
        if not self.quiet:
            _echo(f"saved: {', '.join(str(path) for path in files)}")

    def finished(self, outcome: Outcome) -> None:
        self.bar.clear()
        if outcome.error is not None:
            for line in _error_lines(outcome.error, outcome.routine if self.several else None):
                _echo(f"error: {line}", err=True)
            return
        if self.quiet:
            return
        result = outcome.result
        assert result is not None  # no error, so a result
        if isinstance(result, UpToDate):
            made = "".join(f"; made {path} from it" for path in result.made)
            _echo(f"up to date: {result.output}{made}")
            return
        _echo_warnings(result.timeline)
        _echo(
            f"built {result.output} ({_duration(result.timeline.length)}, "
            f"{words.count(len(result.timeline.chapters), 'chapter')}, "
            f"voice {result.encoded.speech_loudness:.1f} LUFS, track {result.encoded.loudness:.1f} LUFS, "
            f"peak {result.encoded.true_peak:.1f} dBTP): "
            f"{words.count(result.clips_reused, 'clip')} reused, {result.clips_made} new, in {result.elapsed:.1f}s"
        )
        if result.changes:
            _echo(f"changed: {'; '.join(result.changes)}")
        _echo(f"beside it: {', '.join(path.name for path in result.files)}")

    def total(self, outcomes: list[Outcome]) -> None:
        """Counts of what was built, when there were several routines or lengths; exit 2 if any failed."""
        if (self.several or self.lengths > 1) and not self.quiet:
            # A routine whose lengths failed their check made one outcome, not one per length.
            asked = len({outcome.routine for outcome in outcomes}) * self.lengths
            built = sum(1 for outcome in outcomes if isinstance(outcome.result, BuildResult))
            fresh = sum(1 for outcome in outcomes if isinstance(outcome.result, UpToDate))
            noun = "track" if self.lengths > 1 else "routine"
            _echo(f"{words.count(asked, noun)}: {built} built, {fresh} up to date, {asked - built - fresh} failed")
        if any(outcome.error is not None for outcome in outcomes):
            sys.exit(EXIT_USER_ERROR)


def _build_choices(command):
    """The options `build` and `watch` share: where, how long, which voice, how many workers, what format."""
    lengths = _length_options(several=True)
    for option in reversed((_routines_argument, _output_dir_option, _cache_dir_option, lengths, _voice_options,
                            _jobs_option, _format_option)):
        command = option(command)
    return command


@main.command()
@_build_choices
@click.option("--force", is_flag=True, help="Build even the routines that are up to date.")
@_quiet_option
@_verbose_option
@_user_errors
def build(
    paths: tuple[Path, ...], output_dir: Path, cache_dir: Path | None, lengths: tuple[int, ...] | None, fill: str,
    voice: VoiceOverride, jobs: int | None, formats: tuple[str, ...], force: bool, quiet: bool,
) -> None:
    """Build routines into MP3s with chapters; those already up to date are skipped.

    Builds each ROUTINE, and every *.yaml in each FOLDER (routines/ when none is given), into
    OUTPUT_DIR/NAME.mp3 (NAME-20m.mp3 with --length 20m; with --length 10m,20m,30m, one track
    for each length, voiced once; every length is checked before any work starts). Each step is narrated, followed by
    its hands-on hold and its transition sound. Beside the MP3 come NAME.html (a player page),
    NAME.vtt (captions), NAME.md (a script to print) and NAME.json (the timeline, and what the
    build was made from).

    A routine whose inputs did not change since its last build (the routine, the sounds and
    cover it uses, the voice, these options, voiceguide's version) is up to date and is not
    built again; --force builds it anyway. Clips are cached by content, so a rebuild after an
    edit voices only the lines that changed. A routine with errors does not stop the others;
    the exit status is 2 if any failed.

    \b
    Examples:
      voiceguide build                                   # every routine in routines/
      voiceguide build routines/back-pain-relief.yaml
      voiceguide build routines/back-pain-relief.yaml --length 30m
      voiceguide build routines/back-pain-relief.yaml --length 10m,20m,30m
      voiceguide build routines/back-pain-relief.yaml --engine pyttsx3 --voice "English (America)"
      voiceguide build routines/back-pain-relief.yaml --format m4b
    """
    reporter = _TerminalReporter(quiet, _several(paths), len(lengths) if lengths else 1)
    options = _build_options(output_dir, cache_dir, lengths, fill, voice, jobs, formats, force)
    try:
        outcomes = build_routines(paths, options, reporter)
    finally:
        reporter.bar.clear()
    reporter.total(outcomes)


@main.command(name="watch")
@_build_choices
@_quiet_option
@_verbose_option
@_user_errors
def watch_command(
    paths: tuple[Path, ...], output_dir: Path, cache_dir: Path | None, lengths: tuple[int, ...] | None, fill: str,
    voice: VoiceOverride, jobs: int | None, formats: tuple[str, ...], quiet: bool,
) -> None:
    """Build routines, then again whenever one (or a sound or cover it uses) is saved.

    Takes what 'build' takes. It says which file was saved, what changed and where the new MP3 is. A routine saved with
    an error gets the error printed and keeps its last good MP3; it is built again when fixed.
    Files are checked ten times a second. Ctrl-C stops.

    \b
    Examples:
      voiceguide watch                                   # every routine in routines/
      voiceguide watch routines/back-pain-relief.yaml --engine pyttsx3
    """
    reporter = _TerminalReporter(quiet, _several(paths), len(lengths) if lengths else 1)
    if not quiet:
        _echo(f"watching {', '.join(str(path) for path in paths) or 'routines/'}; Ctrl-C stops")
    try:
        watch_routines(paths, _build_options(output_dir, cache_dir, lengths, fill, voice, jobs, formats), reporter)
    except KeyboardInterrupt as stop:
        reporter.bar.clear()
        _echo("stopped watching")
        if isinstance(stop, _Terminated):
            sys.exit(_stop_status(stop))


def _duration(samples: int) -> str:
    return format_duration(audio.seconds(samples))


@main.command(name="plan")
@click.argument("routine", type=click.Path(path_type=Path))
@_cache_dir_option
@_length_options(several=False)
@_voice_options
@_user_errors
def plan_command(routine: Path, cache_dir: Path | None, length: int | None, fill: str, voice: VoiceOverride) -> None:
    """Print ROUTINE's timeline without making audio: each step's start, narration, hold and cues.

    Speech lengths come from clips already in the clip cache, or are estimated from the
    voice's pace in the clips it has made; the first line says how many of each.

    \b
    Examples:
      voiceguide plan routines/back-pain-relief.yaml
      voiceguide plan routines/back-pain-relief.yaml --length 20m
    """
    result = plan_routine(routine, length, fill == "repeat", cache_dir, voice)
    timeline = result.timeline
    total = clock(audio.seconds(timeline.length))  # as the last row gives it
    _echo(
        f"{timeline.title}: {total} "
        f"(speech: {words.count(result.lines_measured, 'line')} from cached clips, {result.lines_estimated} estimated)"
    )
    _echo(f"{'start':>7}  {'chapter':<40} {'speech':>8} {'pauses':>7} {'hold':>8}  cues")
    for index, chapter in enumerate(timeline.chapters):
        events = [event for event in timeline.events if event.chapter == index]
        speech = sum(event.length for event in events if event.kind == "speech" and not event.cue)
        pauses = sum(event.length for event in events if event.kind == "pause")
        hold = sum(event.length for event in events if event.kind == "hold")
        cues = len([event for event in events if event.cue])
        _echo(
            f"{clock(audio.seconds(chapter.start)):>7}  {chapter.title[:40]:<40} {_duration(speech):>8} "
            f"{_duration(pauses) if pauses else '-':>7} {_duration(hold) if hold else '-':>8}  {cues or ''}"
        )
    _echo(f"{total:>7}  end")
    _echo_warnings(timeline)


@main.command(name="preview")
@click.argument("routine", type=click.Path(path_type=Path))
@click.option("--step", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which step's narration to voice (1 is the first).")
@_output_dir_option
@_cache_dir_option
@_voice_options
@_jobs_option
@click.option("--no-play", is_flag=True, help="Only write the file.")
@_user_errors
def preview_command(
    routine: Path, step: int, output_dir: Path, cache_dir: Path | None, voice: VoiceOverride, jobs: int | None,
    no_play: bool,
) -> None:
    """Voice one step's narration into OUTPUT_DIR/NAME-preview-stepN.mp3 and play it.

    For choosing a voice and speed quickly. The clips go into the clip cache, so the next
    build reuses them. It plays on the system's audio device, as 'play' does; without one,
    only the file is written.

    \b
    Examples:
      voiceguide preview routines/back-pain-relief.yaml --step 3 --speed 0.85
      voiceguide preview routines/back-pain-relief.yaml --engine pyttsx3 --voice "English (America)"
    """
    reporter = _TerminalReporter(quiet=False, several=False)
    try:
        result = preview(
            routine, step, output_dir, voice, cache_dir, workers=jobs, play=not no_play, reporter=reporter
        )
    finally:
        reporter.bar.clear()
    _echo(f"wrote {result.output} ({audio.seconds(result.length):.1f}s)")
    if result.played:
        _echo(result.played)


@main.command(name="voices")
@click.argument("routine", required=False, type=click.Path(path_type=Path))
@click.option("--engine", type=click.Choice(ENGINE_NAMES), default=None, help="Only this engine's voices.")
@click.option("-l", "--language", metavar="CODE", default=None,
              help="Voices speaking this language (fr, en-us); default: ROUTINE's, else your locale's.")
@click.option("--all", "every", is_flag=True, help="Every other voice too: constructed languages and test voices last.")
@_user_errors
def voices_command(routine: Path | None, engine: str | None, language: str | None, every: bool) -> None:
    """List the voices installed here for a language, with the name to give in a routine.

    The language is --language, or ROUTINE's, or your locale's (English if it names none).
    Neural voices come first, then pyttsx3's; --all lists the voices of every other language too.

    \b
    Examples:
      voiceguide voices
      voiceguide voices routines/breath-paced-reflex-points-fr.yaml
      voiceguide voices --language fr --engine pyttsx3
      voiceguide voices --all
    """
    if language is None and routine is not None:
        language = routines.load(routine).language
    found = catalogue(language, [engine] if engine else ENGINE_NAMES, every)
    for listing in found.engines:
        if listing.missing:
            _echo(f"{listing.engine}: {listing.missing}")
            continue
        if every:
            voices = words.count(len(listing.voices), "voice")
            _echo(f"{listing.engine}: {voices}, {listing.matching} for {found.language} first")
        else:
            _echo(f"{listing.engine}: {words.count(listing.matching, 'voice')} for {found.language}")
        width = max((len(voice.name) for voice in listing.voices), default=0)
        for voice in listing.voices:
            _echo(f"  {voice.name:<{width}}  {', '.join(voice.languages)}")
    if found.more:
        _echo(f"'voiceguide voices --all' lists {words.count(found.more, 'more voice')}, in other languages")
    example = next((listing for listing in found.engines if listing.matching), None)
    if example:
        _echo(f"In a routine:  voice: {{engine: {example.engine}, name: {example.voices[0].name}}}")
    else:
        _echo(f"No voice here speaks {found.language}.")


@main.command(name="new")
@click.argument("name")
@click.option("--folder", type=click.Path(path_type=Path), default=DEFAULT_FOLDER, show_default=True,
              help="Where to write NAME.yaml.")
@_user_errors
def new_command(name: str, folder: Path) -> None:
    """Write FOLDER/NAME.yaml, a commented routine to start from, that validates and builds as it is.

    It shows the keys most routines use, with a note on each. An existing file is never replaced.

    \b
    Example:
      voiceguide new back-rub          # -> routines/back-rub.yaml
    """
    path = new_routine(name, folder)
    _echo(f"wrote {path}; edit it, and 'voiceguide watch {path}' builds it again at each save")


@main.command()
@click.argument("routines_to_check", metavar="ROUTINE...", nargs=-1, required=True, type=click.Path(path_type=Path))
@_user_errors
def validate(routines_to_check: tuple[Path, ...]) -> None:
    """Check routine files without making any audio; report every problem with file:line:column.

    It plans each routine as 'plan' does (speech lengths from cached clips, or estimated), so it
    prints the same warnings as 'plan' and 'build', such as a cue moved so it does not overlap
    another.

    \b
    Example:
      voiceguide validate routines/*.yaml
    """
    problems: list[str] = []
    for path in routines_to_check:
        try:
            result = plan_routine(path)
        except VoiceguideError as error:
            problems.extend(_error_lines(error, path))
        else:
            _echo(f"ok: {path} ({words.count(len(result.routine.steps), 'step')})")
            _echo_warnings(result.timeline)
    if problems:
        raise RoutineError(problems)


class _NowPlaying:
    """The step being played: one line rewritten in place on a terminal, else a line per step."""

    def __init__(self, live: bool):
        self.live = live
        self.shown = -1  # the last step printed
        self.helped = False

    def __call__(self, status: PlayStatus) -> None:
        track, index = status.track, status.chapter
        if self.live:
            if status.keys and not self.helped:
                _echo(KEY_HELP)
                self.helped = True
            paused = "  (paused)" if status.paused else ""
            position = f"{_tenths(status.seconds)} / {clock(track.length)}"
            click.echo(f"\r{position}  {self._step(track, index)}{paused}\x1b[K", nl=False)
            return
        passed = range(self.shown + 1, index + 1) if index > self.shown else [index] if index < self.shown else []
        for step in passed:  # every step reached, even one shorter than a tick
            _echo(f"{clock(track.chapters[step].start)} {self._step(track, step)}")
        self.shown = index

    @staticmethod
    def _step(track: Track, index: int) -> str:
        return _printable(f"{track.chapters[index].title} ({index + 1}/{len(track.chapters)})")  # titles from any MP3

    def clear(self) -> None:
        if self.live:
            click.echo("\r\x1b[K", nl=False)


def _tenths(seconds: float) -> str:
    """2:03.4"""
    return f"{clock(seconds)}.{int(seconds * 10) % 10}"


@main.command(name="play")
@click.argument("track", type=click.Path(path_type=Path))
@_user_errors
def play_command(track: Path) -> None:
    """Play a built TRACK on this computer, showing the step and the exact position.

    On a terminal, keys control it: space pauses and plays, n or the right arrow skips to the
    next step, p or the left arrow goes back to the start of the step (or to the step before,
    near its start), q stops. The sound goes to the system's audio device; set
    VOICEGUIDE_AUDIO_BACKEND to choose miniaudio's backend (alsa, pulseaudio, wasapi, null, ...).

    \b
    Example:
      voiceguide play build/back-pain-relief.mp3
    """
    display = _NowPlaying(live=sys.stdout.isatty())
    try:
        status = play_track(track, show=display)
    except KeyboardInterrupt as stop:
        display.clear()
        _echo("stopped")
        if isinstance(stop, _Terminated):
            sys.exit(_stop_status(stop))
        return
    display.clear()
    if status.ended:
        _echo(f"played {track} ({format_duration(status.track.length)})")
    else:
        _echo(f"stopped at {_tenths(status.seconds)} in {status.track.chapters[status.chapter].title}")


def _show_serving(serving: Serving) -> None:
    _echo(
        f"serving {words.count(serving.tracks, 'track')} of {words.count(serving.routines, 'routine')} "
        f"from {serving.folder}; Ctrl-C stops"
    )
    if serving.reachable:
        _echo(f"note: {serving.reachable}")
    else:
        _echo("On a phone on the same network, open this address, or scan the code with its camera:")
    _echo(f"\n  {serving.urls[0]}\n")
    _echo(qr_code(serving.urls[0]))
    _echo(f"podcast feed: {serving.urls[0]}{FEED}")
    for other in serving.urls[1:]:
        _echo(f"also at: {other}")


@main.command(name="serve")
@click.argument("folder", type=click.Path(path_type=Path), default=Path("build"))
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="The port to listen on (0: any free one).")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="The address to listen on: 0.0.0.0 is every network; 127.0.0.1 is this computer only.")
@_user_errors
def serve_command(folder: Path, port: int, host: str) -> None:
    """Serve the routines built in FOLDER (default build/) to phones on the same network.

    It prints the address to open and a QR code of it. The page there lists every routine
    built in FOLDER, each length it was built at, and links to its player; feed.xml is a
    podcast feed of them all, with chapters. Only the built files are served, read-only.
    Ctrl-C stops.

    \b
    Examples:
      voiceguide serve
      voiceguide serve my-build --port 8080
    """
    try:
        serve(folder, host, port, on_ready=_show_serving)
    except KeyboardInterrupt as stop:
        _echo("stopped serving")
        if isinstance(stop, _Terminated):
            sys.exit(_stop_status(stop))


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


@main.group(name="cache", invoke_without_command=True)
@_cache_dir_option
@click.pass_context
@_user_errors
def cache_command(context: click.Context, cache_dir: Path | None) -> None:
    """Show where the clip cache is, how many clips and sentences it holds, and its size; 'prune' tidies it.

    There is one clip cache for all your routines and output folders, in your user cache
    folder (or --cache-dir, or $VOICEGUIDE_CACHE_DIR).

    \b
    Examples:
      voiceguide cache
      voiceguide cache prune
    """
    context.ensure_object(dict)["cache_dir"] = cache_dir
    if context.invoked_subcommand is None:
        cache = ClipCache(cache_dir)
        usage = cache.usage()
        sentences = words.count(usage.sentences, "voiced sentence")
        _echo(f"{cache.folder}: {words.count(usage.clips, 'clip')}, {sentences}, {_megabytes(usage.bytes)}")


@cache_command.command(name="prune")
@_routines_argument
@_output_dir_option
@_cache_dir_option
@click.pass_context
@_user_errors
def prune_command(context: click.Context, paths: tuple[Path, ...], output_dir: Path, cache_dir: Path | None) -> None:
    """Remove the clips that no routine uses any more, the encoded stretches of sound and the voiced sentences.

    The routines are each ROUTINE, and every *.yaml in each FOLDER (routines/ when none is
    given). A routine keeps the clips of its lines in the voice it gets by default, and in the voice
    its outputs in OUTPUT_DIR were last built with (say, with --engine). The cache is shared by
    all your routines: name every folder of routines whose clips you want to keep. The encoded
    stretches of sound and the voiced sentences all go: builds make again those they need.
    Nothing is removed if a routine has errors.

    \b
    Examples:
      voiceguide cache prune
      voiceguide cache prune routines/ my-routines/
    """
    result = prune_cache(paths, output_dir, cache_dir or context.obj["cache_dir"])
    _echo(
        f"removed {words.count(result.removed.clips, 'clip')} ({_megabytes(result.removed.bytes)}) "
        f"that no routine uses, the encoded stretches of sound ({_megabytes(result.frames_freed)}) and the "
        f"voiced sentences ({_megabytes(result.sentences_freed)}), which builds make again; "
        f"kept {result.kept.clips} ({_megabytes(result.kept.bytes)}) for {words.count(result.routines, 'routine')}"
    )
