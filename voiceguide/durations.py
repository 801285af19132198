"""Durations as routines and messages write them: 45s, 1m30s, 2m, 1h, 1:30, 1:02:30."""

from __future__ import annotations

import math
import re

_DURATION_UNITS = re.compile(
    r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)
_DURATION_CLOCK = re.compile(r"^(?:(?P<h>\d+):)?(?P<m>\d+):(?P<s>\d{2}(?:\.\d+)?)$")
DURATION_HINT = "expected a duration like 45s, 1m30s, 2m or 1:30"


def parse_duration(text: str) -> float:
    """Seconds in `text` ('45', '45s', '1m30s', '2m', '1h', '1:30', '1:02:30'); ValueError if not one."""
    compact = text.strip().lower().replace(" ", "")
    if not compact:
        raise ValueError(text)
    try:
        seconds = float(compact)
    except ValueError:
        clock = _DURATION_CLOCK.match(compact)
        match = clock or _DURATION_UNITS.match(compact)
        if not match or not any(match.groupdict().values()):
            raise ValueError(text) from None
        parts = {unit: float(value or 0) for unit, value in match.groupdict().items()}
        if clock and (parts["s"] >= 60 or (clock["h"] and parts["m"] >= 60)):
            raise ValueError(text) from None  # 1:99 is a typo, not 2m39s
        seconds = parts["h"] * 3600 + parts["m"] * 60 + parts["s"]
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(text)
    return seconds


def format_duration(seconds: float) -> str:
    """The inverse of parse_duration, for messages: 400 -> '6m40s', 45.5 -> '45.5s'.

    Tenths of a second are shown only under a minute, where they matter.
    """
    total = round(seconds, 1) if seconds < 60 else round(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{int(hours)}h" if hours else "") + (f"{int(minutes)}m" if minutes else "")
    if secs or not text:
        text += f"{secs:g}s"
    return text
