"""A process pool for TensorFlow training jobs.

Small LSTMs on a CPU spend most of each step in per-op overhead on one core, so one process
leaves cores idle. Training independent networks in separate single-threaded processes uses
them all, and keeps every job deterministic: each worker sets its seeds per job and runs
TensorFlow with one intra-op thread, so results do not depend on which worker ran a job.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import os
import threading
from concurrent.futures import ProcessPoolExecutor

_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0
# Stages submit from several threads at once: without the lock two threads could each create a
# pool, and a third TensorFlow process (about 700 MB) would run beside the two that were asked for.
_LOCK = threading.RLock()


def resolve_jobs(jobs: int) -> int:
    """``jobs`` (0 = one per CPU core) -> worker count >= 1."""
    return jobs if jobs > 0 else max(1, os.cpu_count() or 1)


def _init_worker() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def training_pool(workers: int) -> ProcessPoolExecutor:
    """The shared pool of ``workers`` spawned processes (created on first use, then reused)."""
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE != workers:
            shutdown_pool()
            _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                        initializer=_init_worker)
            _POOL_SIZE = workers
        return _POOL


def shutdown_pool() -> None:
    """Stop the pool's processes (also called at interpreter exit)."""
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
        _POOL, _POOL_SIZE = None, 0


atexit.register(shutdown_pool)
