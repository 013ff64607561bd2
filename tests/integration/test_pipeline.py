"""A group's stages in threads (worker/pipeline.py): reading, decoding, encoding and storing of the jobs of a
group overlap where the process has cores to spare (GPU hosts), with the same outcomes and bytes as one
after another; the model's busy fraction is recorded."""

import io
import threading
import time

import numpy as np
import pytest
import redis
from PIL import Image
from prometheus_client import REGISTRY

from core import keyspace
from core.jobs import Job, JobStatus
from core.services import Services
from core.settings import Settings
from tests.helpers import eventually, mask_for, photo, png_bytes
from worker import drain, engines, pipeline
from worker.leases import Heartbeat


@pytest.fixture
def services(redis_server, tmp_path):
    redis.Redis(port=redis_server.port, db=12).flushdb()
    return Services(Settings(redis_url=f"redis://127.0.0.1:{redis_server.port}/12", storage_url=str(tmp_path),
                             default_engine="telea"))


def queued_jobs(services, n):
    ids = []
    for i in range(n):
        job = Job.new("t1", "telea", "bulk", {"width": 48, "height": 40, "format": "PNG"})
        job.image_key, job.mask_key = job.object_key("image"), job.object_key("mask")
        services.storage.put(job.image_key, png_bytes(photo(48, 40, seed=i)), "image/png")
        services.storage.put(job.mask_key, mask_for(48, 40)[0], "image/png")
        services.jobs.create(job)
        ids.append(job.id)
    return ids


def busy_sum():
    return REGISTRY.get_sample_value("sneaky_model_busy_fraction_sum", {"engine": "telea"}) or 0.0


class Overlap:
    """Wraps storage.put: how many calls were in flight at once."""

    def __init__(self, put):
        self.put, self.now, self.most, self.lock = put, 0, 0, threading.Lock()

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)  # a storage round trip: long enough for the others to start
        try:
            return self.put(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


@pytest.mark.parametrize("threads", [1, 4])
def test_stages_overlap_only_where_configured_and_change_no_outcome(services, monkeypatch, threads):
    monkeypatch.setattr(engines, "_stage_threads", threads)
    overlap = Overlap(services.storage.put)
    monkeypatch.setattr(services.storage, "put", overlap)
    ids = queued_jobs(services, 6)
    busy_before = busy_sum()
    work = pipeline.run(services, ids, Heartbeat(services.leases))
    assert [w.outcome for w in work] == [JobStatus.SUCCEEDED] * 6 and [w.job_id for w in work] == ids
    assert overlap.most == 1 if threads == 1 else 2 <= overlap.most <= 4  # six results stored, at most four at once
    results = [np.asarray(Image.open(io.BytesIO(services.storage.get(services.jobs.get(i).result_key)))) for i in ids]
    expected = [np.asarray(photo(48, 40, seed=i)) for i in range(6)]
    hole = np.asarray(Image.open(io.BytesIO(mask_for(48, 40)[0]))) >= 128
    assert all(np.array_equal(r[~hole], e[~hole]) for r, e in zip(results, expected))
    assert 0 < busy_sum() - busy_before <= 1  # one group, its share of the time filling


def test_cpu_workers_run_the_stages_one_after_another():
    engines.configure(None, threads=2)
    assert engines.stage_threads() == 1  # no CUDA here: the engine needs the cores
    engines.configure(None, threads=2, stage_threads=3)
    assert engines.stage_threads() == 3
    engines.configure(None)


def slow_fills(monkeypatch, seconds, on_fill=None):
    """Every group's fill takes ``seconds`` longer; returns the (start, end, job ids) of each fill."""
    fills = []
    real_fill = pipeline._fill

    def fill(services, engine, group):
        start = time.monotonic()
        if on_fill:
            on_fill(len(fills))
        time.sleep(seconds)
        real_fill(services, engine, group)
        fills.append((start, time.monotonic(), [w.job_id for w in group]))

    monkeypatch.setattr(pipeline, "_fill", fill)
    return fills


def recorded_loads(monkeypatch):
    loads = []
    real_load = pipeline._load_group

    def load(services, job_ids, heartbeat):
        loads.append((time.monotonic(), list(job_ids)))
        return real_load(services, job_ids, heartbeat)

    monkeypatch.setattr(pipeline, "_load_group", load)
    return loads


def test_bulk_groups_follow_each_other_the_next_read_while_the_model_fills(services, monkeypatch):
    monkeypatch.setattr(engines, "_stage_threads", 2)
    ids = queued_jobs(services, 6)
    groups = [ids[0:2], ids[2:4], ids[4:6]]
    services.fair.put("t1", groups)
    fills, loads = slow_fills(monkeypatch, 0.3), recorded_loads(monkeypatch)
    work = pipeline.run_groups(services, services.fair.take, Heartbeat(services.leases), budget_seconds=60)
    assert [w.job_id for w in work] == ids and all(w.outcome == JobStatus.SUCCEEDED for w in work)
    assert [f[2] for f in fills] == groups and [ids for _, ids in loads] == groups
    for (_, fill_end, _), (load_start, _) in zip(fills, loads[1:]):
        assert load_start < fill_end  # group k+1 was read while group k was being filled
    assert services.fair.take() is None  # every group taken
    assert services.redis.zcard(keyspace.leases()) == 0  # and every lease let go


def test_a_stopping_worker_fills_the_group_in_hand_and_gives_back_what_it_read_ahead(services, monkeypatch):
    monkeypatch.setattr(engines, "_stage_threads", 2)
    ids = queued_jobs(services, 6)
    services.fair.put("t1", [ids[0:2], ids[2:4], ids[4:6]])
    loads = recorded_loads(monkeypatch)

    def stop_once_the_next_group_is_read(n):
        if n == 0:
            eventually(lambda: len(loads) == 2, 5, 0.01, what="the second group read ahead")
            drain.begin(600)  # the stop begins while the first group fills

    try:
        slow_fills(monkeypatch, 0.3, on_fill=stop_once_the_next_group_is_read)
        work = pipeline.run_groups(services, services.fair.take, Heartbeat(services.leases), budget_seconds=60)
    finally:
        drain.end()
    assert [w.outcome for w in work] == [JobStatus.SUCCEEDED] * 2 + ["handed_back"] * 2  # the third never taken
    assert [services.jobs.get(i).status for i in ids[2:]] == [JobStatus.QUEUED] * 4
    assert [services.jobs.get(i).attempts for i in ids[2:]] == [0] * 4
