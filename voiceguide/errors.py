"""The one error family a user can cause; the CLI prints these on one line and exits 2."""

from __future__ import annotations


class VoiceguideError(Exception):
    """A problem the user can fix: bad routine, missing file, no voice, impossible length."""


class RoutineError(VoiceguideError):
    """One or more problems in a routine file, each already prefixed with file:line:column."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class SynthesisError(VoiceguideError):
    """A text-to-speech engine failed to produce a usable clip."""


class OutputError(VoiceguideError):
    """The output could not be written (unwritable folder, full disk)."""


def last_line(output: str) -> str:
    """What a failed process said last (its last non-blank line of stderr), for the error naming it."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"
