"""The hunt past one machine: the same tasks on a Dask distributed cluster (`hunt --address`).

Install the extra (`pip install ".[hunt]"`), start a scheduler and workers the Dask way
(`dask scheduler`, `dask worker tcp://HOST:8786 --nthreads 1` on each machine, each with
this package installed) and give the scheduler's address. Tasks are plain data and their
results come back to this process, which merges the findings into its own folder. A task
whose worker dies (Dask retries it elsewhere first) is reported as a crash; its log stays
with the worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from conformance.hunt.tasks import Task, TaskResult, run_task
from conformance.hunt.workers import Crash, prepare

_PREPARED: set[str] = set()


def run_remote(task: Task, out: str) -> TaskResult:
    """A task on a Dask worker: the worker's process is prepared once (threads, JAX's cache)."""
    if out not in _PREPARED:
        prepare(Path(out))
        _PREPARED.add(out)
    result = run_task(task)
    result.worker = f"dask pid {os.getpid()}"
    return result


class DaskPool:
    def __init__(self, address: str, out: Path) -> None:
        try:
            from distributed import Client
        except ImportError as err:
            raise ValueError(
                f"--address: Dask distributed is not installed ({err}); pip install '.[hunt]'"
            ) from None
        self.client = Client(address, timeout=30)
        self.out = out
        self.slots = max(
            1, sum(w.get("nthreads", 1) for w in self.client.scheduler_info()["workers"].values())
        )
        self.running: dict[Any, Task] = {}
        self.restarts = 0

    def idle(self) -> int:
        return max(0, self.slots - len(self.running))

    def busy(self) -> int:
        return len(self.running)

    def submit(self, task: Task) -> None:
        future = self.client.submit(run_remote, task, str(self.out), pure=False)
        self.running[future] = task

    def wait(self, timeout: float) -> list[TaskResult | Crash]:
        from distributed import wait as dask_wait

        if not self.running:
            return []
        try:
            done, _ = dask_wait(list(self.running), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        results: list[TaskResult | Crash] = []
        for future in done:
            task = self.running.pop(future)
            try:
                results.append(future.result())
            except Exception as err:  # KilledWorker: the task took its workers down
                results.append(Crash(task, "dask", None, {}, f"{type(err).__name__}: {err}"))
        return results

    def close(self, grace: float) -> list[TaskResult | Crash]:
        done: list[TaskResult | Crash] = []
        try:
            if self.running:
                done = [r for r in self.wait(grace) if isinstance(r, TaskResult)]
            for future in self.running:
                future.cancel()
        finally:
            self.client.close()
        return done
