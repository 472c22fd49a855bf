"""The training pool: one pool, whatever the number of threads asking for it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from wq_pipeline import workers


def test_concurrent_callers_share_one_pool() -> None:
    workers.shutdown_pool()
    try:
        with ThreadPoolExecutor(8) as ex:
            pools = list(ex.map(lambda _: workers.training_pool(2), range(32)))
        assert len({id(p) for p in pools}) == 1 and pools[0] is workers.training_pool(2)
    finally:
        workers.shutdown_pool()
