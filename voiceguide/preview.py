"""Preview: one step's narration in the chosen voice, for trying voices and speeds quickly.

The clips come from (and go into) the clip cache, so a preview's lines are ready for the
build. Playing goes to the system's audio device; without one the file is still written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceguide import routine as routines
from voiceguide.build import SILENT, Reporter, voicing
from voiceguide.errors import VoiceguideError
from voiceguide.export import encode_mp3
from voiceguide.files import atomic_path
from voiceguide.play import play_samples
from voiceguide.timeline import narration_layout, spoken_lines
from voiceguide.voices.choice import VoiceOverride, voice_request
from voiceguide.voices.clips import voice_clips


@dataclass(frozen=True)
class PreviewResult:
    output: Path
    length: int  # samples
    played: str | None  # how it was played, or why it was not; None when not asked to play


def preview(
    routine_path: Path,
    step: int = 1,
    output_dir: Path = Path("build"),
    voice: VoiceOverride = VoiceOverride(),
    cache_dir: Path | None = None,
    workers: int | None = None,
    play: bool = True,
    reporter: Reporter = SILENT,
) -> PreviewResult:
    """Write step STEP's narration (1 = the first step) to OUTPUT_DIR/NAME-preview-stepSTEP.mp3, and play it."""
    routine = routines.load(routine_path)
    if not 1 <= step <= len(routine.steps):
        raise VoiceguideError(f"{routine_path} has steps 1 to {len(routine.steps)}; there is no step {step}")
    lines = routine.steps[step - 1].say
    request = voice_request(routine.voice_settings, voice)
    reporter.voice_chosen(request)
    labels = spoken_lines(routine)
    clips = voice_clips(
        {text: labels[text] for text in routines.spoken(lines)}, request, cache_dir, workers, voicing(reporter)
    )
    layout = narration_layout(lines, clips.lengths)
    last_offset, last_length, _ = layout[-1]
    samples = np.zeros(last_offset + last_length, dtype=np.int16)
    for offset, length, line in layout:
        if isinstance(line, str):
            samples[offset : offset + length] = clips.read(line)
    target = output_dir / f"{routine.name}-preview-step{step}.mp3"
    with atomic_path(target) as temporary, temporary.open("wb") as file:
        encode_mp3([samples], file)
    return PreviewResult(target, len(samples), _play(samples, str(target)) if play else None)


def _play(samples: np.ndarray, name: str) -> str:
    """Play through the system's audio; returns what happened, in a few words."""
    try:
        play_samples(samples, name)
    except VoiceguideError as error:
        return f"not played: {error}"
    return "played"
