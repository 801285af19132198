"""Several lengths in one run (--length 10m,20m,30m): one track each, voiced once, every length checked first."""

from __future__ import annotations

import re
import shutil

import pytest
from conftest import FIXTURES, SAMPLE_RATE, decode, read_plan, run_cli

from voiceguide.voices.cache import CACHE_DIR_VARIABLE

ESPEAK = ("--engine", "pyttsx3")
LINES = 5  # distinct lines two-steps.yaml speaks


def clips_in(cache):
    return sorted(cache.rglob("*.wav"))


@pytest.fixture(scope="module")
def three_lengths(tmp_path_factory):
    """two-steps.yaml built at 30s, 40s and 45s in one run: (output folder, result); its clip cache is out/../cache."""
    out = tmp_path_factory.mktemp("lengths") / "out"
    result = run_cli(
        "build", FIXTURES / "two-steps.yaml", "-o", out, "--cache-dir", out.parent / "cache", "--length", "30s,40s,45s",
        *ESPEAK,
    )
    assert result.exit_code == 0, result.stderr
    return out, result


def test_each_length_is_its_own_exact_track(three_lengths):
    out, _ = three_lengths
    for seconds in (30, 40, 45):
        mp3 = out / f"two-steps-{seconds}s.mp3"
        assert len(decode(mp3)) / SAMPLE_RATE == pytest.approx(seconds, abs=0.05)
        assert read_plan(mp3)["length"] == seconds
    assert not (out / "two-steps.mp3").exists()


def test_the_lines_are_voiced_once_for_every_length(three_lengths):
    out, result = three_lengths
    built = [line for line in result.stdout.splitlines() if line.startswith("built ")]
    assert [line.split()[1] for line in built] == [str(out / f"two-steps-{s}s.mp3") for s in (30, 40, 45)]
    assert built[0].endswith(f"0 clips reused, {LINES} new, in " + built[0].rsplit(" in ", 1)[1])
    assert all(f"{LINES} clips reused, 0 new" in line for line in built[1:])
    assert len(clips_in(out.parent / "cache")) == LINES
    assert result.stdout.splitlines()[-1] == "3 tracks: 3 built, 0 up to date, 0 failed"


def test_a_second_run_finds_every_length_up_to_date(three_lengths, tmp_path):
    out = shutil.copytree(three_lengths[0], tmp_path / "out")
    result = run_cli("build", FIXTURES / "two-steps.yaml", "-o", out, "--length", "45s,30s", *ESPEAK)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"up to date: {out / 'two-steps-45s.mp3'}",
        f"up to date: {out / 'two-steps-30s.mp3'}",
        "2 tracks: 0 built, 2 up to date, 0 failed",
    ]


def test_lengths_out_of_range_fail_before_anything_is_voiced(three_lengths, tmp_path, monkeypatch):
    """With every clip cached the range is exact; without, estimates alone reject what is far out."""
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(three_lengths[0].parent / "cache"))
    cached = shutil.copytree(three_lengths[0], tmp_path / "cached")
    result = run_cli("build", FIXTURES / "two-steps.yaml", "-o", cached, "--length", "5s,35s,2h", *ESPEAK)
    assert result.exit_code == 2
    assert result.stdout == "3 tracks: 0 built, 0 up to date, 3 failed\n"
    assert re.fullmatch(
        r"error: two-steps can run from (\S+) to (\S+); asked for 5s and 2h; lower some steps' 'min', or shorten "
        r"the narration; raise some steps' 'max', or mark steps 'repeatable: true' and use --fill repeat\n",
        result.stderr,
    ), result.stderr
    assert not (cached / "two-steps-35s.mp3").exists()  # not even the length that fits was built
    fresh = tmp_path / "fresh"
    monkeypatch.setenv(CACHE_DIR_VARIABLE, str(fresh / "cache"))
    result = run_cli("build", FIXTURES / "two-steps.yaml", "-o", fresh, "--length", "40s,5s", *ESPEAK)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: two-steps can run from ")
    assert result.stderr.endswith("; asked for 5s; lower some steps' 'min', or shorten the narration\n")
    assert not fresh.exists()  # no clip voiced, nothing written


def test_a_length_estimates_might_reach_is_voiced_then_checked_exactly(tmp_path, own_cache):
    """Just past the estimated range the pre-check lets the build try: after voicing, the exact range decides."""
    estimated = run_cli("plan", FIXTURES / "two-steps.yaml", "--length", "1s", *ESPEAK)
    longest = float(estimated.stderr.split(" to ")[1].split("s;")[0])
    just_past = f"{longest + 0.5:.1f}s"
    result = run_cli("build", FIXTURES / "two-steps.yaml", "-o", tmp_path / "out", "--length", just_past, *ESPEAK)
    assert len(clips_in(own_cache)) == LINES  # voiced: the estimates could not rule it out
    if result.exit_code == 2:
        expected = rf"error: two-steps can run from \S+ to \S+; asked for {just_past}; raise .*\n"
        assert re.fullmatch(expected, result.stderr)
    else:
        assert (tmp_path / "out" / f"two-steps-{just_past}.mp3").exists()


@pytest.mark.parametrize("command", ["build", "plan"])
def test_a_bare_number_under_a_minute_asks_for_minutes(command, tmp_path):
    output = ("-o", tmp_path) if command == "build" else ()
    result = run_cli(command, FIXTURES / "two-steps.yaml", *output, "--length", "20")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--length': 20 alone would be 20 seconds; write 20m for minutes "
        "(20s if you mean seconds)"
    )
    assert not tmp_path.joinpath("two-steps.mp3").exists()


def test_plan_shows_one_length_at_a_time(tmp_path):
    result = run_cli("plan", FIXTURES / "two-steps.yaml", "--length", "30s,40s")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for '--length': plan shows one length at a time, got '30s,40s'; build takes several"
    )
