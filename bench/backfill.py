"""Backfill benchmark: one month of hourly forecasts (720 issue times, 2012-10-01 00:00 to
2012-10-30 23:00) for the Sapelo demo series with the served main model (the online-weighted
ensemble of every baseline and network model; the demo's settings: VMD K=8, W=48, L=512, H=6).

Real ``wq`` processes on a fresh SQLite archive in a temporary folder:

1. ``wq train --as-of 2012-10-01T00:00`` registers the main model version the backfill uses (its
   20 networks: plain LSTM, 9 component networks with FECA and 9 without, the hybrid; timed on
   its own against the training target);
2. ``wq backfill`` over the month: wall time of the command (Python and TensorFlow start-up
   included), forecasts per second, and the decomposition's share of the backfill's own time;
3. the same ``wq backfill`` again: a resumed run with nothing left to do (skips all 720);
4. one ``wq forecast --as-of 2012-10-31T00:00``: what a cron job issuing one forecast costs,
   start-up included;
5. steps 1, 2 and 4 again with ``--model harmonic_ar`` (a statistical version: JSON state, no
   TensorFlow), in its own archive, for the statistical models ``--model`` serves.

The figures of the backfill itself come from the command's summary line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

START, END = "2012-10-01T00:00", "2012-10-30T23:00"
DEMO = ["--data", str(C.SAPELO), "--target", "DO_obs", "--freq", "1h", "--horizon", "6", "--method", "vmd"]
SUMMARY = re.compile(r"(\d+) issue times, (\d+) forecasts \((\d+) already stored, (\d+) new, (\d+) issue times "
                     r"without a usable observation\); (\d+) rows written in ([\d.]+) s \(([\d.]+) forecasts/s; "
                     r"decomposition ([\d.]+) s, training ([\d.]+) s\)")


def _run(cmd: list[str]) -> tuple[float, str]:
    env = dict(os.environ, WQ_NO_PROGRESS="1")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[1:3])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return seconds, proc.stdout


def _statistical(wq: str, tmp: str, model: str) -> dict:
    """Train, backfill and forecast with ``--model MODEL`` in a fresh archive and registry."""
    store = ["--database", f"sqlite:///{tmp}/{model}.db", "--models", f"{tmp}/{model}-models"]
    chosen = ["--model", model]
    train_s, out = _run([wq, "train", *DEMO, *chosen, "--as-of", START, *store])
    print(out, flush=True)
    wall, out = _run([wq, "backfill", *DEMO, *chosen, "--start", START, "--end", END, "--every", "1h", *store])
    print(out, flush=True)
    m = SUMMARY.search(out)
    if not m:
        raise SystemExit(f"no summary line in:\n{out}")
    forecast_s, out = _run([wq, "forecast", *DEMO[:6], *chosen, "--as-of", "2012-10-31T00:00", *store])
    print(out, flush=True)
    return {"train_version_wall_s": round(train_s, 2), "backfill_wall_s": round(wall, 2),
            "backfill_in_run_s": float(m.group(7)), "rows_written": int(m.group(6)),
            "one_forecast_wall_s": round(forecast_s, 2)}


def main() -> None:
    started = time.perf_counter()
    info = C.machine()
    wq = str(Path(sys.executable).with_name("wq"))
    with tempfile.TemporaryDirectory() as tmp:
        store = ["--database", f"sqlite:///{tmp}/wq.db", "--models", f"{tmp}/models"]
        print("training the model version as of", START, flush=True)
        train_s, train_out = _run([wq, "train", *DEMO, "--as-of", START, *store])
        print(train_out, flush=True)
        runs = {}
        for label in ("backfill", "resume"):
            print(f"{label}: {START} .. {END}", flush=True)
            wall, out = _run([wq, "backfill", *DEMO, "--start", START, "--end", END, "--every", "1h", *store])
            print(out, flush=True)
            m = SUMMARY.search(out)
            if not m:
                raise SystemExit(f"no summary line in:\n{out}")
            g = [float(x) for x in m.groups()]
            runs[label] = {"wall_s": round(wall, 2), "issue_times": int(g[0]), "forecasts": int(g[1]),
                           "already_stored": int(g[2]), "new": int(g[3]), "skipped": int(g[4]),
                           "rows_written": int(g[5]), "backfill_s": g[6], "forecasts_per_s_in_run": g[7],
                           "decompose_s": g[8], "training_s": g[9]}
        print("one forecast as of 2012-10-31T00:00", flush=True)
        forecast_s, out = _run([wq, "forecast", *DEMO[:6], "--as-of", "2012-10-31T00:00", *store])
        print(out, flush=True)
        harmonic = _statistical(wq, tmp, "harmonic_ar")
    b = runs["backfill"]
    figures = {
        "issue_times": b["issue_times"],
        "train_version_wall_s": round(train_s, 1),
        "backfill_wall_s": b["wall_s"],
        "forecasts_per_s_wall": round(b["new"] / b["wall_s"], 2),
        "backfill_in_run_s": b["backfill_s"],
        "decompose_s": b["decompose_s"],
        "decompose_share_of_backfill": round(b["decompose_s"] / max(b["backfill_s"], 1e-9), 3),
        "startup_and_load_s": round(b["wall_s"] - b["backfill_s"], 2),
        "resume_wall_s": runs["resume"]["wall_s"],
        "resume_already_stored": runs["resume"]["already_stored"],
        "one_forecast_wall_s": round(forecast_s, 2),
        "runs": runs,
        "harmonic_ar": harmonic,
    }
    targets = [C.target("720 hourly issue times with the main model (ensemble), wall time of wq backfill", b["wall_s"],
                        60, higher_is_better=False, unit=" s"),
               C.target("wq train of the main model (ensemble, 20 networks), wall time", round(train_s, 1), 282,
                        higher_is_better=False, unit=" s"),
               C.target("720 hourly issue times with --model harmonic_ar, wall time of wq backfill",
                        harmonic["backfill_wall_s"], 60, higher_is_better=False, unit=" s")]
    notes = [
        "Training the version the backfill uses is timed separately (train_version_wall_s); with --retrain-every 7d "
        "a backfill of this month would add about five such trainings.",
        "backfill_wall_s includes starting Python, importing TensorFlow, loading and QC of the file, and loading "
        "the ensemble's 20 Keras networks; backfill_in_run_s is the backfill function itself (every member's "
        "forecasts at every origin, the weights and the combination).",
        "The training target is the nine-network per-component version's last measured wall time (282 s, the "
        "serving issue); the backfill target is the serving issue's 60 s.",
    ]
    C.write_result("backfill", figures, targets, notes, started, info)


if __name__ == "__main__":
    main()
