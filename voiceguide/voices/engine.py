"""The small interface every text-to-speech engine implements.

Engines run inside a worker process (see worker.py), never in the build process itself: some
(pyttsx3) can hang or crash, and a worker can be killed and restarted where a thread cannot.
"""

from __future__ import annotations

import difflib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class VoiceInfo:
    id: str  # what the engine loads
    name: str  # what a routine's `voice.name` gives
    languages: tuple[str, ...]
    version: str = ""  # for voices read from a file: changes with the file (part of clip keys)
    natural: bool = True  # False for a constructed language (Esperanto, Klingon) or a test voice: listed on request


class Engine(ABC):
    """One loaded voice of one engine."""

    name: str

    @classmethod
    @abstractmethod
    def version(cls) -> str:
        """A version string that changes whenever the engine's output may change (part of clip keys).

        Must be cheap: it is read in the build process, without loading the engine.
        """

    @classmethod
    @abstractmethod
    def voices(cls) -> list[VoiceInfo]:
        """Every voice this engine can load here. May load the engine, so it runs in a worker."""

    @abstractmethod
    def __init__(self, voice: str | None, language: str, cache_folder: Path | None = None):
        """Load `voice` (an id or name), or the default voice for `language` when None.

        `cache_folder` is the user's clip cache folder (see cache.py), where an engine may keep
        what it can reuse from one line to the next; None to keep nothing.
        """

    @abstractmethod
    def synthesize(self, text: str, speed: float, path: Path) -> None:
        """Write `text` spoken at `speed` (1.0 = the voice's normal pace) to a WAV file at `path`."""


def pick_voice(voices: list[VoiceInfo], wanted: str | None, language: str) -> VoiceInfo:
    """The voice named `wanted` (id or name, any case), else the best one for `language`.

    Raises LookupError with a message listing close matches.
    """
    if wanted is not None:
        for voice in voices:
            if wanted.lower() in (voice.id.lower(), voice.name.lower()):
                return voice
        raise LookupError(f"no voice named {wanted!r}; {close_matches_hint(voices, wanted)}")
    base = language.split("-")[0]
    for matches in (
        lambda voice: language in voice.languages,
        lambda voice: voice.id.lower().rsplit("/", 1)[-1] in (language, base),
        lambda voice: base in voice.languages,
        lambda voice: speaks(voice, language),
    ):
        for voice in voices:
            if matches(voice):
                return voice
    raise LookupError(f"no voice for language {language!r}")


def speaks(voice: VoiceInfo, language: str) -> bool:
    """Whether `voice` speaks `language` or a variant of it (fr matches fr-fr and fr-be)."""
    base = language.split("-")[0]
    return any(lang.split("-")[0] == base for lang in voice.languages)


def close_matches_hint(voices: list[VoiceInfo], wanted: str) -> str:
    """'close matches: A, B' for names near `wanted` (or containing it), or how to list them all."""
    by_lower = {voice.name.lower(): voice.name for voice in voices}
    containing = [name for lower, name in by_lower.items() if wanted.lower() in lower]
    similar = [by_lower[lower] for lower in difflib.get_close_matches(wanted.lower(), list(by_lower), n=3, cutoff=0.5)]
    close = list(dict.fromkeys(similar + containing))[:3]
    return f"close matches: {', '.join(close)}" if close else "run 'voiceguide voices' to list them"
