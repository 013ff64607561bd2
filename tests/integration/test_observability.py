"""/metrics moves when jobs run; JSON log lines follow one job through API and worker."""

import json
import re

import requests

from tests.helpers import mask_for, photo, png_bytes, run_job


def sample(text: str, name: str, **labels) -> float:
    """The value of one series in Prometheus text format (0 when absent)."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_move_when_jobs_run(stack):
    before = requests.get(f"{stack.api_url}/metrics", timeout=10).text
    run_job(stack, png_bytes(photo(30, 30)), mask_for(30, 30)[0])
    after = requests.get(f"{stack.api_url}/metrics", timeout=10).text
    assert sample(after, "sneaky_jobs_submitted_total", priority="interactive", engine="telea") == \
        sample(before, "sneaky_jobs_submitted_total", priority="interactive", engine="telea") + 1
    assert sample(after, "sneaky_jobs_finished_total", status="succeeded", engine="telea") >= \
        sample(before, "sneaky_jobs_finished_total", status="succeeded", engine="telea") + 1
    for name in ("sneaky_job_latency_seconds_count", "sneaky_model_latency_seconds_count", "sneaky_batch_size_count"):
        assert sample(after, name) > sample(before, name), name
    assert 'sneaky_queue_depth{queue="interactive"}' in after and 'sneaky_queue_depth{queue="bulk"}' in after


def json_lines(server) -> list[dict]:
    out = []
    for line in server.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def test_json_logs_follow_one_job(stack):
    job, _ = run_job(stack, png_bytes(photo(30, 30)), mask_for(30, 30)[0])
    api = next(s for s in stack.servers if s.name == "api")
    workers = [s for s in stack.servers if s.name.startswith("worker")]
    api_events = [e for e in json_lines(api) if e.get("job_id") == job["id"]]
    worker_events = [e for w in workers for e in json_lines(w) if e.get("job_id") == job["id"]]
    assert api_events and api_events[0]["message"] == "job submitted" and api_events[0]["tenant"] == "default"
    done = [e for e in worker_events if e["message"].endswith("succeeded")]
    assert done and done[0]["duration_ms"] > 0 and done[0]["engine"] == "telea" and done[0]["ts"]
