"""Streams of audio blocks handed between threads, so the stages of a build run on separate cores.

numpy's FFTs and lameenc let go of the GIL while they work, so rendering, metering and
encoding a track side by side take about as long as the longest of them, not their sum. A
queue of a few blocks between two threads keeps memory flat.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator

import numpy as np

DEPTH = 8  # blocks waiting between two threads, at most
_END = None


def beside(blocks: Iterable[np.ndarray], consume: Callable[[Iterator[np.ndarray]], None]) -> Iterator[np.ndarray]:
    """The blocks, unchanged, while `consume` reads the same blocks on a thread of its own.

    Once the blocks are through, it waits for `consume` to finish; an error there is raised here.
    """
    handed: queue.Queue[np.ndarray | None] = queue.Queue(maxsize=DEPTH)
    failed: list[BaseException] = []
    ended = threading.Event()

    def received() -> Iterator[np.ndarray]:
        while (block := handed.get()) is not _END:
            yield block
        ended.set()

    def run() -> None:
        try:
            consume(received())
        except BaseException as error:  # raised in the caller's thread below
            failed.append(error)
        while not ended.is_set() and handed.get() is not _END:  # let the producer finish
            pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        for block in blocks:
            if failed:
                break
            handed.put(block)
            yield block
    finally:
        handed.put(_END)
        thread.join()
    if failed:
        raise failed[0]


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
