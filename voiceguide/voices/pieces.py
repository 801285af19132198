"""Long text cut at natural breaks into pieces short enough to voice in bounded memory.

Piper voices each sentence in one pass, and its memory grows with the sentence: about 0.9 MB a
character, so a 5,000-character line without a full stop took 5 GB. Cutting first at sentence
ends, then at clause marks (, ; : —), then between words, keeps every piece at most
PIECE_CHARACTERS long (about 15 s of speech, 0.4 GB), while every sentence the bundled routines
hold (the longest is 161 characters) stays whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PIECE_CHARACTERS = 250

# Each kind of break, coarsest first: where a piece may end (the match's end), and what follows.
BREAKS = (
    ("sentence", re.compile(r"[.!?…][\"'”’»)\]]*(?=\s)|[。！？]")),
    ("clause", re.compile(r"[,;:–—](?=\s)|—|[、，；：]")),
    ("word", re.compile(r"\S(?=\s)")),
)


@dataclass(frozen=True)
class Piece:
    text: str
    after: str  # the break that ends it: "sentence", "clause", "word", "cut" (none found), or "end"


def cut(text: str, limit: int = PIECE_CHARACTERS) -> list[Piece]:
    """`text` in pieces of at most `limit` characters, each ending at the coarsest break that fits.

    A run of more than `limit` characters with no break at all is cut every `limit` characters.
    Joined with single spaces, the pieces give `text` back with the whitespace at each cut made one space.
    """
    pieces = []
    rest = text.strip()
    while len(rest) > limit:
        end, after = _last_break(rest[: limit + 1], limit)
        pieces.append(Piece(rest[:end].rstrip(), after))
        rest = rest[end:].lstrip()
    if rest:
        pieces.append(Piece(rest, "end"))
    return pieces


def _last_break(window: str, limit: int) -> tuple[int, str]:
    """Where in `window` the piece ends (at most `limit` characters in), and the kind of break there."""
    for kind, pattern in BREAKS:
        ends = [match.end() for match in pattern.finditer(window) if 0 < match.end() <= limit]
        if ends:
            return ends[-1], kind
    return limit, "cut"
