"""The engine's thread count: the cores other processes leave free, this process's own work aside."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from gemma_lsp.engine.cores import CoreMeter

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_another_busy_process_takes_a_core_away():
    meter = CoreMeter(cores=2)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.6)
        assert meter.free_cores() == 1
    finally:
        busy.kill()
        busy.wait()


def test_this_process_own_work_does_not_count_against_it():
    meter = CoreMeter(cores=2)
    spin(0.4)  # our own generation would look like this
    own = meter.free_cores()
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.4)
        other = meter.free_cores()
    finally:
        busy.kill()
        busy.wait()
    assert own >= other and other == 1


def test_a_look_right_after_the_last_keeps_its_answer():
    meter = CoreMeter(cores=2)
    first = meter.free_cores()
    assert meter.free_cores() == first and 1 <= first <= 2
