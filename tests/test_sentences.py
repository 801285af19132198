"""Piper voices each sentence once: kept in the clip cache's folder, reused by every line that says it."""

from __future__ import annotations

import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, assert_speech_where_planned, decode, run_cli
from piper import SynthesisConfig

from voiceguide.voices import pool
from voiceguide.voices.cache import CHECK, CLIPS, HEADER, SENTENCES
from voiceguide.voices.piper_engine import VOLUME, PiperEngine, length_scale

PIPER = ("--engine", "piper")
UPPER_BACK = [
    "Warm your hands first.",
    "Place them flat on the upper back.",
    "Breathe in slowly with your partner.",
    "Let the weight of your hands sink in.",
]
SPINE = ["Glide down along the spine.", "Breathe in slowly with your partner."]  # shares a sentence
DISTINCT_SENTENCES = 5


def write_routine(folder: Path, upper_back: list[str]) -> Path:
    path = folder / "sentences.yaml"
    path.write_text(
        "title: Sentences\nsteps:\n"
        f"  - name: Upper back\n    say: {' '.join(upper_back)}\n    hold: 2s\n"
        f"  - name: Spine\n    say: {' '.join(SPINE)}\n    hold: 2s\n",
        encoding="utf-8",
    )
    return path


def entries(cache: Path, kind: str) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in sorted((cache / kind).rglob("*.wav"))}


def build(routine: Path, out: Path, cache: Path, *options: str):
    result = run_cli("build", routine, "-o", out, "--cache-dir", cache, *PIPER, "-j", "1", *options)
    assert result.exit_code == 0, result.stderr
    return result


NOTES_VARIABLE = "VOICEGUIDE_TEST_VOICED"  # where noting_worker.py notes each sentence it voices
NOTING_WORKER = [sys.executable, str(FIXTURES / "noting_worker.py")]


def noted(notes: Path) -> list[str]:
    return notes.read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def first_build(tmp_path_factory):
    """The routine built once with a clip cache of its own, in a folder of routine, out/ and cache/;
    and the sentences the Piper model voiced for it, by their phonemes."""
    folder = tmp_path_factory.mktemp("sentences")
    notes = folder / "voiced.txt"
    notes.touch()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(NOTES_VARIABLE, str(notes))
        patch.setattr(pool, "WORKER_COMMAND", NOTING_WORKER)
        build(write_routine(folder, UPPER_BACK), folder / "out", folder / "cache")
    return folder, noted(notes)


@pytest.fixture
def voiced(tmp_path, monkeypatch):
    """The sentences the Piper model voices from here on, by their phonemes, noted by the workers.

    Each call returns those noted since the last call."""
    notes = tmp_path / "voiced.txt"
    notes.touch()
    monkeypatch.setenv(NOTES_VARIABLE, str(notes))
    monkeypatch.setattr(pool, "WORKER_COMMAND", NOTING_WORKER)
    read = 0

    def since() -> list[str]:
        nonlocal read
        lines = noted(notes)
        lines, read = lines[read:], len(lines)
        return lines

    return since


@pytest.fixture
def built(first_build, tmp_path, voiced):
    """A copy of the first build to change: (routine, output folder, cache folder)."""
    project = tmp_path / "project"
    shutil.copytree(first_build[0], project)
    return project / "sentences.yaml", project / "out", project / "cache"


def test_each_sentence_is_voiced_once_and_a_shared_one_once_for_both_lines(first_build):
    folder, sentences = first_build
    assert len(sentences) == DISTINCT_SENTENCES == len(set(sentences))  # six sentences said, one of them twice
    cache = folder / "cache"
    assert len(entries(cache, CLIPS)) == 2
    assert len(entries(cache, SENTENCES)) == DISTINCT_SENTENCES
    shown = run_cli("cache", "--cache-dir", cache)
    assert shown.stdout.startswith(f"{cache}: 2 clips, {DISTINCT_SENTENCES} voiced sentences, ")


def test_editing_one_sentence_voices_that_sentence_alone(first_build, built, voiced):
    routine, out, cache = built
    kept, before = entries(cache, SENTENCES), first_build[1]
    edited = [*UPPER_BACK[:2], "Breathe out slowly with your partner.", UPPER_BACK[3]]
    write_routine(routine.parent, edited)
    result = build(routine, out, cache)
    assert "1 clip reused, 1 new" in result.stdout
    (new,) = voiced()
    assert new not in before and "bɹˈiːð ˈaʊt" in new  # "breathe out"
    now = entries(cache, SENTENCES)
    assert len(now) == DISTINCT_SENTENCES + 1
    assert {path: now[path] for path in kept} == kept  # the kept sentences are as they were
    mp3 = out / "sentences.mp3"
    assert_speech_where_planned(mp3)


