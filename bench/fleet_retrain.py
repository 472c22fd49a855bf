"""Weekly retrain of a fleet: one global version for every NEON site against one version per site.

For each variable (dissolved oxygen, water temperature) of the shipped NEON daily file, every site
is trained on the data known at 2022-01-01 with the fleet bench's daily settings (horizons 1-30
days, W=28, L=64, VMD K=4; ``bench/fleet.py``), the way the weekly retrain does it:

* **global**: ``train_global`` (``wq train --all-sites``, the retrain with ``retrain_global``):
  every site's stages, each network kind trained once on the pooled samples, one global version
  and one version per site registered;
* **local**: ``train_version`` (``wq train --site S``, the retrain without it) for every site the
  global run trained, one after another, each on both cores.

Both are measured here in full on 2 cores (no extrapolation), in one process, registries in a
temporary folder. Sites without enough data before 2022 are left out by both, with the reason.

Writes ``bench/results/fleet_retrain.json``. About 15 minutes on 2 cores.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

import pandas as pd  # noqa: E402

from wq_pipeline.config import EvaluateConfig  # noqa: E402
from wq_pipeline.serve.global_versions import train_global  # noqa: E402
from wq_pipeline.store.registry import Registry  # noqa: E402
from wq_pipeline.serve.training import train_version  # noqa: E402

DATA = C.SHARED / "neon_aquatics_daily_2020_2022.csv.gz"
SETTINGS = dict(freq="1D", time_col="datetime", horizon=30, window=28, decomp_window=64, modes=4)
AS_OF = "2022-01-01"
VARIABLES = ("oxygen", "temperature")
GOAL = 0.2  # the goal: the global retrain at most one fifth of the local ones


def main() -> None:
    started = time.perf_counter()
    info = C.machine()
    figures: dict[str, Any] = {}
    targets = []
    for variable in VARIABLES:
        sites = sorted(pd.read_csv(DATA, usecols=["site_id", variable]).dropna()["site_id"].unique())
        cfgs = {s: EvaluateConfig(data=DATA, site=s, target=variable, command="bench/fleet_retrain.py", **SETTINGS)
                for s in sites}
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            done = train_global(cfgs, Registry(Path(tmp) / "global"), as_of=AS_OF)
            global_s = time.perf_counter() - t0
            print(f"{variable}: global version for {len(done.stations)} sites in {global_s:.1f} s "
                  f"({len(done.skipped)} left out)", flush=True)
            local_s, no_networks = {}, []
            registry = Registry(Path(tmp) / "local")
            for site in done.stations:
                t0 = time.perf_counter()
                version, _ = train_version(cfgs[site], registry, as_of=pd.Timestamp(AS_OF, tz="UTC"), workers=2)
                local_s[site] = round(time.perf_counter() - t0, 1)
                nets = version.manifest["training"]["networks"]
                if all(n.get("skipped") for n in nets.values()):  # too few validation samples of its own
                    no_networks.append(site)
                print(f"  local {site}: {local_s[site]} s{' (no network trained)' if site in no_networks else ''}",
                      flush=True)
        total = sum(local_s.values())
        ratio = global_s / total
        figures[variable] = {"sites_trained": len(done.stations), "sites_left_out": len(done.skipped),
                             "left_out": done.skipped, "global_seconds": round(global_s, 1),
                             "global_fit_seconds": done.version.manifest["training"].get("seconds"),
                             "global_network_training_seconds": done.version.manifest["training"].get("training_seconds"),
                             "local_seconds_sum": round(total, 1), "local_seconds": local_s,
                             "local_seconds_mean": round(total / len(local_s), 1), "ratio": round(ratio, 3),
                             "local_without_networks": no_networks,
                             "global_sites_with_networks": len(done.stations)}
        targets.append(C.target(f"{variable}: global retrain / {len(local_s)} local trainings, wall time", ratio, GOAL,
                                higher_is_better=False))
    C.write_result(
        "fleet_retrain", figures, targets,
        [f"Every site with data before {AS_OF} is trained by both; local trainings one after another, each with "
         "two training processes; global: every site's stages side by side in threads, the networks trained once.",
         "A site whose own validation period holds too few samples trains no network locally (its networks are "
         "skipped, its ensemble has only the statistical members), and so costs a local training little; "
         "pooled, those sites get networks. `local_without_networks` lists them.",
         "Per site, the global run still decomposes every training and validation window and fits every "
         "statistical member (harmonic + AR, ARIMA, ...), as a local training does: only the network training "
         "is shared."],
        started, info,
        shortfall="The pooled networks train once, far less than the local networks together, but the rest of a "
                  "global retrain stays per site: loading each site from the file, its stepwise decomposition and "
                  "statistical fits (about 1.7 s a site: the whole cost of a local training whose networks are "
                  "skipped) and saving its version, one site after another in one process.")


if __name__ == "__main__":
    main()
