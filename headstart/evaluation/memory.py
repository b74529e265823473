"""Peak memory of a block of work: on a GPU torch's allocator peak; on the CPU the peak resident
set size above the level at the start, sampled every 20 ms from /proc (a process-wide
``ru_maxrss`` never goes down, so it cannot attribute a peak to one method of several)."""
from __future__ import annotations

import os
import threading
from types import TracebackType

import torch

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:  # not Linux: no sampling, report 0
        return 0


class PeakMemory:
    """``with PeakMemory() as m: ...`` then ``m.peak_mb`` (MiB above the start)."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval = interval
        self.peak_mb = 0.0

    def __enter__(self) -> "PeakMemory":
        self._cuda = torch.cuda.is_available()
        if self._cuda:
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        self._start = self._peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, rss_bytes())

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, rss_bytes())
        if self._cuda:
            self.peak_mb = (torch.cuda.max_memory_allocated() - self._base) / 2**20
        else:
            self.peak_mb = (self._peak - self._start) / 2**20
