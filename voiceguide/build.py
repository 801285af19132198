"""The build: load, voice, plan, render, export, as one linear function."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from voiceguide import audio, routine as routines, sounds
from voiceguide.export import Tags, encode_mp3, timeline_json, write_tags
from voiceguide.files import atomic_path
from voiceguide.render import render
from voiceguide.timeline import Event, Timeline, plan, spoken_lines
from voiceguide.voices.cache import ClipCache
from voiceguide.voices.clips import VoicedClips, voice_lines
from voiceguide.voices.pool import VoiceRequest, default_workers

log = logging.getLogger(__name__)

# Progress callback: (stage, done, total), stage being "voicing" (clips) or "rendering" (seconds).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class BuildResult:
    output: Path
    timeline: Timeline
    clips_reused: int
    clips_made: int
    elapsed: float


def sound_length(path: Path) -> int:
    return len(sounds.load(path))


def build(
    routine_path: Path,
    output_dir: Path = Path("build"),
    workers: int | None = None,
    progress: Progress = lambda stage, done, total: None,
) -> BuildResult:
    """Build `routine_path` into OUTPUT_DIR/NAME.mp3; the clip cache lives in OUTPUT_DIR/cache."""
    started = time.perf_counter()
    routine = routines.load(routine_path)
    request = VoiceRequest(routine.voice.engine, routine.voice.name, routine.language, routine.voice.speed)
    log.info("voicing %s with %s", routine_path, request)
    clips = voice_lines(
        spoken_lines(routine),
        request,
        ClipCache(output_dir / "cache"),
        workers or default_workers(),
        on_progress=lambda done, total: progress("voicing", done, total),
    )
    timeline = plan(routine, clips.lengths, sound_length)
    target = output_dir / f"{routine.name}.mp3"
    log.info("rendering %s (%.1f s)", target, audio.seconds(timeline.length))
    tags = Tags(title=routine.title, comment=routine.description, language=routine.language)
    with atomic_path(target) as temporary:
        write_tags(temporary, tags, timeline.chapters)
        with temporary.open("r+b") as file:
            encode_mp3(_reporting(render(timeline, _sources(clips)), timeline.length, progress), file)
    with atomic_path(target.with_suffix(".json")) as temporary:
        temporary.write_text(timeline_json(timeline, routine.name), encoding="utf-8")
    return BuildResult(target, timeline, clips.reused, clips.made, time.perf_counter() - started)


def _sources(clips: VoicedClips) -> Callable[[Event], np.ndarray]:
    def source(event: Event) -> np.ndarray:
        return clips.read(event.text) if event.kind == "speech" else sounds.load(event.sound)

    return source


def _reporting(blocks, total_samples: int, progress: Progress):
    done = 0
    total_seconds = round(audio.seconds(total_samples))
    for block in blocks:
        yield block
        done += len(block)
        progress("rendering", round(audio.seconds(done)), total_seconds)
