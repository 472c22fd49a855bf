"""Which member each series' main model weighted most in the last week of its last test fold.

Recombines the main model from the forecasts ``bench/skill.py`` cached, exactly as the pipeline
does (:func:`ensemble_design.fold_weights`), and averages each member's weight at step H over
the last fold's test origins of the final 7 days. Writes ``bench/results/last_week_weights.md``
and ``.json``. Seconds: the forecasts are cached.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import numpy as np  # noqa: E402

from ensemble_design import fold_weights, load  # noqa: E402
from skill import CACHE, CASES  # noqa: E402
from wq_pipeline.models.ensemble import EnsembleOptions, default_half_life  # noqa: E402
from wq_pipeline.evaluation.pipeline import MEMBER_NAMES  # noqa: E402


def main() -> None:
    lines = ["Mean weight at step H over the last 7 days of test origins of each series' last fold "
             "(`bench/last_week_weights.py`, forecasts cached by `bench/skill.py`).", "",
             "| series | set | top three members |", "|---|---|---|"]
    out = {}
    for c in CASES:
        if not (CACHE / f"{c.key}.npz").exists():
            continue
        step_h = 24.0 if c.options.get("freq") == "1D" else 1.0
        *_, (fold, _, W, test, _) = fold_weights(load(c.key), EnsembleOptions(half_life=default_half_life(step_h)))
        o = fold["origins"]
        last = test & (o > o[test].max() - 7 * 24 / step_h)
        mean = W[last, -1, :].mean(axis=0)
        top = np.argsort(-mean)[:3]
        out[c.key] = {MEMBER_NAMES[i]: round(float(mean[i]), 4) for i in np.argsort(-mean)}
        lines.append(f"| {c.key} | {c.set} | " + ", ".join(f"{MEMBER_NAMES[i]} {mean[i]:.2f}" for i in top) + " |")
    C.write_table("last_week_weights", lines, out)


if __name__ == "__main__":
    main()
