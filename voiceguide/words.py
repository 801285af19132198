"""Numbers in words for people: "1 step", "2 steps", in everything printed or written."""

from __future__ import annotations


def count(number: int, noun: str) -> str:
    """`number` and `noun`, in the plural unless there is exactly one: '1 chapter', '0 chapters', '12 chapters'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"
