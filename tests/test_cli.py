"""The command line itself: every command has help with an example, and errors exit 2."""

from __future__ import annotations

import click
import pytest

from voiceguide.cli import main


def all_commands(group: click.Group, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("command", list(all_commands(main)), ids=" ".join)
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
