"""Whether another served model instance on this host is running now: one byte per instance in shared memory.

Triton runs each instance of a python-backend model in its own stub process, and a stub cannot see what the
others do. A lone request runs fastest on a session whose threads spin while the run lasts (NanoDet, 2 cores:
20.9 ms against 29.0 with threads that sleep between operators), but spinning threads take the cores from
whatever else runs at the time: served that way, concurrency 8 lost 6-12% of its rate (``bench/README.md``
"Spinning while a run lasts"). The board lets a stub ask "is any other instance running?" before it picks a
session. It spans every model, since they all share the cores.

The board is a file of :data:`SLOTS` bytes under ``/dev/shm`` (the temporary directory where there is none;
a container has its own). Each stub claims a free slot by locking its byte of a sibling lock file (``fcntl``):
a stub that dies frees its slot with its lock, and every claim clears the marks of slots nobody holds. The
answer is a hint, never a lock: two requests that start in the same microsecond may both spin, which costs a
little speed and nothing else; a stub that finds no free slot always reads "not alone" (no spinning).
"""

from __future__ import annotations

import fcntl
import functools
import mmap
import os
import tempfile
from pathlib import Path

SLOTS = 256
"""Instances a board tracks (a platform serves about ten models with two instances each)."""

BOARD_NAME = "fovea-instances"

_claimed: set[tuple[str, int]] = set()
"""Slots this process holds: ``fcntl`` locks belong to a process, which could take its own lock again."""


def _board_dir() -> Path:
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK) else Path(tempfile.gettempdir())


class InstanceBoard:
    """This process's slot on the board in ``directory`` (default: ``/dev/shm``)."""

    def __init__(self, directory: Path | None = None) -> None:
        stem = (directory or _board_dir()) / f"{BOARD_NAME}-{os.getuid()}"
        self._stem = str(stem)
        self._lock_fd = os.open(f"{stem}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        board_fd = os.open(f"{stem}.board", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(board_fd).st_size < SLOTS:
                os.ftruncate(board_fd, SLOTS)
            self._board = mmap.mmap(board_fd, SLOTS)
        finally:
            os.close(board_fd)
        self.slot: int | None = None
        for slot in range(SLOTS):
            if (self._stem, slot) in _claimed or not self._lock(slot):
                continue
            if self.slot is None:
                self.slot = slot
                _claimed.add((self._stem, slot))
            else:  # nobody holds it: a dead stub's mark, if any, goes
                fcntl.lockf(self._lock_fd, fcntl.LOCK_UN, 1, slot, os.SEEK_SET)
            self._board[slot] = 0

    def _lock(self, slot: int) -> bool:
        try:
            fcntl.lockf(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, slot, os.SEEK_SET)
        except OSError:
            return False
        return True

    def others_running(self) -> bool:
        """Whether another instance marked itself running (always True without a slot: the safe answer)."""
        if self.slot is None:
            return True
        marks = self._board[:]
        return any(marks[: self.slot]) or any(marks[self.slot + 1 :])

    def running(self, on: bool) -> None:
        if self.slot is not None:
            self._board[self.slot] = 1 if on else 0

    def close(self) -> None:
        """Give the slot back. Closing the lock file drops every lock this process holds on it (POSIX), so a
        process keeps one board open while it serves."""
        self.running(False)
        if self.slot is not None:
            _claimed.discard((self._stem, self.slot))
            self.slot = None
        self._board.close()
        os.close(self._lock_fd)


@functools.cache
def process_board() -> InstanceBoard:
    """This process's one slot on the host's board (a stub serves one instance; it claims at its first
    session, and the slot goes with the process)."""
    return InstanceBoard()
