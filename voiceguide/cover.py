"""Cover art: the routine's own image, or a calm cover drawn here with the title.

The drawn cover is a small PNG made with numpy and zlib: a dusk gradient, a soft glow, and the
title in a built-in 5x7 pixel font, so no imaging library is needed.
"""

from __future__ import annotations

import struct
import textwrap
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from voiceguide.files import not_a_file

SIZE = 600  # pixels, square
MARGIN = 60
MAX_IMAGE_BYTES = 5_000_000
TOP, BOTTOM = np.array([18, 26, 44]), np.array([40, 74, 86])  # night blue to deep teal
GLOW = np.array([90, 120, 130])
INK = np.array([238, 230, 212])  # warm off-white
FOOTER = "VOICEGUIDE"

# Each glyph is 7 rows of 5 pixels, one byte per row in hex, top row first, high bit on the left.
# Titles are drawn in capitals; accents are dropped and unknown characters become spaces.
FONT = {
    "A": "0e11111f111111", "B": "1e11111e11111e", "C": "0e11101010110e", "D": "1c12111111121c",
    "E": "1f10101e10101f", "F": "1f10101e101010", "G": "0e11101711110f", "H": "1111111f111111",
    "I": "0e04040404040e", "J": "0702020202120c", "K": "11121418141211", "L": "1010101010101f",
    "M": "111b1515111111", "N": "11111915131111", "O": "0e11111111110e", "P": "1e11111e101010",
    "Q": "0e11111115120d", "R": "1e11111e141211", "S": "0f10100e01011e", "T": "1f040404040404",
    "U": "1111111111110e", "V": "11111111110a04", "W": "1111111515150a", "X": "11110a040a1111",
    "Y": "1111110a040404", "Z": "1f01020408101f", "0": "0e11131519110e", "1": "040c040404040e",
    "2": "0e11010204081f", "3": "1f02040201110e", "4": "02060a121f0202", "5": "1f101e0101110e",
    "6": "0608101e11110e", "7": "1f010204080808", "8": "0e11110e11110e", "9": "0e11110f01020c",
    ".": "00000000000c0c", ",": "000000000c0408", "'": "0c040800000000", "-": "0000001f000000",
    ":": "000c0c000c0c00", "!": "04040404040004", "?": "0e110102040004", "&": "0c12140815120d",
    "(": "02040808080402", ")": "08040202020408", "/": "00010204081000", " ": "00000000000000",
}
GLYPH_WIDTH, GLYPH_HEIGHT = 5, 7
ADVANCE, LINE_HEIGHT = 6, 10  # in font pixels: a glyph and its spacing


@dataclass(frozen=True)
class Artwork:
    data: bytes
    mime: str  # image/png or image/jpeg


def image_mime(data: bytes) -> str | None:
    """image/png or image/jpeg from the file's first bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


def check_image(path: Path) -> None:
    """ValueError with a message for the user unless `path` is a PNG or JPEG file of fitting size."""
    try:
        problem = not_a_file(path)
        if problem:
            raise ValueError(f"image {path.name!r} {problem}")
        size = path.stat().st_size
        with path.open("rb") as file:
            start = file.read(8)
    except OSError as error:
        raise ValueError(f"cannot read image {path.name[:80]!r}: {error.strerror}") from None
    if size > MAX_IMAGE_BYTES:
        limit = MAX_IMAGE_BYTES // 1_000_000
        raise ValueError(f"image {path.name!r} is {size / 1e6:.1f} MB; use one of at most {limit} MB")
    if image_mime(start) is None:
        raise ValueError(f"{path.name!r} is not a PNG or JPEG image")


def artwork(title: str, image: Path | None) -> Artwork:
    """The routine's own image if it names one (already checked), else a cover drawn with the title."""
    if image is not None:
        data = image.read_bytes()
        mime = image_mime(data)
        assert mime is not None, "the routine's loader checked the image"
        return Artwork(data, mime)
    return Artwork(encode_png(draw_cover(title)), "image/png")


def draw_cover(title: str) -> np.ndarray:
    """A SIZE x SIZE RGB cover: gradient, glow, and the title centred in the largest type that fits."""
    rows = np.linspace(0, 1, SIZE)[:, None, None]
    image = TOP + (BOTTOM - TOP) * rows
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    glow = np.exp(-((x - 0.5) ** 2 + (y - 0.38) ** 2) / 0.06)[..., None]
    image = image + (GLOW - image) * 0.35 * glow
    lines, scale = _fit(_printable(title))
    height = (len(lines) * LINE_HEIGHT - (LINE_HEIGHT - GLYPH_HEIGHT)) * scale
    _draw_lines(image, lines, scale, top=(SIZE - height) // 2, opacity=1.0)
    _draw_lines(image, [FOOTER], 2, top=SIZE - MARGIN // 2 - GLYPH_HEIGHT * 2, opacity=0.45)
    return np.round(image).astype(np.uint8)


def _printable(title: str) -> str:
    """The title in capitals the font has: accents dropped, other characters as spaces."""
    plain = unicodedata.normalize("NFKD", title.upper()).encode("ascii", "ignore").decode()
    return " ".join("".join(char if char in FONT else " " for char in plain).split())


def _fit(text: str) -> tuple[list[str], int]:
    """The text wrapped into lines, and the largest scale (pixels per font pixel) at which they fit."""
    width = SIZE - 2 * MARGIN
    for scale in range(10, 1, -1):
        columns = (width // scale + 1) // ADVANCE
        lines = textwrap.wrap(text, columns, break_long_words=True) or [""]
        if len(lines) * LINE_HEIGHT * scale <= width:
            return lines, scale
    return lines[: width // (LINE_HEIGHT * scale)], scale


def _draw_lines(image: np.ndarray, lines: list[str], scale: int, top: int, opacity: float) -> None:
    """Draw centred lines of text into `image` (float RGB), in place."""
    for index, line in enumerate(lines):
        mask = np.hstack(
            [np.pad(_glyph(char), ((0, 0), (0, ADVANCE - GLYPH_WIDTH))) for char in line]
        )[:, : len(line) * ADVANCE - (ADVANCE - GLYPH_WIDTH)]
        mask = np.kron(mask, np.ones((scale, scale)))
        row = top + index * LINE_HEIGHT * scale
        column = (SIZE - mask.shape[1]) // 2
        region = image[row : row + mask.shape[0], column : column + mask.shape[1]]
        region += (INK - region) * (opacity * mask)[..., None]


def _glyph(char: str) -> np.ndarray:
    rows = bytes.fromhex(FONT[char])
    return np.array([[(row >> (GLYPH_WIDTH - 1 - bit)) & 1 for bit in range(GLYPH_WIDTH)] for row in rows], dtype=float)


def encode_png(pixels: np.ndarray) -> bytes:
    """An 8-bit RGB PNG of `pixels` (height x width x 3, uint8); every row uses the 'Up' filter."""
    height, width, _ = pixels.shape
    rows = pixels.reshape(height, width * 3)
    up = np.diff(rows, axis=0, prepend=np.zeros((1, width * 3), dtype=np.uint8))  # wraps modulo 256
    raw = np.hstack([np.full((height, 1), 2, dtype=np.uint8), up]).tobytes()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
