"""Streaming: the build's passes over the audio hold the same memory however long the track is."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np

from voiceguide import audio, levels, sounds
from voiceguide.islands import FrameCache, encode_track
from voiceguide.limiter import limit_stream
from voiceguide.render import render
from voiceguide.timeline import Event, Timeline

CHIME = sounds.builtin_path("chime")
SIX_SECONDS = audio.samples(6)
LINE = np.round(0.3 * 32767 * np.sin(np.arange(SIX_SECONDS) * 0.07) * np.hanning(SIX_SECONDS)).astype(np.int16)


def sixty_steps(minutes: float) -> Timeline:
    """Sixty steps of six seconds of tone (a stand-in for speech) and a chime, spread over `minutes`."""
    length = audio.samples(minutes * 60)
    events = []
    for index in range(60):
        start = audio.samples(5) + index * (length - audio.samples(15)) // 60
        events.append(Event("speech", start, len(LINE), index, text=f"line {index}"))
        events.append(Event("sound", start + audio.samples(7), len(sounds.levelled(CHIME)), index, sound=CHIME))
    return Timeline("t", tuple(events), (), length)


def peak_memory(minutes: float, folder: Path) -> int:
    """Bytes at most in use while rendering, limiting, metering and encoding the track."""
    timeline = sixty_steps(minutes)

    def source(event: Event) -> np.ndarray:
        return LINE if event.kind == "speech" else sounds.levelled(event.sound)

    tracemalloc.start()
    try:
        speech = [(event.start, event.end) for event in timeline.of_kind("speech")]
        limited = limit_stream(render(timeline, source), levels.TRACK_CEILING)
        with (folder / f"{minutes}.mp3").open("wb") as file:
            encode_track(limited, file, FrameCache(folder), speech)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_length_of_the_track(tmp_path):
    peak_memory(1, tmp_path)  # caches (the levelled chime, the filters, the frames) are filled once per process
    assert peak_memory(60, tmp_path) < 1.1 * peak_memory(10, tmp_path)
