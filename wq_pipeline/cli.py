"""The ``wq`` command.

Exit codes: 0 success, 2 bad input (one message on stderr, no traceback), 1 anything else.
"""

from __future__ import annotations

import os

# Before numpy loads: BLAS threads only slow the many tiny matrix products of ARIMA and ADF.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import shlex
import sys
import traceback
from pathlib import Path
from typing import Sequence

from pydantic import ValidationError

from .config import METHODS, PROTOCOLS, EvaluateConfig, QCConfig
from .errors import InputError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"wq: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="wq", description="Honest water-quality forecasting: decomposition + FECA-LSTM, scored against baselines.")
    p.add_argument("--version", action="version", version=f"wq-pipeline {__import__('wq_pipeline').__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    e = sub.add_parser(
        "evaluate",
        help="train and score the decomposition model and its baselines on one station series",
        description=(
            "Load and quality-control a station file, test stationarity, decompose the target, train one "
            "FECA-LSTM per component, recombine, and score against persistence, seasonal naive, ARIMA, a "
            "plain LSTM and the decomposition model without FECA on the same test points. Writes "
            "metrics.json, forecasts.csv and stationarity.csv to --out. Lengths are in steps of --freq."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = EvaluateConfig.model_fields
    g = e.add_argument_group("data")
    g.add_argument("--data", required=True, type=Path, help="station file: CSV or gzip CSV, wide or long format")
    g.add_argument("--target", required=True, help="column to forecast, e.g. DO_obs")
    g.add_argument("--time-col", help="timestamp column (default: detected, e.g. DateTimeStamp, datetime)")
    g.add_argument("--site", help="site to use in a long-format file with several sites")
    g.add_argument("--site-col", help="column holding the site code (default: detected, e.g. siteID, StationCode)")
    g.add_argument("--freq", help="regular time step to resample to, a pandas alias such as 1h or 15min "
                   "(default: the file's most common step); coarser steps average readings in (t-step, t]")
    g.add_argument("--max-gap", type=int, default=QCConfig.model_fields["max_gap"].default,
                   help="interpolate gaps of up to this many steps; longer gaps stay missing and no window spans them")
    g.add_argument("--drop-suspect", action="store_true", help="also drop readings flagged <1> (suspect) by NERRS QC")
    m = e.add_argument_group("decomposition and model")
    m.add_argument("--method", choices=METHODS, default=d["method"].default, help="decomposition method")
    m.add_argument("--modes", type=int, default=d["modes"].default,
                   help="number of modes K (1-32); a residual component is added, so K+1 component models")
    m.add_argument("--window", type=int, default=d["window"].default, help="input window W of each network, in steps")
    m.add_argument("--decomp-window", type=int, default=d["decomp_window"].default,
                   help="trailing window L decomposed at every forecast origin (stepwise), in steps; L >= W")
    m.add_argument("--horizon", type=int, default=d["horizon"].default, help="forecast horizon H, in steps (1-500)")
    m.add_argument("--protocol", choices=(*PROTOCOLS, "both"), default=d["protocol"].default,
                   help="stepwise: honest, each forecast uses only data up to its origin; "
                   "global: LEAKY, decomposes the whole series first (only to reproduce published numbers); "
                   "both: run each into DIR/stepwise and DIR/global and write DIR/comparison.json")
    m.add_argument("--test-fraction", type=float, default=d["test_fraction"].default,
                   help="last fraction of the period used for testing (validation is the 0.1 before it)")
    m.add_argument("--epochs", type=int, default=d["epochs"].default, help="maximum training epochs (early stopping on validation)")
    m.add_argument("--units", type=int, default=d["units"].default, help="LSTM units per network")
    m.add_argument("--jobs", type=int, default=d["jobs"].default,
                   help="networks trained in parallel, each in its own process (0: one per CPU core)")
    m.add_argument("--seed", type=int, default=d["seed"].default, help="random seed (decomposition noise, weights, shuffling)")
    m.add_argument("--seasonal-period", type=int, help="season of the seasonal-naive baseline in steps (default: detected on training data)")
    e.add_argument("--out", type=Path, default=d["out"].default, help="output folder")
    e.add_argument("--no-flow", action="store_true",
                   help="run the stages in-process without Prefect (same results; no flow run is recorded)")
    e.add_argument("-v", "--verbose", action="store_true", help="show Prefect's INFO logs and full tracebacks")

    r = sub.add_parser("report", help="(re)build the HTML report of a finished evaluation",
                       description="Rebuild DIR/report.html from the files a finished 'wq evaluate' wrote to DIR "
                       "(for --protocol both, DIR is the folder holding stepwise/ and global/).")
    r.add_argument("dir", type=Path, help="output folder of a finished 'wq evaluate' run")
    return p


def _config_from_args(a: argparse.Namespace, argv: Sequence[str]) -> EvaluateConfig:
    try:
        return EvaluateConfig(
            data=a.data, target=a.target, time_col=a.time_col, site=a.site, site_col=a.site_col, freq=a.freq,
            method=a.method, modes=a.modes, window=a.window, decomp_window=a.decomp_window, horizon=a.horizon,
            protocol="stepwise" if a.protocol == "both" else a.protocol, jobs=a.jobs, test_fraction=a.test_fraction, epochs=a.epochs, units=a.units, seed=a.seed,
            seasonal_period=a.seasonal_period, out=a.out,
            qc=QCConfig(max_gap=a.max_gap, drop_suspect=a.drop_suspect),
            command="wq " + shlex.join(list(argv)),
        )
    except ValidationError as exc:
        raise InputError("; ".join(_option_message(err) for err in exc.errors())) from None


def _option_message(err: dict) -> str:
    loc = [str(x) for x in err.get("loc", ()) if x != "qc"]
    opt = "--" + loc[-1].replace("_", "-") if loc else "options"
    return f"{opt}: {err.get('msg', 'invalid value')} (got {err.get('input')!r})"


def _prepare_environment(verbose: bool) -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def cmd_evaluate(a: argparse.Namespace, argv: Sequence[str]) -> int:
    cfg = _config_from_args(a, argv)
    from .pipeline import compare_protocols, metrics_table, preflight, run_evaluation, write_outputs

    preflight(cfg)  # bad input fails here, before Prefect starts and before anything is written
    protocols = ("stepwise", "global") if a.protocol == "both" else (cfg.protocol,)
    results = {}
    for protocol in protocols:
        run_cfg = cfg.model_copy(update={"protocol": protocol, "out": cfg.out / protocol if len(protocols) > 1 else cfg.out})
        if a.no_flow:
            metrics = run_evaluation(run_cfg).metrics
        else:
            from flows.evaluate import evaluate_flow

            metrics = evaluate_flow(run_cfg.model_dump(mode="json"))
        results[protocol] = metrics
        print(metrics_table(metrics))
        print(f"\nWrote {run_cfg.out}/ metrics.json, forecasts.csv, stationarity.csv, series.csv, components.csv "
              f"({metrics['timings_s']['total']:.0f} s)\n")
    if len(protocols) > 1:
        comparison = compare_protocols(results["stepwise"], results["global"])
        write_outputs(cfg.out, comparison, {}, name="comparison.json")
        print(f"Wrote {cfg.out}/comparison.json: NSE at step H, honest vs leaky")
        for model, row in comparison["models"].items():
            print(f"  {model:<18} stepwise {row['nse_stepwise']:.3f}   global {row['nse_global']:.3f}   "
                  f"leak {row['nse_leak']:+.3f}")
    if a.no_flow or len(protocols) > 1:  # a flow run builds its own report; the joint one is built here
        from .report import build_report

        build_report(cfg.out)
    print(f"Report: {(cfg.out / 'report.html').resolve()}")
    return EXIT_OK


def cmd_report(a: argparse.Namespace) -> int:
    from .report import build_report

    print(f"Wrote {build_report(a.dir)}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse already printed
        return int(exc.code or 0)
    _prepare_environment(getattr(args, "verbose", False))
    try:
        if args.command == "evaluate":
            return cmd_evaluate(args, argv)
        if args.command == "report":
            return cmd_report(args)
        parser.error(f"unknown command {args.command}")
    except InputError as exc:
        print(f"wq: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("wq: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if getattr(args, "verbose", False):
            traceback.print_exc()
        print(f"wq: failed: {type(exc).__name__}: {exc} (rerun with -v for the traceback)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
