"""One long series through VMD: N = 16,000 half-hourly Sapelo DO points, K = 8.

Each implementation runs in a fresh subprocess (so one's memory cannot hide another's): after a
warm-up call on 64 points (loads numba's cached kernel; the same for every implementation) the
process resets its peak RSS, starts tracemalloc and times one call. Peak memory is reported two
ways: the RSS peak above the RSS just before the call (everything, Rust allocations included) and
tracemalloc's peak (numpy/Python allocations only). Ratios compare runs made side by side here.

Implementations: wq_pipeline's numba engine (default) and numpy engine, vmdpy 0.2 (the
reference), and vmdrs-py (Rust) when it is installed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

N, K, ALPHA, TOL = 16_000, 8, 2000.0, 1e-7


def signal() -> np.ndarray:
    """The first 16,000 points of the 30-min Sapelo DO series after QC; the one longer gap left
    (13 steps in 2012-07) is linearly interpolated, as VMD needs a complete signal."""
    from wq_pipeline.data.station import load_station

    v = load_station(C.SAPELO, "DO_obs").values.to_numpy(dtype=float)[:N]
    bad = ~np.isfinite(v)
    if bad.any():
        idx = np.arange(v.size)
        v[bad] = np.interp(idx[bad], idx[~bad], v[~bad])
    return v


def run_impl(impl: str):
    if impl in ("wq-numba", "wq-numpy"):
        from wq_pipeline.decompose.vmd import vmd

        engine = impl.split("-")[1]
        return lambda x: vmd(x, alpha=ALPHA, tau=0.0, K=K, DC=False, init=1, tol=TOL, engine=engine)
    if impl == "vmdpy":
        from vmdpy import VMD

        return lambda x: VMD(x, ALPHA, 0.0, K, False, 1, TOL)
    if impl == "vmdrs-py":
        from vmdrs_py import VMD as VMDRS

        return lambda x: VMDRS(x, ALPHA, 0.0, K, False, 1, TOL)
    raise ValueError(impl)


def worker(impl: str, out_npy: str) -> None:
    x = signal()
    fn = run_impl(impl)
    fn(x[:64].copy())  # warm-up: imports, numba cache load
    rss0 = C.rss_bytes()
    reset_ok = C.reset_peak_rss()
    tracemalloc.start()
    t0 = time.perf_counter()
    u, _u_hat, omega = fn(x)
    seconds = time.perf_counter() - t0
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    hwm = C.rss_bytes("VmHWM")
    np.save(out_npy, np.asarray(u, dtype=float))
    print(json.dumps({
        "impl": impl, "seconds": seconds, "iterations": int(np.shape(omega)[0]),
        "peak_rss_above_start_bytes": max(0, hwm - rss0) if reset_ok else None,
        "peak_rss_process_bytes": hwm, "tracemalloc_peak_bytes": traced_peak, "peak_reset": reset_ok,
    }))


def main() -> None:
    started = time.perf_counter()
    info = C.machine()
    impls = ["wq-numba", "wq-numpy", "vmdpy"]
    try:
        import vmdrs_py  # noqa: F401

        impls.append("vmdrs-py")
        vmdrs_note = "vmdrs-py 0.3.0 installs from PyPI (optional extra `bench`) and is measured."
    except ImportError:
        vmdrs_note = "vmdrs-py is not installed (pip install -e '.[bench]'): not measured."
    x = signal()
    res: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for impl in impls:
            npy = str(Path(tmp) / f"{impl}.npy")
            proc = subprocess.run([sys.executable, __file__, "--worker", impl, npy], capture_output=True, text=True,
                                  check=False)
            if proc.returncode != 0:
                print(proc.stderr[-2000:])
                raise SystemExit(f"{impl} failed")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["u"] = np.load(npy)
            res[impl] = r
            print(f"{impl:9s} {r['seconds']:8.2f} s  iterations {r['iterations']:4d}  peak RSS above start "
                  f"{C.mib(r['peak_rss_above_start_bytes'] or 0):8.1f} MiB  tracemalloc peak "
                  f"{C.mib(r['tracemalloc_peak_bytes']):8.1f} MiB", flush=True)
    ref = res["vmdpy"]
    scale = float(np.ptp(x))
    figures: dict = {"N": N, "K": K, "alpha": ALPHA, "tol": TOL, "signal": "Sapelo DO 30 min, first 16,000 points",
                     "implementations": {}}
    for impl, r in res.items():
        diff = float(np.max(np.abs(r["u"] - ref["u"])) / scale)
        figures["implementations"][impl] = {
            "seconds": round(r["seconds"], 3), "iterations": r["iterations"],
            "peak_rss_above_start_mib": C.mib(r["peak_rss_above_start_bytes"] or 0),
            "tracemalloc_peak_mib": C.mib(r["tracemalloc_peak_bytes"]),
            "process_peak_rss_mib": C.mib(r["peak_rss_process_bytes"]),
            "speedup_vs_vmdpy": round(ref["seconds"] / r["seconds"], 2),
            "memory_ratio_vs_vmdpy": round(ref["peak_rss_above_start_bytes"] / max(1, r["peak_rss_above_start_bytes"]), 1),
            "max_abs_diff_vs_vmdpy_rel_range": diff,
            "same_iterations_as_vmdpy": r["iterations"] == ref["iterations"],
        }
    w = figures["implementations"]["wq-numba"]
    targets = [
        C.target("VMD N=16000 K=8: speed-up over vmdpy (numba engine)", w["speedup_vs_vmdpy"], 20,
                 higher_is_better=True, unit="x"),
        C.target("VMD N=16000 K=8: peak memory of vmdpy / ours (RSS above start)", w["memory_ratio_vs_vmdpy"], 50,
                 higher_is_better=True, unit="x"),
        C.target("VMD N=16000 K=8: max |u - u_vmdpy| / range", w["max_abs_diff_vs_vmdpy_rel_range"], 1e-6,
                 higher_is_better=False),
    ]
    if "vmdrs-py" in res:
        rs = figures["implementations"]["vmdrs-py"]
        figures["ours_vs_vmdrs_py"] = {
            "speedup": round(res["vmdrs-py"]["seconds"] / res["wq-numba"]["seconds"], 2),
            "memory_ratio": round(res["vmdrs-py"]["peak_rss_above_start_bytes"]
                                  / max(1, res["wq-numba"]["peak_rss_above_start_bytes"]), 1),
        }
        print(f"vs vmdrs-py: {figures['ours_vs_vmdrs_py']}; vmdrs-py vs vmdpy {rs['speedup_vs_vmdpy']}x")
    M = N
    state_bytes = 4 * K * M * 8 + 8 * M * 8
    figures["numba_state_bytes"] = state_bytes
    notes = [
        vmdrs_note,
        "Same iteration count for every implementation means the same stopping decision as vmdpy.",
        f"numba engine working state: 4 K M + 8 M float64 = {C.mib(state_bytes)} MiB (M = N positive-frequency "
        "bins); vmdpy allocates its (max_iter, 2N, K) complex history up front "
        f"({C.mib(500 * 2 * N * K * 16)} MiB, pages touched as iterations run).",
    ]
    C.write_result("vmd_single", figures, targets, notes, started, info)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--worker", nargs=2, metavar=("IMPL", "OUT_NPY"))
    a = ap.parse_args()
    if a.worker:
        worker(*a.worker)
    else:
        main()
