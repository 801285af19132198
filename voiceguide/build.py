"""The build: load, voice, plan, render, export, as one linear function.

It first checks whether the output is up to date (provenance.py): then nothing is built. What
it does is told to a Reporter as it goes (the CLI's draws progress; the default says nothing),
and logged.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceguide import audio, cover, levels, meter, provenance, sounds, streams
from voiceguide import routine as routines
from voiceguide.document import timeline_document
from voiceguide.durations import format_duration
from voiceguide.errors import VoiceguideError
from voiceguide.export import Tags, id3_tag
from voiceguide.files import atomic_path, remove_stale_temporaries
from voiceguide.islands import EncodedTrack, FrameCache, encode_track
from voiceguide.limiter import limit_stream
from voiceguide.m4b import find_ffmpeg, write_m4b
from voiceguide.render import render
from voiceguide.sidecars import write_sidecars
from voiceguide.timeline import Event, LengthUnreachable, Timeline, plan, spoken_lines
from voiceguide.voices.cache import ClipCache
from voiceguide.voices.choice import VoiceOverride, voice_request
from voiceguide.voices.clips import VoicedClips, estimate_lengths, known_lengths, voice_clips, voice_pace
from voiceguide.voices.pool import VoiceRequest, WarmWorkers

log = logging.getLogger(__name__)

ESTIMATE_SLACK = 0.2  # how far an estimated speech length may be off, as a fraction of it
MAX_ENCODINGS = 4  # of one track at most, each with the limiter's ceiling lower, until its peaks fit


@dataclass(frozen=True)
class PlanResult:
    timeline: Timeline
    lines_measured: int  # speech lengths read from cached clips
    lines_estimated: int  # speech lengths estimated from the voice's pace
    routine: routines.Routine


@dataclass(frozen=True)
class BuildResult:
    output: Path
    timeline: Timeline
    clips_reused: int
    clips_made: int
    elapsed: float
    files: list[Path]  # written beside the MP3: sidecars, and the M4B when asked for
    changes: tuple[str, ...]  # what differs from the previous build, in words (see provenance.changes)
    encoded: EncodedTrack  # its loudness and true peak, and how many of its islands were encoded or kept


def sound_length(path: Path) -> int:
    return len(sounds.load(path))


def output_name(routine: routines.Routine, length: int | None) -> str:
    """NAME, or NAME-20m for a custom length, so versions of one routine sit side by side."""
    if length is None:
        return routine.name
    return f"{routine.name}-{format_duration(audio.seconds(length))}"


def plan_routine(
    routine_path: Path,
    length: int | None = None,
    fill_repeat: bool = False,
    cache_dir: Path | None = None,
    voice: VoiceOverride = VoiceOverride(),
) -> PlanResult:
    """Plan without synthesizing: speech lengths come from cached clips (CACHE_DIR, None for the user's), or are
    estimated from the voice's pace."""
    routine = routines.load(routine_path)
    request = voice_request(routine.voice_settings, voice)
    cache = ClipCache(cache_dir)
    known = known_lengths(spoken_lines(routine), request, cache)
    lengths = estimate_lengths(known, request.speed, voice_pace(request, cache))
    timeline = plan(routine, lengths, sound_length, length, fill_repeat)
    measured = sum(1 for value in known.values() if value is not None)
    return PlanResult(timeline, measured, len(known) - measured, routine)


def check_lengths(routine_path: Path, options: BuildOptions) -> None:
    """Raise LengthUnreachable, before any voicing, for the lengths asked for that the routine surely cannot reach.

    Speech lengths come from cached clips, or are estimated; a length that estimates off by up to
    ESTIMATE_SLACK could still reach is left to the exact check after voicing.
    """
    asked = [each.length for each in options.each_length() if each.length is not None]
    if not asked:
        return
    routine = routines.load(routine_path)
    request = voice_request(routine.voice_settings, options.voice)
    cache = ClipCache(options.cache_dir)
    known = known_lengths(spoken_lines(routine), request, cache)
    speech = estimate_lengths(known, request.speed, voice_pace(request, cache))
    slack = ESTIMATE_SLACK * sum(speech[text] for text, length in known.items() if length is None)
    unreachable: list[LengthUnreachable] = []
    for length in asked:
        try:
            plan(routine, speech, sound_length, length, options.fill_repeat)
        except LengthUnreachable as error:
            if not error.shortest - slack <= length <= error.longest + slack:
                unreachable.append(error)
    if len(unreachable) == 1:
        raise unreachable[0]
    if unreachable:
        first = unreachable[0]
        raise LengthUnreachable(routine.name, first.shortest, first.longest, [error.asked[0] for error in unreachable])


@dataclass(frozen=True)
class BuildOptions:
    """How to build: where to, how long, in which voice and formats, and whether to build even when up to date."""

    output_dir: Path = Path("build")  # the MP3 and its sidecars
    cache_dir: Path | None = None  # the clip cache; None for the user's, shared by every build
    length: int | None = None  # samples; None keeps the routine's own length
    fill_repeat: bool = False
    voice: VoiceOverride = VoiceOverride()
    m4b: bool = False  # make an M4B audiobook too (ffmpeg must be on PATH)
    workers: int | None = None  # synthesis processes; None for one per core
    force: bool = False  # build even when the output is up to date
    lengths: tuple[int, ...] = ()  # several lengths at once: one track each, at `length` (see each_length)

    def each_length(self) -> list[BuildOptions]:
        """The options of each track to build: one for each of `lengths`, or these alone."""
        return [dataclasses.replace(self, length=length, lengths=()) for length in self.lengths] or [self]

    def recorded(self) -> dict:
        """The options that shape the MP3 besides the voice (which is recorded as chosen); not the extra formats."""
        return {"length": self.length, "fill_repeat": self.fill_repeat}


@dataclass(frozen=True)
class UpToDate:
    """Nothing the output is made from changed since it was built, and its files are as written."""

    output: Path
    made: tuple[Path, ...] = ()  # extra formats newly made from the up-to-date MP3 (the M4B)


@dataclass(frozen=True)
class Outcome:
    """How one routine's build went, when building several (batch.py, watch.py)."""

    routine: Path
    result: BuildResult | UpToDate | None = None
    error: VoiceguideError | None = None  # the build failed: result is None


class Reporter:
    """What building tells whoever started it, as it goes. This one says nothing: the library's default.

    The CLI's draws progress and prints results; the library's own messages go to `logging`.
    """

    def progress(self, stage: str, done: int, total: int) -> None:
        """`stage` is "voicing" (clips) or "rendering" (seconds of audio)."""

    def voice_chosen(self, request: VoiceRequest) -> None:
        """The voice that will speak, known before any voicing starts."""

    def finished(self, outcome: Outcome) -> None:
        """One routine is built, up to date, or failed (when building several)."""

    def saved(self, routine: Path, files: list[Path]) -> None:
        """Watching: `files` of `routine` were saved, and it is about to be built again."""


SILENT = Reporter()


def build(
    routine_path: Path, options: BuildOptions = BuildOptions(), reporter: Reporter = SILENT,
    warm: WarmWorkers | None = None,
) -> BuildResult | UpToDate:
    """Build `routine_path` into OUTPUT_DIR/NAME.mp3 (NAME-20m.mp3 with a length), unless it is up to date.

    With `warm`, synthesis runs on the workers kept there from earlier builds, and leaves them there.
    """
    started = time.perf_counter()
    routine_digest = provenance.file_digest(routine_path)  # before loading: a save from now on is seen next time
    routine = routines.load(routine_path)
    remove_stale_temporaries(options.output_dir)
    remove_stale_temporaries(ClipCache(options.cache_dir).folder)
    ffmpeg = find_ffmpeg() if options.m4b else None
    request = voice_request(routine.voice_settings, options.voice)
    target = options.output_dir / f"{output_name(routine, options.length)}.mp3"
    m4b = target.with_suffix(".m4b")
    previous = provenance.previous_build(target)
    inputs = provenance.record(routine, routine_digest, request, options.recorded())
    mp3_current = not options.force and provenance.up_to_date(previous, inputs, target.parent, frozenset({m4b.name}))
    if mp3_current and (not options.m4b or provenance.output_current(previous, m4b)):
        return UpToDate(target)
    lines = spoken_lines(routine)
    if not mp3_current:
        reporter.voice_chosen(request)
    log.info("voicing %s with %s", routine_path, request)
    clips = voice_clips(lines, request, options.cache_dir, options.workers, voicing(reporter), warm)
    timeline = plan(routine, clips.lengths, sound_length, options.length, options.fill_repeat)
    artwork = cover.artwork(routine.title, routine.cover)
    tags = Tags(
        title=routine.title, artist=routine.author, comment=routine.description, language=routine.language,
        voice=request.label, artwork=artwork,
    )
    if not mp3_current:
        log.info("rendering %s (%.1f s)", target, audio.seconds(timeline.length))
        with atomic_path(target) as temporary:
            frames = FrameCache(clips.cache.folder)
            encoded = _encode(temporary, tags, timeline, _sources(clips), reporter, frames)
    made = [target]
    if ffmpeg:
        log.info("encoding %s", m4b)
        write_m4b(target, m4b, tags, timeline.chapters, ffmpeg)
        made.append(m4b)
    document = timeline_document(timeline, routine, target.name)
    files = write_sidecars(target, document, artwork, routine.author, inputs, made) + made[1:]
    if mp3_current:  # only the extra format was missing or out of date
        return UpToDate(target, made=tuple(made[1:]))
    changes = provenance.changes(previous, inputs, document)
    elapsed = time.perf_counter() - started
    return BuildResult(target, timeline, clips.reused, clips.made, elapsed, files, changes, encoded)


def _encode(
    path: Path, tags: Tags, timeline: Timeline, source: Callable[[Event], np.ndarray], reporter: Reporter,
    frames: FrameCache,
) -> EncodedTrack:
    """Encode the track into `path`, metering it on the way in.

    The parts are at their levels already (see levels.py), so the track streams into the encoder
    at unity gain through a true-peak limiter that leaves MP3 coding room to lift peaks. The
    islands of sound already encoded (and kept in `frames`) are neither metered nor encoded
    again (see islands.py): each comes with its loudness and the true peak its frames decode
    to. If coding lifted a peak over the limit after all, the track is encoded again with the
    limiter's ceiling lowered by as much (and a margin, since the lift itself varies a little
    from one encoding to the next): only the islands that the lower ceiling changes.
    """
    speech = [(event.start, event.end) for event in sorted(timeline.of_kind("speech"), key=lambda event: event.start)]
    tag = id3_tag(tags, timeline.chapters)
    ceiling, encodings = levels.TRACK_CEILING, 0
    while True:
        with path.open("w+b") as file:
            file.write(tag)
            limited = streams.ahead(limit_stream(render(timeline, source), ceiling))  # rendered on a thread of its own
            encoded = encode_track(_reporting("rendering", limited, timeline.length, reporter), file, frames, speech)
        true_peak = encoded.true_peak
        log.info("encoded %d stretches of sound, kept %d", encoded.islands_encoded, encoded.islands_kept)
        encodings += 1
        excess = true_peak - (levels.TRUE_PEAK_LIMIT - meter.TRUE_PEAK_ACCURACY)
        if excess <= 0 or encodings == MAX_ENCODINGS:
            break
        log.info("MP3 coding lifted a peak to %.2f dBTP; encoding again", true_peak)
        ceiling -= excess + levels.RETRY_MARGIN
    if excess > 0:
        log.warning("MP3 coding lifted a peak to %.2f dBTP after %d encodings", true_peak, encodings)
    return encoded


def _sources(clips: VoicedClips) -> Callable[[Event], np.ndarray]:
    def source(event: Event) -> np.ndarray:
        if event.text is not None:  # speech
            return clips.read(event.text)
        assert event.sound is not None, f"a {event.kind} event has no audio of its own"
        return sounds.levelled(event.sound)

    return source


def voicing(reporter: Reporter) -> Callable[[int, int], None]:
    """What voice_clips calls as clips are made: the reporter's "voicing" progress."""
    return lambda done, total: reporter.progress("voicing", done, total)


def _reporting(
    stage: str, blocks: Iterable[np.ndarray], total_samples: int, reporter: Reporter
) -> Iterator[np.ndarray]:
    done = 0
    total_seconds = round(audio.seconds(total_samples))
    for block in blocks:
        yield block
        done += len(block)
        reporter.progress(stage, round(audio.seconds(done)), total_seconds)
