"""Blocks handed between threads: every block, in order, errors raised where the blocks are read."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from voiceguide import streams


def numbered(count: int, fail_at: int | None = None):
    for index in range(count):
        if index == fail_at:
            raise ValueError(f"block {index} is damaged")
        yield np.full(10, index, dtype=np.int16)


def test_blocks_made_ahead_come_in_order_and_their_error_is_raised_here():
    assert [int(block[0]) for block in streams.ahead(numbered(50))] == list(range(50))
    with pytest.raises(ValueError, match="block 30 is damaged"):
        list(streams.ahead(numbered(50, fail_at=30)))


def test_a_reader_that_stops_early_leaves_no_thread_waiting():
    before = threading.active_count()
    for block in streams.ahead(numbered(1000)):
        if block[0] == 3:
            break
    threading.Event().wait(0.2)
    assert threading.active_count() <= before
