"""Tests for the synthesized sound library (voiceguide.soundgen).

The library is written once into a temporary folder and decoded with
miniaudio, so these tests check the files as the renderer will read them.
"""

from __future__ import annotations

import wave
from pathlib import Path

import miniaudio
import numpy as np
import pytest

from voiceguide import soundgen

SR = 44100
REPO_SOUNDS = Path(__file__).resolve().parent.parent / "sounds"

EXPECTED_SECONDS = {
    "chime": 3.0,
    "bell": 2.5,
    "bowl": 6.0,
    "tick": 0.06,
    "breathe-in": 4.0,
    "breathe-out": 4.0,
    "rain": 24.0,
    "drone": 24.0,
}
PEAK_DBFS = {
    "chime": -6.0,
    "bell": -6.0,
    "bowl": -6.0,
    "tick": -10.0,
    "breathe-in": -12.0,
    "breathe-out": -12.0,
}
BEDS = ("rain", "drone")
BED_RMS_DBFS = -20.0
ONE_SHOTS = tuple(PEAK_DBFS)


def dbfs(x: float) -> float:
    return 20 * np.log10(max(x, 1e-12))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / SR)[np.argmax(spectrum)])


def read_pcm(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> dict[str, Path]:
    paths = soundgen.write_library(tmp_path_factory.mktemp("sounds"))
    return {p.stem: p for p in paths}


def decode(path: Path) -> miniaudio.DecodedSoundFile:
    return miniaudio.decode_file(
        str(path), output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1, sample_rate=SR
    )


@pytest.fixture(scope="module")
def audio(library) -> dict[str, np.ndarray]:
    """Decoded samples as floats in [-1, 1)."""
    return {
        name: np.frombuffer(decode(path).samples, dtype=np.int16).astype(np.float64) / 32768
        for name, path in library.items()
    }


def test_writes_exactly_the_library(library):
    assert set(library) == set(EXPECTED_SECONDS)
    folder = next(iter(library.values())).parent
    # Temp files were all replaced into place; nothing else is left behind.
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{n}.wav" for n in EXPECTED_SECONDS)


@pytest.mark.parametrize("name", EXPECTED_SECONDS)
def test_format_and_duration(library, name):
    frames = round(EXPECTED_SECONDS[name] * SR)
    with wave.open(str(library[name])) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, SR)
        assert w.getnframes() == frames
    decoded = decode(library[name])
    assert decoded.sample_rate == SR
    assert decoded.nchannels == 1
    assert decoded.num_frames == frames


@pytest.mark.parametrize("name", ONE_SHOTS)
def test_peak_level(audio, name):
    assert dbfs(np.max(np.abs(audio[name]))) == pytest.approx(PEAK_DBFS[name], abs=1.0)


@pytest.mark.parametrize("name", BEDS)
def test_bed_level(audio, name):
    x = audio[name]
    assert dbfs(rms(x)) == pytest.approx(BED_RMS_DBFS, abs=1.0)
    assert dbfs(np.max(np.abs(x))) < -3.0  # headroom: no clipping, no loud pops


@pytest.mark.parametrize("name", ONE_SHOTS)
def test_one_shots_start_and_end_in_silence(audio, name):
    x = audio[name]
    assert dbfs(abs(x[0])) < -60 and dbfs(abs(x[-1])) < -60
    # Onset is a ramp, not a step (no click) ...
    assert dbfs(np.max(np.abs(x[:5]))) < -40
    # ... and the sound has died away by the end rather than being cut off.
    assert dbfs(np.max(np.abs(x[-int(0.010 * SR) :]))) < -50


@pytest.mark.parametrize(
    ("name", "fundamental_hz"),
    [("chime", 660.0), ("bell", 1046.5), ("bowl", 256.0)],  # E5; C6, a small high bell; a low singing bowl
)
def test_bells_strongest_peak_is_the_fundamental(audio, name, fundamental_hz):
    assert dominant_hz(audio[name]) == pytest.approx(fundamental_hz, abs=5.0)


def test_breath_tones_glide_in_the_right_direction(audio):
    first_in, last_in = dominant_hz(audio["breathe-in"][:SR]), dominant_hz(audio["breathe-in"][-SR:])
    first_out, last_out = dominant_hz(audio["breathe-out"][:SR]), dominant_hz(audio["breathe-out"][-SR:])
    assert first_in < last_in
    assert first_out > last_out
    assert 200 < first_in < 260 and 300 < last_in < 350
    assert 300 < first_out < 350 and 200 < last_out < 260


@pytest.mark.parametrize("name", BEDS)
def test_beds_loop_without_a_seam(audio, name):
    x = audio[name]
    jump = abs(x[0] - x[-1])
    assert jump < np.percentile(np.abs(np.diff(x)), 99.9)
    window = int(0.100 * SR)
    assert dbfs(rms(x[-window:])) == pytest.approx(dbfs(rms(x[:window])), abs=1.0)


def test_generators_return_float32_in_range():
    for name, make in soundgen.SOUNDS.items():
        x = make()
        assert x.dtype == np.float32 and x.ndim == 1, name
        assert np.max(np.abs(x)) <= 1.0, name


def test_committed_sounds_match_the_code(library):
    """sounds/ is generated output: it must equal what write_library produces now.

    Samples may differ by a rounding step across numpy versions and CPUs, no more.
    If this fails after an intentional change, run `python -m voiceguide.soundgen`.
    """
    committed = sorted(p.name for p in REPO_SOUNDS.glob("*.wav"))
    assert committed == sorted(p.name for p in library.values())
    for path in library.values():
        fresh, stored = read_pcm(path), read_pcm(REPO_SOUNDS / path.name)
        assert fresh.shape == stored.shape, f"sounds/{path.name} is stale"
        assert np.abs(fresh.astype(np.int32) - stored).max() <= 2, f"sounds/{path.name} is stale"


def test_cli_writes_folder_and_prints_one_line_per_file(tmp_path, capsys):
    assert soundgen.main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(EXPECTED_SECONDS)
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == sorted(f"{n}.wav" for n in EXPECTED_SECONDS)