def test_a_line_made_from_kept_sentences_is_the_line_voiced_fresh(built, voiced):
    """Sentence audio is kept exactly, so a line made again from it is the same clip, and the same track."""
    routine, out, cache = built
    mp3 = out / "sentences.mp3"
    first_clips, first_mp3, first_length = entries(cache, CLIPS), mp3.read_bytes(), len(decode(mp3))
    sentences = entries(cache, SENTENCES)
    for clip in first_clips:
        clip.unlink()
    result = build(routine, out, cache, "--force")
    assert "0 clips reused, 2 new" in result.stdout
    assert voiced() == [] and entries(cache, SENTENCES) == sentences  # no sentence voiced again
    assert entries(cache, CLIPS) == first_clips
    assert len(decode(mp3)) == first_length and mp3.read_bytes() == first_mp3


def test_prune_removes_the_voiced_sentences_and_builds_voice_them_again(built, voiced, monkeypatch):
    routine, out, cache = built
    monkeypatch.chdir(routine.parent)
    sentences = entries(cache, SENTENCES)
    pruned = run_cli("cache", "--cache-dir", cache, "prune", routine, "-o", out)
    assert pruned.exit_code == 0, pruned.stderr
    freed = sum(len(entry) for entry in sentences.values())
    assert f"the voiced sentences ({freed / 1e6:.1f} MB), which builds make again" in pruned.stdout
    assert entries(cache, SENTENCES) == {} and len(entries(cache, CLIPS)) == 2
    write_routine(routine.parent, [*UPPER_BACK[:3], "Let your hands sink in."])
    build(routine, out, cache)
    assert len(voiced()) == len(entries(cache, SENTENCES)) == 4  # the edited line's sentences, voiced again
    assert_speech_where_planned(out / "sentences.mp3")


# ---------------------------------------------------------------- the engine, in this process


def engine_output(engine: PiperEngine, text: str, path: Path) -> np.ndarray:
    engine.synthesize(text, 1.0, path)
    with wave.open(str(path)) as file:
        return np.frombuffer(file.readframes(file.getnframes()), dtype="<i2")


def test_a_kept_sentence_is_the_very_audio_each_line_that_says_it_gets(tmp_path):
    # Piper adds random noise: without a cache, the same sentence voiced twice differs...
    engine, uncached = PiperEngine(None, "en-us", tmp_path / "cache"), PiperEngine(None, "en-us")
    once, twice = (engine_output(uncached, "Rest your palms on the shoulders.", tmp_path / f"{n}.wav") for n in (1, 2))
    assert not np.array_equal(once[: min(once.size, twice.size)], twice[: min(once.size, twice.size)])
    # ...so the same samples in every line that says it show it was voiced once.
    alone = engine_output(engine, "Rest your palms on the shoulders.", tmp_path / "alone.wav")
    before = engine_output(engine, "Breathe with me. Rest your palms on the shoulders.", tmp_path / "before.wav")
    after = engine_output(engine, "Rest your palms on the shoulders. Stay a while.", tmp_path / "after.wav")
    assert before.size > alone.size and np.array_equal(before[-alone.size :], alone)
    assert after.size > alone.size and np.array_equal(after[: alone.size], alone)


def test_a_damaged_sentence_is_voiced_again_never_played(tmp_path):
    engine, text = PiperEngine(None, "en-us", tmp_path / "cache"), "Slide your thumbs along the shoulder blades."
    first = engine_output(engine, text, tmp_path / "first.wav")
    (entry,) = entries(tmp_path / "cache", SENTENCES)
    damaged = bytearray(entry.read_bytes())
    middle = len(damaged) // 2
    damaged[middle : middle + 16] = bytes(byte ^ 0xFF for byte in damaged[middle : middle + 16])
    entry.write_bytes(bytes(damaged))  # the same size, the header intact: only the checksum tells
    damaged_samples = np.frombuffer(bytes(damaged[HEADER.size : -CHECK.size]), dtype="<i2")
    assert damaged_samples.size == first.size and not np.array_equal(damaged_samples, first)
    second = engine_output(engine, text, tmp_path / "second.wav")
    assert not np.array_equal(second, damaged_samples)
    assert not np.array_equal(second[: min(first.size, second.size)], first[: min(first.size, second.size)])
    assert entry.read_bytes() != bytes(damaged)
    kept = engine_output(engine, text, tmp_path / "kept.wav")
    assert np.array_equal(kept, second)  # the one voiced again is kept whole, and played from then on


def test_a_sentence_is_voiced_as_piper_voices_it(tmp_path, monkeypatch):
    """Scaled to its peak, then to the volume, and made int16 exactly as PiperVoice.synthesize does."""
    engine = PiperEngine(None, "en-us", tmp_path)
    piper = engine._piper
    text = "Let your shoulders drop."
    settings = SynthesisConfig(length_scale=piper.config.length_scale * length_scale(1.0), volume=VOLUME)
    model_output = 0.6 * piper.phoneme_ids_to_audio(piper.phonemes_to_ids(piper.phonemize(text)[0]), settings)
    monkeypatch.setattr(piper, "phoneme_ids_to_audio", lambda *args, **kwargs: model_output)  # its noise fixed
    (piper_own,) = [chunk.audio_int16_array for chunk in piper.synthesize(text, settings)]
    assert np.array_equal(engine_output(engine, text, tmp_path / "line.wav"), piper_own)
