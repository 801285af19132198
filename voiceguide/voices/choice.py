"""Choosing who speaks: the routine's voice, any command-line override, and what is installed.

`auto` prefers a neural voice for the routine's language and falls back to pyttsx3's voice for
it, saying why. Voices are listed in a worker process, because listing can load an engine.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from voiceguide.errors import SynthesisError, VoiceguideError, last_line
from voiceguide.voices import AUTO, ENGINE_NAMES, NEURAL_ENGINES, engine_class
from voiceguide.voices.engine import VoiceInfo, close_matches_hint, pick_voice, speaks
from voiceguide.voices.piper_engine import MODEL_SUFFIX, PiperEngine, model_voice
from voiceguide.voices.pool import STARTUP_SECONDS, VoiceRequest
from voiceguide.voices.worker import environment as worker_environment

FALLBACK_ENGINE = "pyttsx3"
DEFAULT_LANGUAGE = "en"  # the user's, when their locale names none


@dataclass(frozen=True)
class VoiceSettings:
    """What a routine asks of its voice, as plain values: voices/ knows nothing of routine files."""

    engine: str = AUTO
    name: str | None = None  # a voice name, or the path of a Piper model; None: the language's voice
    speed: float = 1.0
    language: str = "en"
    pronounce: dict[str, str] = field(default_factory=dict)  # word -> spoken form
    named_at: str | None = None  # where the routine names its voice (file:line:column), for messages


@dataclass(frozen=True)
class VoiceOverride:
    """Command-line choices that replace the routine's (None keeps the routine's)."""

    engine: str | None = None
    name: str | None = None
    speed: float | None = None

    def apply(self, voice: VoiceSettings) -> VoiceSettings:
        """`voice` with these choices; another engine drops the routine's voice name, which was for its own."""
        keeps_name = self.engine is None or self.engine == voice.engine
        return dataclasses.replace(
            voice,
            engine=self.engine or voice.engine,
            name=self.name if self.name is not None else voice.name if keeps_name else None,
            speed=self.speed if self.speed is not None else voice.speed,
        )


@dataclass(frozen=True)
class EngineVoices:
    engine: str
    voices: tuple[VoiceInfo, ...]
    missing: str | None = None  # why the engine cannot run here, with the install command
    matching: int = 0  # how many of `voices` speak the language asked for (they come first)


def list_voices(engines: Iterable[str] = ENGINE_NAMES) -> list[EngineVoices]:
    """The voices of each engine, listed in a worker process once per process (watch builds many times)."""
    return list(_listing(tuple(engines)))


@functools.cache
def _listing(engines: tuple[str, ...]) -> tuple[EngineVoices, ...]:
    command = [sys.executable, "-m", "voiceguide.voices.worker", "--list", *engines]
    try:
        with tempfile.TemporaryDirectory(prefix="voiceguide-worker-") as scratch:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=STARTUP_SECONDS, env=worker_environment(Path(scratch))
            )
    except subprocess.TimeoutExpired:
        raise SynthesisError(f"listing voices took over {STARTUP_SECONDS:.0f}s: {' '.join(command)}") from None
    try:
        listing = json.loads(done.stdout.splitlines()[-1])
    except (IndexError, ValueError):
        raise SynthesisError(
            f"listing voices failed: {' '.join(command)} exited with status {done.returncode}: {last_line(done.stderr)}"
        ) from None
    found = []
    for engine, entry in listing.items():
        voices = [VoiceInfo(**{**voice, "languages": tuple(voice["languages"])}) for voice in entry.get("voices", ())]
        found.append(EngineVoices(engine, tuple(voices), entry.get("missing")))
    return tuple(found)


@dataclass(frozen=True)
class Catalogue:
    """What `voiceguide voices` shows: each engine's voices for a language, and how many more there are."""

    language: str
    engines: tuple[EngineVoices, ...]
    more: int  # voices left out: other languages, constructed languages, test voices


