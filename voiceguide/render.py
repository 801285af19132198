"""Rendering: a timeline becomes a stream of PCM blocks, mixed from clips and sounds.

Only the clips sounding in the current block are held in memory, so memory stays flat however
long the track is.
"""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np

from voiceguide import audio
from voiceguide.timeline import Event, Timeline

BLOCK = audio.SAMPLE_RATE  # one second of audio per block
AUDIBLE = ("speech", "sound")


def render(timeline: Timeline, source: Callable[[Event], np.ndarray]) -> Iterator[np.ndarray]:
    """Yield the whole track as consecutive int16 blocks; `source` gives an event's samples."""
    pending = sorted((event for event in timeline.events if event.kind in AUDIBLE), key=lambda event: event.start)
    upcoming = 0
    sounding: list[tuple[Event, np.ndarray]] = []
    for block_start in range(0, timeline.length, BLOCK):
        block_end = min(block_start + BLOCK, timeline.length)
        while upcoming < len(pending) and pending[upcoming].start < block_end:
            event = pending[upcoming]
            samples = source(event)
            if len(samples) != event.length:
                raise ValueError(f"{event.kind} at sample {event.start} is {len(samples)} samples, planned {event.length}")
            sounding.append((event, samples))
            upcoming += 1
        mix = np.zeros(block_end - block_start, dtype=np.int32)
        for event, samples in sounding:
            start, end = max(event.start, block_start), min(event.end, block_end)
            if start < end:
                mix[start - block_start : end - block_start] += samples[start - event.start : end - event.start]
        sounding = [(event, samples) for event, samples in sounding if event.end > block_end]
        yield np.clip(mix, -32768, 32767).astype(np.int16)
