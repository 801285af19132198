"""The default offline voice: pyttsx3 (SAPI5 on Windows, NSSpeech on macOS, eSpeak NG on Linux).

On Linux the eSpeak NG library and its data come from the `espeakng-loader` wheel, so no system
package is needed: the library is loaded globally before pyttsx3's espeak driver looks for it.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
import tempfile
from importlib import metadata
from pathlib import Path

from voiceguide.voices.engine import Engine, VoiceInfo, pick_voice

# eSpeak NG speaks 175 words a minute by default; pyttsx3's driver overrides it with 200.
NORMAL_WORDS_PER_MINUTE = 175
CONSTRUCTED_FAMILY = "art/"  # eSpeak NG's voice ids start with a language family; art is "artificial"


def _load_bundled_espeak() -> None:
    if not sys.platform.startswith("linux"):
        return
    import espeakng_loader

    ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
    os.environ["ESPEAK_DATA_PATH"] = espeakng_loader.get_data_path()


class Pyttsx3Engine(Engine):
    name = "pyttsx3"

    @classmethod
    def version(cls) -> str:
        versions = [f"pyttsx3-{metadata.version('pyttsx3')}"]
        if sys.platform.startswith("linux"):
            versions.append(f"espeakng-loader-{metadata.version('espeakng-loader')}")
        return "+".join(versions)

    def __init__(self, voice: str | None, language: str, cache_folder: Path | None = None):
        """Load the voice; eSpeak voices whole lines, so nothing is kept in `cache_folder`."""
        _load_bundled_espeak()
        import pyttsx3

        self._tts = pyttsx3.init()
        self.voice = pick_voice(self.voices(), voice, language)
        self._tts.setProperty("voice", self.voice.id)
        self._warm_up()

    def _warm_up(self) -> None:
        """Voice a throwaway word: the first clip of a process, if long, is silently not written."""
        with tempfile.TemporaryDirectory() as folder:
            self.synthesize("Ready.", 1.0, Path(folder) / "warm-up.wav")

    @classmethod
    def voices(cls) -> list[VoiceInfo]:
        _load_bundled_espeak()
        import pyttsx3

        return [
            VoiceInfo(
                id=str(v.id), name=str(v.name), languages=tuple(_language_codes(v.languages)),
                natural=_natural(str(v.id), str(v.name)),
            )
            for v in pyttsx3.init().getProperty("voices")  # init() returns the process's one engine
        ]

    def synthesize(self, text: str, speed: float, path: Path) -> None:
        self._tts.setProperty("rate", round(NORMAL_WORDS_PER_MINUTE * speed))
        if sys.platform.startswith("linux"):
            # eSpeak runs asynchronously here; without waiting, a clip soon after a rate change
            # is sometimes spoken at the previous rate.
            from pyttsx3.drivers import _espeak

            _espeak.Synchronize()
        # The espeak driver prints "Audio saved to ..." on stdout, which carries our protocol; on
        # stderr it would pass for the worker's last words when it is killed. Nothing else is printed.
        with contextlib.redirect_stdout(io.StringIO()):
            self._tts.save_to_file(text, str(path))
            self._tts.runAndWait()


def _natural(voice_id: str, name: str) -> bool:
    """Not a constructed language (eSpeak NG files them under art/: Esperanto, Lojban, Klingon...) nor a test voice."""
    return not voice_id.startswith(CONSTRUCTED_FAMILY) and "test" not in name.lower()


def _language_codes(languages) -> list[str]:
    """pyttsx3 gives languages as str or bytes (b'\\x05en-us' from eSpeak); normalise to 'en-us'."""
    codes = []
    for language in languages or []:
        if isinstance(language, bytes):
            language = language[1:].decode("ascii", "ignore") if language[:1] < b" " else language.decode()
        codes.append(str(language).lower().replace("_", "-"))
    return codes
