"""Rendering: a timeline becomes a stream of PCM blocks, mixed from clips, sounds and a bed.

Only the clips sounding in the current block are held in memory, so memory stays flat however
long the track is, and a block where nothing sounds costs next to nothing. An optional
background bed loops under the whole track, faded in and out, and dips smoothly while the voice
speaks.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Iterator

import numpy as np

from voiceguide import audio, levels, limiter, meter, soundgen, sounds
from voiceguide.routine import Background
from voiceguide.timeline import Event, Timeline

BLOCK = audio.SAMPLE_RATE  # one second of audio per block
AUDIBLE = ("speech", "sound", "breath")

BED_FADE = audio.samples(4.0)
DUCK_RAMP = audio.samples(0.4)  # how long the bed's dip under speech takes to go down, and to come back


@functools.lru_cache(maxsize=16)
def breath_tone(direction: str, length: int) -> np.ndarray:
    """A rising (in) or falling (out) tone exactly `length` samples long."""
    make = soundgen.breathe_in if direction == "in" else soundgen.breathe_out
    tone = audio.to_int16(make(audio.seconds(length)) * audio.FULL_SCALE)
    tone = tone[:length] if len(tone) >= length else np.pad(tone, (0, length - len(tone)))
    return limiter.level(tone, levels.BREATH_LUFS, levels.SOUND_PEAK, meter.integrated_loudness)


class _Bed:
    """The background loop, at its level, with fades at the track's ends and dips under speech."""

    def __init__(self, background: Background, timeline: Timeline):
        self.loop = sounds.load(background.sound).astype(np.float32)
        bed_loudness = meter.integrated_loudness(self.loop / audio.FULL_SCALE)
        self.gain = meter.gain(levels.VOICE_LUFS + background.level - bed_loudness)
        speech = sorted((event.start, event.end) for event in timeline.events if event.kind == "speech")
        self.speech_starts = [start for start, _ in speech]
        self.speech_ends = [end for _, end in speech]
        self.total = timeline.length

    def block(self, start: int, end: int) -> np.ndarray:
        positions = np.arange(start, end)
        samples = self.loop[positions % len(self.loop)] * self.gain
        fade = np.clip(np.minimum(positions, self.total - positions) / BED_FADE, 0, 1)
        return samples * audio.raised_cosine(fade) * self._ducking(positions)

    def _ducking(self, positions: np.ndarray) -> np.ndarray:
        """1 where the bed plays in full, down to levels.BED_DUCK under speech, with smooth ramps."""
        depth = np.zeros(len(positions), dtype=np.float32)
        first = bisect.bisect_left(self.speech_ends, positions[0] - DUCK_RAMP)
        for index in range(first, len(self.speech_starts)):
            start, end = self.speech_starts[index], self.speech_ends[index]
            if start - DUCK_RAMP > positions[-1]:
                break
            inside = np.minimum(positions - (start - DUCK_RAMP), end + DUCK_RAMP - positions) / DUCK_RAMP
            depth = np.maximum(depth, np.clip(inside, 0, 1))
        return 1 + (meter.gain(levels.BED_DUCK) - 1) * audio.raised_cosine(depth)


def render(timeline: Timeline, source: Callable[[Event], np.ndarray]) -> Iterator[np.ndarray]:
    """Yield the whole track as consecutive int16 blocks; `source` gives a clip's or sound's samples."""
    pending = sorted((event for event in timeline.events if event.kind in AUDIBLE), key=lambda event: event.start)
    bed = _Bed(timeline.background, timeline) if timeline.background else None
    upcoming = 0
    sounding: list[tuple[Event, np.ndarray]] = []
    for block_start in range(0, timeline.length, BLOCK):
        block_end = min(block_start + BLOCK, timeline.length)
        while upcoming < len(pending) and pending[upcoming].start < block_end:
            event = pending[upcoming]
            samples = breath_tone(event.breath, event.length) if event.kind == "breath" else source(event)
            if len(samples) != event.length:
                planned = f"planned {event.length}"
                raise ValueError(f"{event.kind} at sample {event.start} is {len(samples)} samples, {planned}")
            sounding.append((event, samples))
            upcoming += 1
        if not sounding and bed is None:
            yield np.zeros(block_end - block_start, dtype=np.int16)
            continue
        mix = bed.block(block_start, block_end) if bed else np.zeros(block_end - block_start, dtype=np.float32)
        for event, samples in sounding:
            start, end = max(event.start, block_start), min(event.end, block_end)
            if start < end:
                mix[start - block_start : end - block_start] += samples[start - event.start : end - event.start]
        sounding = [(event, samples) for event, samples in sounding if event.end > block_end]
        yield audio.to_int16(mix)
