"""Streams of audio blocks handed between threads, so the stages of a build run on separate cores.

numpy and lameenc let go of the GIL while they work, so rendering a track beside encoding it
takes about as long as the longer of the two, not their sum. A queue of a few blocks between
two threads keeps memory flat.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

import numpy as np

DEPTH = 8  # blocks waiting between two threads, at most
_END = None


def ahead(blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The blocks, made on a thread of their own, a few ahead of their reader; an error there is raised here."""
    handed: queue.Queue[tuple[np.ndarray | None, BaseException | None]] = queue.Queue(maxsize=DEPTH)
    stop = threading.Event()

    def run() -> None:
        try:
            for block in blocks:
                if stop.is_set():
                    return
                handed.put((block, None))
            handed.put((_END, None))
        except BaseException as error:  # raised in the reader's thread below
            handed.put((_END, error))

    threading.Thread(target=run, daemon=True).start()
    try:
        while True:
            block, error = handed.get()
            if error is not None:
                raise error
            if block is _END:
                return
            yield block
    finally:
        stop.set()
        while not handed.empty():  # unblock a producer waiting to put
            handed.get_nowait()