def catalogue(language: str | None = None, engines: Iterable[str] = ENGINE_NAMES, every: bool = False) -> Catalogue:
    """Each engine's voices (neural engines first) for `language` (the user's when None), the one it would choose first.

    With `every`, every other voice follows: those of natural languages, then the constructed
    languages and test voices.
    """
    language = (language or user_language()).lower().replace("_", "-")
    wanted = set(engines)
    found, more = [], 0
    for entry in list_voices([name for name in dict.fromkeys((*NEURAL_ENGINES, *ENGINE_NAMES)) if name in wanted]):
        try:
            default: VoiceInfo | None = pick_voice(list(entry.voices), None, language)
        except LookupError:
            default = None
        ranks = [_rank(voice, default, language) for voice in entry.voices]
        ranked = [voice for _, voice in sorted(zip(ranks, entry.voices, strict=True), key=lambda pair: pair[0])]
        matching = sum(1 for rank in ranks if rank < 2)
        shown = ranked if every else ranked[:matching]
        more += len(ranked) - len(shown)
        found.append(dataclasses.replace(entry, voices=tuple(shown), matching=matching))
    return Catalogue(language, tuple(found), more)


def _rank(voice: VoiceInfo, default: VoiceInfo | None, language: str) -> int:
    """0 for the voice an engine speaks `language` with, 1 for its others for it, then the rest, the unnatural last."""
    if voice == default:
        return 0
    if speaks(voice, language):
        return 1
    return 2 if voice.natural else 3


def user_language(environment: Mapping[str, str] = os.environ) -> str:
    """The language of the user's locale (LC_ALL, LC_MESSAGES, then LANG, as POSIX reads them), like en-us.

    English when none is set, or for the C and POSIX locales.
    """
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = environment.get(name)
        if value:
            code = value.split(".")[0].split("@")[0].lower().replace("_", "-")
            return code if re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", code) else DEFAULT_LANGUAGE
    return DEFAULT_LANGUAGE


def voice_request(settings: VoiceSettings, override: VoiceOverride = VoiceOverride()) -> VoiceRequest:
    """The voice that speaks a routine: its settings with any override, resolved to an installed voice."""
    voice = override.apply(settings)
    try:
        return choose_voice(voice)
    except VoiceguideError as error:
        if voice.name is not None and voice.name == settings.name and settings.named_at:
            raise VoiceguideError(f"{settings.named_at}: voice.name: {error}") from None  # the routine chose it
        raise


def choose_voice(voice: VoiceSettings) -> VoiceRequest:
    """The engine and voice that will speak `voice` (from a routine, after any override).

    Raises VoiceguideError when the engine is not installed, has no such voice (listing close
    matches), or has no voice for the language.
    """

    language = voice.language

    def request(engine: str, info: VoiceInfo, note: str = "") -> VoiceRequest:
        return VoiceRequest(engine, info, language, voice.speed, voice.pronounce, note)

    if voice.name is not None and voice.name.endswith(MODEL_SUFFIX):
        if voice.engine not in (AUTO, PiperEngine.name):
            raise VoiceguideError(f"voice {voice.name!r} is a Piper model; use it with the piper engine (or auto)")
        engine_class(PiperEngine.name)  # raises the install command when piper is missing
        return request(PiperEngine.name, model_voice(Path(voice.name).expanduser().absolute()))
    if voice.engine != AUTO:
        found = list_voices([voice.engine])[0]
        if found.missing:
            raise VoiceguideError(found.missing)
        try:
            return request(voice.engine, pick_voice(list(found.voices), voice.name, language))
        except LookupError as error:
            raise VoiceguideError(f"{voice.engine}: {error}") from None
    listing = list_voices([*NEURAL_ENGINES, FALLBACK_ENGINE])
    for found in listing:  # the first engine with the named voice, or with a voice for the language
        try:
            info = pick_voice(list(found.voices), voice.name, language)
        except LookupError:
            continue
        return request(found.engine, info, "" if voice.name else _auto_note(found.engine, listing, language))
    if voice.name is not None:
        every_voice = [info for found in listing for info in found.voices]
        raise VoiceguideError(f"no voice named {voice.name!r}; {close_matches_hint(every_voice, voice.name)}")
    raise VoiceguideError(f"no installed voice speaks {language!r}; run 'voiceguide voices' to list them")


def _auto_note(engine: str, listing: list[EngineVoices], language: str) -> str:
    """Why `auto` chose `engine` for `language`, in a few words."""
    if engine in NEURAL_ENGINES:
        return f"auto: a natural voice for {language}"
    missing = [found.engine for found in listing if found.engine in NEURAL_ENGINES and found.missing]
    if missing:
        return f"auto: {' and '.join(missing)} is not installed, so {engine} speaks; 'voiceguide voices' says why"
    return f"auto: no natural voice for {language!r} is installed, so {engine} speaks"
