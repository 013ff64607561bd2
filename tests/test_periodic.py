"""Periodic duties: the retention sweep removes what outlived the retention; a failing round is retried
and the thread survives; every duty stops cleanly."""

import os
import threading
import time

from core.storage import LocalStorage
from tests.helpers import eventually
from worker.periodic import Periodic, retention_sweeper


def test_sweeps_old_objects_and_stops_when_asked(tmp_path):
    storage = LocalStorage(tmp_path)
    storage.put("t/old/image", b"x")
    storage.put("t/new/image", b"y")
    past = time.time() - 3600
    os.utime(tmp_path / "t/old/image", (past, past))
    sweeper = retention_sweeper(lambda: storage, retention_seconds=60, every_seconds=0.05).start()
    eventually(lambda: not storage.exists("t/old/image"), 5, what="the old object to go")
    assert storage.exists("t/new/image")
    sweeper.stop(timeout=2)
    assert not sweeper.thread.is_alive()


def test_a_failing_sweep_is_retried_and_the_thread_survives(tmp_path):
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise OSError("storage down")

    duty = Periodic("flaky-duty", 0.01, flaky).start()
    eventually(lambda: len(calls) >= 3, 5, what="three rounds")
    duty.stop()
    assert not duty.thread.is_alive() and "flaky-duty" not in [t.name for t in threading.enumerate()]
