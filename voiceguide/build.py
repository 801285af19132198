"""The build: load, voice, plan, render, export, as one linear function."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from voiceguide import audio, cover, loudness, routine as routines, sounds
from voiceguide.export import Tags, encode_mp3, write_tags
from voiceguide.files import atomic_path
from voiceguide.m4b import find_ffmpeg, write_m4b
from voiceguide.render import render
from voiceguide.sidecars import write_sidecars
from voiceguide.timeline import Event, Timeline, plan, spoken_lines
from voiceguide.voices.cache import ClipCache
from voiceguide.voices.clips import VoicedClips, estimate_lengths, known_lengths, voice_lines
from voiceguide.voices.choice import VoiceOverride, choose_voice
from voiceguide.voices.pool import VoiceRequest, default_workers

log = logging.getLogger(__name__)

# Progress callback: (stage, done, total), stage being "voicing" (clips), "measuring" or "rendering" (seconds).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PlanResult:
    timeline: Timeline
    lines_measured: int  # speech lengths read from cached clips
    lines_estimated: int  # speech lengths estimated from the voice's pace


@dataclass(frozen=True)
class BuildResult:
    output: Path
    timeline: Timeline
    clips_reused: int
    clips_made: int
    elapsed: float
    files: list[Path]  # written beside the MP3: sidecars, and the M4B when asked for
    loudness: float  # LUFS, integrated, of the MP3 as a player decodes it
    true_peak: float  # dBTP, likewise


def sound_length(path: Path) -> int:
    return len(sounds.load(path))


def output_name(routine: routines.Routine, length: int | None) -> str:
    """NAME, or NAME-20m for a custom length, so versions of one routine sit side by side."""
    if length is None:
        return routine.name
    return f"{routine.name}-{routines.format_duration(audio.seconds(length))}"


def plan_routine(
    routine_path: Path, length: int | None = None, fill_repeat: bool = False, output_dir: Path = Path("build")
) -> PlanResult:
    """Plan without synthesizing: speech lengths come from cached clips, or are estimated."""
    routine = routines.load(routine_path)
    request = voice_request(routine)
    known = known_lengths(spoken_lines(routine), request, ClipCache(output_dir / "cache"))
    timeline = plan(routine, estimate_lengths(known, request.speed), sound_length, length, fill_repeat)
    measured = sum(1 for value in known.values() if value is not None)
    return PlanResult(timeline, measured, len(known) - measured)


def voice_request(routine: routines.Routine, override: VoiceOverride = VoiceOverride()) -> VoiceRequest:
    """The voice that speaks the routine: its `voice:` with any override, resolved to an installed voice."""
    return choose_voice(override.apply(routine.voice), routine.language, routine.pronounce)


def voice_clips(
    lines: dict[str, str], request: VoiceRequest, output_dir: Path, workers: int | None, progress: Progress
) -> VoicedClips:
    """Voice `lines` (text -> label) into the clip cache under OUTPUT_DIR/cache."""
    return voice_lines(
        lines,
        request,
        ClipCache(output_dir / "cache"),
        workers or default_workers(),
        on_progress=lambda done, total: progress("voicing", done, total),
    )


def build(
    routine_path: Path,
    output_dir: Path = Path("build"),
    workers: int | None = None,
    progress: Progress = lambda stage, done, total: None,
    length: int | None = None,
    fill_repeat: bool = False,
    voice: VoiceOverride = VoiceOverride(),
    on_voice: Callable[[VoiceRequest], None] = lambda request: None,
    m4b: bool = False,
) -> BuildResult:
    """Build `routine_path` into OUTPUT_DIR/NAME.mp3 (NAME-20m.mp3 with a length in samples).

    The clip cache lives in OUTPUT_DIR/cache. `on_voice` hears which voice was chosen before
    any voicing starts. With `m4b`, an M4B audiobook is made too (ffmpeg must be on PATH).
    """
    started = time.perf_counter()
    routine = routines.load(routine_path)
    ffmpeg = find_ffmpeg() if m4b else None
    request = voice_request(routine, voice)
    log.info("voicing %s with %s", routine_path, request)
    on_voice(request)
    clips = voice_clips(spoken_lines(routine), request, output_dir, workers, progress)
    timeline = plan(routine, clips.lengths, sound_length, length, fill_repeat)
    target = output_dir / f"{output_name(routine, length)}.mp3"
    log.info("rendering %s (%.1f s)", target, audio.seconds(timeline.length))
    tags = Tags(
        title=routine.title, artist=routine.author, comment=routine.description, language=routine.language,
        voice=request.label, artwork=cover.artwork(routine.title, routine.cover),
    )
    first_pass = _reporting("measuring", render(timeline, _sources(clips)), timeline.length, progress)
    boost = loudness.boost_to_target(first_pass)
    with atomic_path(target) as temporary:
        meter = _encode(temporary, tags, timeline, _sources(clips), boost, progress)
    files = write_sidecars(target, timeline, routine, tags.artwork)
    if ffmpeg:
        log.info("encoding %s", target.with_suffix(".m4b"))
        write_m4b(target, target.with_suffix(".m4b"), tags, timeline.chapters, ffmpeg)
        files.append(target.with_suffix(".m4b"))
    elapsed = time.perf_counter() - started
    return BuildResult(
        target, timeline, clips.reused, clips.made, elapsed, files, meter.integrated(), meter.true_peak()
    )


def _encode(
    path: Path, tags: Tags, timeline: Timeline, source: Callable[[Event], np.ndarray], boost: float, progress: Progress
) -> loudness.Meter:
    """Encode the track, raised by `boost` dB, into `path`, and meter it as a player decodes it.

    MP3 coding can lift a peak by a dB or so; if one went over the limit, the track is encoded
    again with the limiter's ceiling lowered by as much.
    """
    ceiling = loudness.TRACK_PEAK
    for _ in range(2):
        path.write_bytes(b"")
        write_tags(path, tags, timeline.chapters)
        with path.open("r+b") as file:
            blocks = _reporting("rendering", render(timeline, source), timeline.length, progress)
            encode_mp3(loudness.normalize(blocks, boost, ceiling), file)
        meter = loudness.measure_file(path)
        excess = meter.true_peak() - loudness.TRUE_PEAK_LIMIT
        if excess <= 0:
            break
        log.info("MP3 coding lifted a peak to %.2f dBTP; encoding again", meter.true_peak())
        ceiling -= excess + loudness.RETRY_MARGIN
    return meter


def _sources(clips: VoicedClips) -> Callable[[Event], np.ndarray]:
    def source(event: Event) -> np.ndarray:
        return clips.read(event.text) if event.kind == "speech" else sounds.levelled(event.sound)

    return source


def _reporting(stage: str, blocks, total_samples: int, progress: Progress):
    done = 0
    total_seconds = round(audio.seconds(total_samples))
    for block in blocks:
        yield block
        done += len(block)
        progress(stage, round(audio.seconds(done)), total_seconds)
