"""Worker processes, and what happens when a framework kills one.

Each worker is a spawned process that runs tasks (`conformance.hunt.tasks`) and sends the
results back through a pipe. Its stdout and stderr go to `workers/<name>/log.txt`, with
`faulthandler` on, so a segmentation fault leaves the Python stack it happened under;
before each framework call it notes the stage (`stage.json`: framework, dtype, round,
and in the property lane the case itself as `inflight.npz`). A worker that dies is
reported as a `Crash` with that stage and the end of its log, and replaced by a fresh one;
the hunt goes on. `InlinePool` runs tasks in the hunt's own process (`--workers 0`).
"""

from __future__ import annotations

import contextlib
import faulthandler
import json
import multiprocessing as mp
import os
import signal
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from conformance.frameworks.jax import release_compiled_programs
from conformance.hunt.tasks import Task, TaskResult, run_task

ONE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
}
LOG_TAIL = 8000  # characters of a crashed worker's log kept in its finding


@dataclass
class Crash:
    task: Task
    worker: str
    exitcode: int | None
    stage: dict[str, Any] = field(default_factory=dict)
    log: str = ""
    case_file: str = ""  # the property lane's case in flight, if any


def prepare(out: Path) -> None:
    """A worker's process: one thread per library (the cores go to workers), JAX's persistent cache."""
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        from conformance.hunt.jax_populations import enable_cache

        enable_cache(out / "jax-cache")
    except ImportError:
        pass


def _serve(conn: Connection, name: str, folder: str, out: str) -> None:
    home = Path(folder)
    log = open(home / "log.txt", "a", buffering=1)  # noqa: SIM115 - the process's stdout until it ends
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    faulthandler.enable(log)
    prepare(Path(out))
    stage_file = home / "stage.json"

    def mark(**stage: Any) -> None:
        case = stage.pop("case", None)
        if case is not None:
            case.save(home / "inflight.npz")
        stage_file.write_text(json.dumps(stage))

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the hunt's to handle: it stops the workers
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):  # the hunt is gone
            return
        if task is None:
            return
        (home / "inflight.npz").unlink(missing_ok=True)
        print(f"task {task.number}: {task.lane} {task.component} {task.index}", flush=True)
        result = run_task(task, mark)
        result.worker = name
        conn.send(result)
        release_compiled_programs()  # a long hunt compiles a program per drawn shape


class Worker:
    def __init__(self, name: str, folder: Path, out: Path) -> None:
        self.name, self.folder = name, folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "log.txt").write_text("")
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        saved = {k: os.environ.get(k) for k in ONE_THREAD}
        os.environ.update(ONE_THREAD)
        try:
            self.process = ctx.Process(target=_serve, args=(child, name, str(folder), str(out)), daemon=True)
            self.process.start()
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        child.close()
        self.task: Task | None = None

    def crash(self) -> Crash:
        assert self.task is not None
        self.process.join(1)
        try:
            stage = json.loads((self.folder / "stage.json").read_text())
        except (OSError, ValueError):
            stage = {}
        log = (self.folder / "log.txt").read_text(errors="replace")[-LOG_TAIL:]
        inflight = self.folder / "inflight.npz"
        kept = ""
        if inflight.is_file() and stage.get("stage") == "property":
            kept = str(inflight.rename(self.folder / f"crash-{self.task.number}.npz"))
        return Crash(self.task, self.name, self.process.exitcode, stage, log, kept)

    def stop(self) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(2)
            if self.process.is_alive():
                self.process.kill()


class ProcessPool:
    def __init__(self, count: int, out: Path) -> None:
        self.out = out
        self.workers = [Worker(f"w{i}", out / "workers" / f"w{i}", out) for i in range(count)]
        self.restarts = 0

    def idle(self) -> int:
        return sum(w.task is None for w in self.workers)

    def busy(self) -> int:
        return len(self.workers) - self.idle()

    def submit(self, task: Task) -> None:
        worker = next(w for w in self.workers if w.task is None)
        worker.task = task
        worker.conn.send(task)

    def wait(self, timeout: float) -> list[TaskResult | Crash]:
        busy = [w for w in self.workers if w.task is not None]
        if not busy:
            time.sleep(timeout)
            return []
        ready = wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
        done: list[TaskResult | Crash] = []
        for i, worker in enumerate(self.workers):
            if worker.task is None or (worker.conn not in ready and worker.process.sentinel not in ready):
                continue
            try:
                if worker.conn.poll():
                    done.append(worker.conn.recv())
                    worker.task = None
                    continue
            except (EOFError, OSError):
                pass
            if not worker.process.is_alive():
                done.append(worker.crash())
                self.restarts += 1
                self.workers[i] = Worker(worker.name, worker.folder, self.out)
        return done

    def close(self, grace: float) -> list[TaskResult | Crash]:
        """Collect what finishes within `grace` seconds, then stop every worker."""
        done: list[TaskResult | Crash] = []
        end = time.monotonic() + grace
        while self.busy() and time.monotonic() < end:
            done += [r for r in self.wait(min(0.2, end - time.monotonic())) if isinstance(r, TaskResult)]
        for worker in self.workers:
            if worker.task is None and worker.process.is_alive():
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
            worker.stop()
        return done


class InlinePool:
    """Tasks run in this process, one at a time (no crash isolation)."""

    def __init__(self, out: Path) -> None:
        prepare(out)
        self.queue: deque[Task] = deque()
        self.restarts = 0

    def idle(self) -> int:
        return 0 if self.queue else 1

    def busy(self) -> int:
        return len(self.queue)

    def submit(self, task: Task) -> None:
        self.queue.append(task)

    def wait(self, timeout: float) -> list[TaskResult | Crash]:
        if not self.queue:
            return []
        result = run_task(self.queue.popleft())
        result.worker = "main"
        release_compiled_programs()
        return [result]

    def close(self, grace: float) -> list[TaskResult | Crash]:
        self.queue.clear()
        return []
