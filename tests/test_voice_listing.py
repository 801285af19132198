"""`voiceguide voices`: the voices for the user's (or the routine's) language, neural ones first; --all for the rest."""

from __future__ import annotations

import re

import pytest
from conftest import HAS_PIPER, ROUTINES, run_cli

from voiceguide.voices.choice import user_language

JOE = "en_US-joe-medium"
# eSpeak NG's constructed languages and its test voice: listed only with --all, and last.
CONSTRUCTED = ["Esperanto", "Lojban", "Klingon", "Quenya", "Sindarin", "xextan-test"]
VOICE_LINE = re.compile(r"  (?P<name>.+?)  +(?P<languages>\S.*)")


@pytest.fixture
def locale(monkeypatch):
    """Set the user's locale as LANG, with nothing overriding it."""
    for name in ("LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(name, raising=False)
    return lambda value: monkeypatch.setenv("LANG", value)


def sections(stdout: str) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """Each engine's header line and its (voice name, languages) lines, in the order printed."""
    found: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    engine = None
    for line in stdout.splitlines():
        voice = VOICE_LINE.fullmatch(line)
        if voice and engine:
            found[engine][1].append((voice["name"], voice["languages"]))
        elif re.match(r"(piper|pyttsx3): ", line):
            engine = line.split(":")[0]
            found[engine] = (line, [])
        else:
            engine = None
    return found


@pytest.mark.parametrize("value", ["C.UTF-8", "POSIX", "en_GB.UTF-8"])
def test_an_english_or_plain_locale_lists_english_voices_neural_first(locale, value):
    locale(value)
    result = run_cli("voices")
    assert result.exit_code == 0, result.stderr
    listed = sections(result.stdout)
    assert list(listed) == ["piper", "pyttsx3"]  # the neural engine first
    language = "en-gb" if value.startswith("en") else "en"
    header, voices = listed["pyttsx3"]
    assert header == f"pyttsx3: {len(voices)} voices for {language}"
    assert voices[0][0] == "English (Great Britain)"  # the one pyttsx3 speaks English with comes first
    assert voices and all(languages.startswith("en") for _, languages in voices)
    names = [name for _, entries in listed.values() for name, _ in entries]
    assert not set(CONSTRUCTED) & set(names) and "Afrikaans" not in names
    lines = result.stdout.splitlines()
    assert re.fullmatch(r"'voiceguide voices --all' lists \d+ more voices, in other languages", lines[-2])
    example = f"{{engine: piper, name: {JOE}}}" if HAS_PIPER else "{engine: pyttsx3, name: English (Great Britain)}"
    assert lines[-1] == f"In a routine:  voice: {example}"


def test_a_french_locale_lists_french_voices_with_a_french_example(locale):
    locale("fr_FR.UTF-8")
    result = run_cli("voices")
    assert result.exit_code == 0, result.stderr
    header, voices = sections(result.stdout)["pyttsx3"]
    assert header == "pyttsx3: 3 voices for fr-fr"
    assert [name for name, _ in voices] == ["French (France)", "French (Belgium)", "French (Switzerland)"]
    assert result.stdout.splitlines()[-1] == "In a routine:  voice: {engine: pyttsx3, name: French (France)}"


def test_a_routine_gives_its_language_and_language_overrides_it(locale):
    locale("C.UTF-8")
    french = ROUTINES / "breath-paced-reflex-points-fr.yaml"
    result = run_cli("voices", french, "--engine", "pyttsx3")
    assert result.stdout.splitlines()[0] == "pyttsx3: 3 voices for fr"
    result = run_cli("voices", french, "--engine", "pyttsx3", "--language", "de")
    assert sections(result.stdout)["pyttsx3"] == ("pyttsx3: 1 voice for de", [("German", "de")])


def test_all_lists_every_voice_the_languages_first_and_constructed_ones_last(locale):
    locale("C.UTF-8")
    shown = sections(run_cli("voices").stdout)["pyttsx3"][1]
    result = run_cli("voices", "--all", "--engine", "pyttsx3")
    assert result.exit_code == 0, result.stderr
    header, voices = sections(result.stdout)["pyttsx3"]
    assert header == f"pyttsx3: {len(voices)} voices, {len(shown)} for en first"
    names = [name for name, _ in voices]
    assert voices[: len(shown)] == shown
    assert "Afrikaans" in names[len(shown) :]
    first_constructed = min(names.index(name) for name in CONSTRUCTED)
    assert set(names[first_constructed:]) >= set(CONSTRUCTED)
    assert "Afrikaans" in names[:first_constructed]
    assert "more voices" not in result.stdout


def test_a_language_no_voice_speaks_says_so(locale):
    result = run_cli("voices", "--language", "xx", "--engine", "pyttsx3")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "pyttsx3: 0 voices for xx"
    assert lines[-1] == "No voice here speaks xx."


@pytest.mark.parametrize(
    ("environment", "language"),
    [
        ({}, "en"),
        ({"LANG": "de_DE.UTF-8"}, "de-de"),
        ({"LANG": "de_DE.UTF-8", "LC_MESSAGES": "it_IT"}, "it-it"),
        ({"LANG": "de_DE.UTF-8", "LC_ALL": "pt_BR.UTF-8"}, "pt-br"),
        ({"LANG": "C"}, "en"),
        ({"LANG": "sr_RS@latin"}, "sr-rs"),
    ],
)
def test_the_users_language_comes_from_the_locale(environment, language):
    assert user_language(environment) == language
