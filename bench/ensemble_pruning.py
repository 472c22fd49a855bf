"""What dropping the members with negligible validation weight would cost the served ensemble.

The serving issue allows the served ensemble to drop members whose weights stayed negligible over
validation (fewer networks to train and run). This measures that on the forecasts
``bench/skill.py`` cached (``bench/results/cache/<case>.npz``), causally, as serving would do it:
in each fold, the members whose mean weight (every step) over that fold's validation origins is
below a threshold are dropped for the fold's test period (their forecasts left out there, the
others' weights renormalised by the same online rule). Scores are RMSE ratios to the best
baseline on the same test points, per (series, fold, step), as ``bench/skill.py`` reports them;
the threshold would be chosen on the ``dev`` cases and the ``untouched`` ones are reported beside
them.

Writes ``bench/results/ensemble_pruning.json`` and ``.md``. A minute or two: forecasts are cached.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

from ensemble_design import load, score_case  # noqa: E402
from skill import CACHE, CASES  # noqa: E402
from wq_pipeline.models.ensemble import EnsembleOptions, default_half_life  # noqa: E402
from wq_pipeline.evaluation.pipeline import MEMBER_NAMES  # noqa: E402

THRESHOLDS = (0.0, 0.01, 0.02, 0.05)


def below(threshold: float) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """The members whose mean weight (every step) over the fold's validation origins is below ``threshold``."""
    def drop(W: np.ndarray, test: np.ndarray) -> np.ndarray:
        return W[~test].mean(axis=(0, 1)) < threshold
    return drop


def main() -> None:
    t0 = time.perf_counter()
    cases = [c for c in CASES if (CACHE / f"{c.key}.npz").exists()]
    out: dict[str, Any] = {"thresholds": list(THRESHOLDS), "sets": {}}
    lines = ["Dropping the ensemble members whose mean validation weight is below a threshold, for each fold's "
             "test period (`bench/ensemble_pruning.py`, forecasts cached by `bench/skill.py`). ratio = ensemble RMSE "
             "/ best baseline RMSE on the same test points, per (series, fold, step); threshold 0 = every member.", "",
             "| set | threshold | pairs | share ratio <= 1 | worst ratio | median MSE skill | members dropped per fold "
             "(mean) | networks dropped per fold (mean) |", "|---|---|---|---|---|---|---|---|"]
    networks = {"lstm", "decomp_lstm", "decomp_feca_lstm", "hybrid_feca_lstm"}
    for which in ("dev", "untouched"):
        chosen = [c for c in cases if c.set == which]
        data = {c.key: load(c.key) for c in chosen}
        rows = []
        for thr in THRESHOLDS:
            ratios, drops = [], []
            for c in chosen:
                step_h = 24.0 if c.options.get("freq") == "1D" else 1.0
                opts = EnsembleOptions(half_life=default_half_life(step_h))
                rows_c = score_case(data[c.key], c.steps, opts, below(thr) if thr > 0 else None)
                ratios += [r["ratio"] for r in rows_c]
                drops += [r["dropped"] for r in rows_c[::len(c.steps)]]  # one entry per fold
            a = np.array(ratios)
            row = {"threshold": thr, "pairs": int(a.size), "share_le_1": float(np.mean(a <= 1)),
                   "max_ratio": float(a.max()), "median_mse_skill": float(np.median(1 - a ** 2)),
                   "dropped_mean": float(np.mean([len(d) for d in drops])),
                   "networks_dropped_mean": float(np.mean([len(set(d) & networks) for d in drops])),
                   "dropped_counts": {m: sum(m in d for d in drops) for m in MEMBER_NAMES}, "folds": len(drops)}
            rows.append(row)
            lines.append(f"| {which} | {thr:g} | {row['pairs']} | {row['share_le_1']:.2f} | {row['max_ratio']:.3f} | "
                         f"{row['median_mse_skill']:+.3f} | {row['dropped_mean']:.1f} | {row['networks_dropped_mean']:.1f} |")
            print(lines[-1], flush=True)
        out["sets"][which] = {"cases": [c.key for c in chosen], "rows": rows}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    C.write_table("ensemble_pruning", lines, out)


if __name__ == "__main__":
    main()
