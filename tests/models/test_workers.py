"""The training pool: one pool, whatever the number of threads asking for it."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from wq_pipeline.models import workers


def test_concurrent_callers_share_one_pool() -> None:
    workers.shutdown_pool()
    try:
        with ThreadPoolExecutor(8) as ex:
            pools = list(ex.map(lambda _: workers.training_pool(2), range(32)))
        assert len({id(p) for p in pools}) == 1 and pools[0] is workers.training_pool(2)
    finally:
        workers.shutdown_pool()


def test_a_network_skipped_for_too_few_samples_comes_back_from_a_training_worker() -> None:
    """A job with too few samples is skipped (NaN forecasts, the reason), also through the pool,
    where a trained network travels as its .keras bytes and a skipped one has none."""
    import numpy as np

    from wq_pipeline.config import EvaluateConfig
    from wq_pipeline.models.network_jobs import MIN_SAMPLES, TrainJob, fit_predict_portable

    rng = np.random.default_rng(0)
    n = MIN_SAMPLES["training"] - 1
    job = TrainJob("feca_imf1", True, rng.normal(size=(n, 6, 1)), rng.normal(size=(n, 2)),
                   rng.normal(size=(30, 6, 1)), rng.normal(size=(30, 2)), rng.normal(size=(5, 6, 1)))
    cfg = EvaluateConfig(data="x.csv", target="DO_obs", window=6, horizon=2, epochs=1, units=4)
    workers.shutdown_pool()
    try:
        out = workers.training_pool(2).submit(fit_predict_portable, job, cfg).result()
    finally:
        workers.shutdown_pool()
    assert out.model is None and f"{n} training samples" in out.training["skipped"]
    assert out.forecast.shape == (5, 2) and np.isnan(out.forecast).all()
