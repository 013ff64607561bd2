"""``sneaky batch``: clean a whole folder through the API, resumably.

State lives in ``OUT_DIR/.sneaky-batch.json`` (photo → job), written atomically after
every change, so an interrupted run picks up where it stopped: finished photos are
skipped, submitted ones are waited for (never submitted twice), the rest are sent.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .sdk import TERMINAL, SneakyClient, SneakyError

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
STATE_FILE = ".sneaky-batch.json"
REPORT_FILE = "report.csv"
BATCH_SIZE = 500


@dataclass
class Plan:
    pairs: list[tuple[Path, Path]]  # photo, mask
    unmatched: list[Path]  # photos without a mask


def match_masks(photos_dir: Path, masks_dir: Path | None, mask: Path | None) -> Plan:
    """Pair each photo with the mask of the same name (any image extension), or the one shared mask."""
    photos = sorted(p for p in photos_dir.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if mask is not None:
        return Plan([(p, mask) for p in photos], [])
    by_stem: dict[str, Path] = {}
    assert masks_dir is not None, "a masks folder or one mask"  # the CLI requires one of the two
    for m in sorted(masks_dir.iterdir()):
        if m.is_file() and m.suffix.lower() in PHOTO_SUFFIXES:
            by_stem.setdefault(m.stem, m)
            by_stem[m.name] = m
    pairs, unmatched = [], []
    for p in photos:
        found = by_stem.get(p.name) or by_stem.get(p.stem)
        (pairs.append((p, found)) if found else unmatched.append(p))
    return Plan(pairs, unmatched)


class State:
    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / STATE_FILE
        saved = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.photos: dict[str, dict] = saved.get("photos", {})
        # a batch about to be created: its request and Idempotency-Key, written before it is sent, so a run
        # killed between sending and recording it gets the same batch back instead of making a second one
        self.pending: dict[str, Any] | None = saved.get("pending")

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"photos": self.photos, "pending": self.pending}, indent=0))
        os.replace(tmp, self.path)

    def counts(self) -> dict[str, int]:
        counts = {"uploaded": 0, "queued": 0, "running": 0, "done": 0, "failed": 0}
        for entry in self.photos.values():
            status = entry.get("status", "")
            if status == "succeeded" and entry.get("downloaded"):
                counts["done"] += 1
            elif status in ("failed", "canceled"):
                counts["failed"] += 1
            elif status in ("queued", "running"):
                counts[status] += 1
            elif status == "succeeded":
                counts["running"] += 1  # finished, result on its way down
            if entry.get("job_id"):
                counts["uploaded"] += 1
        return counts


SUFFIXES = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}


def result_name(photo_name: str, output: str, shared_stems: frozenset[str] = frozenset()) -> str:
    """The result's file name in the output folder: the photo's, with the extension of the format asked for. Photos
    whose names differ only by extension (``a.jpg``, ``a.png``, in ``shared_stems``) keep theirs in front of the
    new one (``a.jpg.png``): converted, they would otherwise overwrite each other."""
    suffix = SUFFIXES.get(output)
    if suffix is None:
        return photo_name
    stem = Path(photo_name).stem
    return f"{photo_name}{suffix}" if stem in shared_stems else f"{stem}{suffix}"


def run_batch(client: SneakyClient, photos_dir: str, out_dir: str, masks_dir: str | None = None,
              mask: str | None = None, concurrency: int = 4, engine: str | None = None,
              priority: str = "bulk", poll: float = 1.0, grow: int = 0, output: str = "same",
              quality: int | None = None) -> int:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = match_masks(Path(photos_dir), Path(masks_dir) if masks_dir else None, Path(mask) if mask else None)
    state = State(out)
    for photo in plan.unmatched:
        print(f"sneaky batch: no mask for {photo.name}; skipped")
    total = len(plan.pairs)
    bar = tqdm(total=total, unit="photo", dynamic_ncols=True, desc="done")
    progress = Progress(state)
    bar.update(progress.ended())

    def show() -> None:
        bar.n = progress.ended()
        bar.set_postfix(**state.counts(), rate=f"{progress.rate():.1f}/s")
        bar.refresh()

    pool = ThreadPoolExecutor(concurrency)
    try:
        _submit_new(client, pool, plan, state, {"engine": engine, "priority": priority, "grow": grow,
                                                "output": output, "quality": quality}, show)
        _collect(client, pool, out, state, show, poll, progress)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()
        state.save()
        write_report(out, plan, state)
        counts = state.counts()
        print(f"\nsneaky batch: stopped; {counts['done']} of {total} done, report in {out / REPORT_FILE}. "
              "Run the same command again to go on: nothing is sent twice.", file=sys.stderr)
        return 130
    pool.shutdown()
    bar.close()
    write_report(out, plan, state)
    counts = state.counts()
    print(f"{counts['done']} done, {counts['failed']} failed, {len(plan.unmatched)} without a mask; "
          f"report in {out / REPORT_FILE}")
    return 0 if counts["failed"] == 0 and not plan.unmatched else 1


def _submit_new(client: SneakyClient, pool: ThreadPoolExecutor, plan: Plan, state: State,
                options: dict[str, Any], show: Callable[[], None]) -> None:
    """``options``: engine, priority, grow, output and quality, as the batch is sent."""
    if state.pending:  # the last run was stopped right after sending a batch: ask for the same one again
        _create(client, state, plan, **state.pending)
        show()
    todo = [(p, m) for p, m in plan.pairs if not state.photos.get(p.name, {}).get("job_id")]
    shared = plan.pairs[0][1] if plan.pairs and all(m == plan.pairs[0][1] for _, m in plan.pairs) else None
    shared_key = client.upload([shared])[0] if shared is not None and todo else None
    for start in range(0, len(todo), BATCH_SIZE):
        chunk = todo[start : start + BATCH_SIZE]
        image_keys = list(pool.map(lambda pair: client.upload([pair[0]])[0], chunk))
        items: list[dict[str, Any]]
        if shared_key:
            items = [{"image_key": k} for k in image_keys]
        else:
            mask_keys = list(pool.map(lambda pair: client.upload([pair[1]])[0], chunk))
            items = [{"image_key": k, "mask_key": m} for k, m in zip(image_keys, mask_keys)]
        for item, (photo, _) in zip(items, chunk):
            item["metadata"] = {"file": photo.name}
        state.pending = {"key": f"sneaky-batch-{uuid.uuid4()}", "items": items, "mask_key": shared_key, **options}
        state.save()
        _create(client, state, plan, **state.pending)
        show()


class BatchRefused(Exception):
    """The API refused a batch for some of its photos: which, and why."""

    def __init__(self, error: SneakyError, files: list[str]) -> None:
        super().__init__(str(error))
        self.error, self.files = error, files

    def table(self) -> str:
        bad = self.error.body.get("items") or []
        rows = [(self.files[b["index"]] if 0 <= b.get("index", -1) < len(self.files) else b.get("image_key", "?"),
                 b.get("code", ""), b.get("detail", "")) for b in bad]
        width = max([len("photo")] + [len(r[0]) for r in rows])
        code_width = max([len("code")] + [len(r[1]) for r in rows])
        lines = [f"{'photo':{width}}  {'code':{code_width}}  message"]
        lines += [f"{name:{width}}  {code:{code_width}}  {detail}" for name, code, detail in rows]
        return "\n".join(lines)


def _create(client: SneakyClient, state: State, plan: Plan, key: str, items: list[dict[str, Any]],
            mask_key: str | None, engine: str | None, priority: str, grow: int, output: str = "same",
            quality: int | None = None) -> None:
    """Create the pending batch (the API answers a repeated Idempotency-Key with the first batch) and
    record its jobs: from then on a rerun waits for them, never resubmits them. A refusal forgets the
    batch (its photos are sent again, as they are then, by the next run) and says which photos were bad."""
    try:
        batch = client.batch(items, mask_key=mask_key, engine=engine, priority=priority, grow=grow,
                             idempotency_key=key, output=output, quality=quality)
    except SneakyError as exc:
        if exc.code != "invalid_items":
            raise
        state.pending = None
        state.save()
        raise BatchRefused(exc, [item["metadata"]["file"] for item in items]) from None
    masks = {photo.name: mask.name for photo, mask in plan.pairs}
    stems = Counter(photo.stem for photo, _ in plan.pairs)
    shared = frozenset(stem for stem, n in stems.items() if n > 1)
    for job_id, item in zip(batch.job_ids, items):
        name = item["metadata"]["file"]
        state.photos[name] = {"job_id": job_id, "batch_id": batch.id, "mask": masks.get(name, ""), "status": "queued",
                              "result": result_name(name, output, shared)}
    state.pending = None
    state.save()


class Progress:
    """Photos ended, and the rate at which this run ends them: photos that had ended before it (an earlier
    run's, or finished by the service while no client was there) are counted, not timed."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.started = time.monotonic()
        self.skipped = self.ended()

    def ended(self) -> int:
        counts = self.state.counts()
        return counts["done"] + counts["failed"]

    def skip(self, photos: int) -> None:
        """``photos`` found ended at the first look: they took no time of this run."""
        self.skipped += photos
        self.started = time.monotonic()

    def rate(self) -> float:
        return max(0, self.ended() - self.skipped) / max(1e-6, time.monotonic() - self.started)


def _collect(client: SneakyClient, pool: ThreadPoolExecutor, out: Path, state: State, show: Callable[[], None],
             poll: float, progress: Progress | None = None) -> None:
    """Follow every batch's manifest, downloading results as they finish."""
    def fetch(name_item: tuple[str, dict]) -> str:
        name, item = name_item
        client.download(item["job_id"], out / state.photos[name].get("result", name))
        return name

    first_look = True
    while True:
        pending = {n: e for n, e in state.photos.items() if not e.get("downloaded") and e["status"] not in
                   ("failed", "canceled")}
        if not pending:
            return
        by_job = {e["job_id"]: n for n, e in pending.items()}
        ready = []
        for batch_id in sorted({e["batch_id"] for e in pending.values()}):
            for item in client.manifest(batch_id):
                name = by_job.get(item["job_id"])
                if name is None:
                    continue
                state.photos[name]["status"] = item["status"]
                if item["status"] in ("failed", "canceled"):
                    state.photos[name]["error"] = item.get("error") or {"code": item["status"], "message": ""}
                elif item["status"] == "succeeded":
                    ready.append((name, item))
        for name in pool.map(fetch, ready):
            state.photos[name]["downloaded"] = True
        state.save()
        if progress is not None and first_look:
            progress.skip(sum(1 for e in pending.values() if e["status"] in TERMINAL))
            first_look = False
        show()
        if not ready and any(e["status"] not in TERMINAL for e in pending.values()):
            time.sleep(poll)


def write_report(out: Path, plan: Plan, state: State) -> None:
    with (out / REPORT_FILE).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["photo", "mask", "status", "job_id", "output", "error_code", "error_message"])
        for photo, mask in plan.pairs:
            entry = state.photos.get(photo.name, {})
            error = entry.get("error") or {}
            status = "succeeded" if entry.get("downloaded") else entry.get("status", "not_submitted")
            output = str(out / entry.get("result", photo.name)) if entry.get("downloaded") else ""
            writer.writerow([photo.name, mask.name, status, entry.get("job_id", ""), output,
                             error.get("code", ""), error.get("message", "")])
        for photo in plan.unmatched:
            writer.writerow([photo.name, "", "no_mask", "", "", "no_mask", "no mask of the same name"])
