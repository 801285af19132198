"""The command line itself: every command has help with an example, and errors exit 2."""

from __future__ import annotations

import re
import signal

import click
import pytest
from conftest import voiceguide_process, wait_for, write_steps

from voiceguide.cli import main


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("command", [(), *all_commands(main)], ids=lambda command: " ".join(("voiceguide", *command)))
def test_every_command_has_help_with_an_example(cli, command):
    result = cli(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout, f"voiceguide {' '.join(command)} --help has no example"


def test_top_level_help_lists_every_command(cli):
    result = cli("--help")
    for name in main.commands:
        assert name in result.stdout


def test_a_bad_option_value_exits_2_with_one_message(cli, tmp_path):
    result = cli("build", tmp_path / "r.yaml", "--length", "soon")
    assert result.exit_code == 2
    assert "expected a duration like 45s" in result.stderr


def test_verbose_shows_the_librarys_log_messages(tmp_path):
    routine, out = write_steps(tmp_path, "r", ["Rest your hands."]), tmp_path / "out"
    build = ("build", str(routine), "-o", str(out), "--engine", "pyttsx3", "-q")
    with voiceguide_process(tmp_path, *build) as (quiet, _):
        assert quiet.wait(60) == 0 and quiet.stderr.read() == ""
    with voiceguide_process(tmp_path, *build, "--force", "-v") as (verbose, _):
        assert verbose.wait(60) == 0
        voicing, rendering = verbose.stderr.read().splitlines()[:2]
    assert voicing.startswith(f"voiceguide.build: voicing {routine} with pyttsx3 ")
    assert re.fullmatch(rf"voiceguide\.build: rendering {re.escape(str(out / 'r.mp3'))} \(\d+\.\d s\)", rendering)


@pytest.mark.parametrize(
    ("how", "status", "said"), [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]
)
def test_a_build_stopped_by_a_signal_exits_with_128_plus_its_number(how, status, said, tmp_path):
    routine, out = write_steps(tmp_path, "r", ["Rest your hands."], hold="10m"), tmp_path / "out"
    with voiceguide_process(tmp_path, "build", str(routine), "-o", str(out), "--engine", "pyttsx3", "-q") as (build, _):
        wait_for(lambda: list(out.glob(".r.mp3.*.tmp")), 60)  # rendering
        build.send_signal(how)
        assert build.wait(30) == status
        assert build.stderr.read() == f"\n{said}; earlier outputs are unchanged\n"
    assert not list(out.glob("*.mp3*")) and not list(out.glob(".*.tmp"))
