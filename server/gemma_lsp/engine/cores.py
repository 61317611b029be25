"""How many cores other processes leave free: the in-process engine's thread count per request.

Measured with the real Gemma 3 270M on a 2-core machine (``gemma-lsp bench quality``, 12 cases):

| threads | machine | cold p50 | typed p50 |
|---|---|---|---|
| 1 | idle | 1,395 ms | 218 ms |
| 2 | idle | 877 ms | 167 ms |
| 1 | one core busy with another process | 1,346 ms | 253 ms |
| 2 | one core busy with another process | 2,099 ms | 546 ms |

llama.cpp's threads meet at a barrier after every operation, so a thread that loses its core to
another process stalls them all: every core is best when the cores are free, and only the free
ones when they are not. With ``model.n_threads`` unset the engine therefore looks, before each
request, at how much CPU time the *other* processes used since its last look (``/proc/stat``
minus this process's own time) and runs on the cores they left.
"""

from __future__ import annotations

import os
import time

_MIN_INTERVAL_S = 0.05  # a shorter look says nothing: keep the last answer


class CoreMeter:
    """Free cores since the last call, from Linux's ``/proc/stat``; None where there is none."""

    def __init__(self, cores: int | None = None) -> None:
        self.cores = cores or os.cpu_count() or 1
        self._hz = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._read()
        self._answer = self.cores

    @staticmethod
    def _busy_jiffies() -> int | None:
        try:
            with open("/proc/stat", "rb") as f:
                fields = f.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != b"cpu":
            return None
        values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
        return sum(values) - values[3] - values[4]

    def _read(self) -> tuple[int, float, float] | None:
        busy = self._busy_jiffies()
        if busy is None:
            return None
        times = os.times()
        return busy, times.user + times.system, time.monotonic()

    def free_cores(self) -> int:
        """Cores the other processes left idle since the last call (at least 1)."""
        now = self._read()
        if now is None or self._last is None:
            return self._answer
        wall = now[2] - self._last[2]
        if wall < _MIN_INTERVAL_S:
            return self._answer
        others = max(0.0, (now[0] - self._last[0]) / self._hz - (now[1] - self._last[1]))
        self._last = now
        busy_cores = others / wall
        self._answer = max(1, min(self.cores, int(self.cores - busy_cores + 0.3)))
        return self._answer
