"""CPU threads per worker pool process: torch's default (a thread per core in every process) against the
worker's share (cores / processes, ``worker/engines.py``), with as many processes filling at once as a
`sneaky up --workers N` pool has. One run, one table.

    python bench/pool_threads.py [--processes 2] [--passes 6] [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pconv.report import machine_description, write_section  # noqa: E402


def fill_passes(threads: int, passes: int, start: mp.Barrier, results: mp.Queue) -> None:
    import torch

    from bench.gpu_check import crops
    from pconv.inpaint import PConvFiller
    from pconv.weights import DEFAULT_WEIGHTS, load_model

    if threads:
        torch.set_num_threads(threads)
    filler = PConvFiller(load_model(DEFAULT_WEIGHTS), device="cpu", runtime="torch")
    images, holes = crops(2, 512)
    filler.fill_batch(images, holes)  # warm-up
    start.wait()
    wall, cpu = [], []
    for _ in range(passes):
        w0, c0 = time.perf_counter(), time.process_time()
        filler.fill_batch(images, holes)
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    results.put((statistics.median(wall), statistics.median(cpu), torch.get_num_threads()))


def run(processes: int, threads: int, passes: int) -> tuple[float, float, int]:
    ctx = mp.get_context("spawn")
    start, results = ctx.Barrier(processes), ctx.Queue()
    workers = [ctx.Process(target=fill_passes, args=(threads, passes, start, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    measured = [results.get() for _ in workers]
    for worker in workers:
        worker.join()
    return (statistics.mean(m[0] for m in measured), statistics.mean(m[1] for m in measured), measured[0][2])


def main() -> None:
    from worker.engines import threads_per_process

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--passes", type=int, default=6)
    p.add_argument("--write")
    args = p.parse_args()
    cores = len(os.sched_getaffinity(0))
    share = threads_per_process(cores, args.processes)
    default = run(args.processes, 0, args.passes)
    shared = run(args.processes, share, args.passes)
    body = "\n".join([
        f"{args.processes} processes filling at once, each a forward pass of two 512² crops (flip averaging on, so "
        f"four), {cores} cores ({machine_description()}); medians of {args.passes} passes per process.", "",
        "| threads per process | s per pass | CPU s per pass | ratio |", "| --- | --- | --- | --- |",
        f"| torch's default ({default[2]}) | {default[0]:.2f} | {default[1]:.2f} | 1.00 |",
        f"| the worker's share ({shared[2]}) | {shared[0]:.2f} | {shared[1]:.2f} | {shared[0] / default[0]:.2f} |",
    ])
    print(body)
    if args.write:
        write_section(Path(args.write), "CPU threads per worker process", body,
                      "python bench/pool_threads.py --write docs/benchmarks.md")


if __name__ == "__main__":
    main()
