"""Single key presses from the terminal, as they are typed, on POSIX and on Windows.

On POSIX the terminal is put in cbreak mode while listening: keys arrive one at a time without
Enter and are not echoed, while Ctrl-C still interrupts. The terminal is restored on the way
out, however that happens. When standard input is not a terminal there are no keys.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import time
from collections.abc import Iterator

if sys.platform == "win32":
    import msvcrt
else:
    import termios
    import tty

LEFT, RIGHT = "left", "right"  # the arrow keys; every other key is its character
POSIX_ARROWS = {"\x1b[D": LEFT, "\x1b[C": RIGHT, "\x1bOD": LEFT, "\x1bOC": RIGHT}
WINDOWS_ARROWS = {"K": LEFT, "M": RIGHT}  # the code after a \x00 or \xe0 prefix
WINDOWS_POLL_SECONDS = 0.02


class Keys:
    """No terminal: no keys; read() only waits."""

    live = False

    def read(self, timeout: float) -> list[str]:
        """The keys pressed within `timeout` seconds (returning as soon as there are some), in order."""
        time.sleep(timeout)
        return []


class _PosixKeys(Keys):
    live = True

    def __init__(self, fd: int):
        self.fd = fd

    def read(self, timeout: float) -> list[str]:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        text = os.read(self.fd, 64).decode("utf-8", errors="ignore")
        keys = []
        while text:
            arrow = next((sequence for sequence in POSIX_ARROWS if text.startswith(sequence)), None)
            keys.append(POSIX_ARROWS[arrow] if arrow else text[0])
            text = text[len(arrow) if arrow else 1 :]
        return keys


class _WindowsKeys(Keys):
    live = True

    def read(self, timeout: float) -> list[str]:
        deadline = time.monotonic() + timeout
        keys: list[str] = []
        while not keys and time.monotonic() < deadline:
            if sys.platform == "win32":  # (for type checkers elsewhere)
                while msvcrt.kbhit():
                    key = msvcrt.getwch()
                    keys.append(WINDOWS_ARROWS.get(msvcrt.getwch(), "") if key in ("\x00", "\xe0") else key)
            time.sleep(WINDOWS_POLL_SECONDS)
        return [key for key in keys if key]


@contextlib.contextmanager
def listen() -> Iterator[Keys]:
    """The keys typed at this terminal while the block runs."""
    if not sys.stdin.isatty():
        yield Keys()
    elif sys.platform == "win32":
        yield _WindowsKeys()
    else:
        fd = sys.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            yield _PosixKeys(fd)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
