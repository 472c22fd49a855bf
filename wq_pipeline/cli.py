"""The ``wq`` command.

Exit codes: 0 success, 2 bad input (one message on stderr, no traceback), 1 anything else.
"""

from __future__ import annotations

import os

# Before numpy loads: BLAS threads only slow the many tiny matrix products of ARIMA and ADF.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
from dataclasses import dataclass
import shlex
import sys
import traceback
import time
from pathlib import Path
from typing import Sequence

from pydantic import ValidationError

from wq_pipeline.config import (
    METHODS,
    PROTOCOLS,
    READ_FIELDS,
    SERVED_MODELS,
    STATISTICAL_MODELS,
    EvaluateConfig,
    QCConfig,
    ReadOptions,
)
from wq_pipeline.errors import InputError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"wq: error: {message} (see '{self.prog} --help')\n")


def _one_or_several(g: argparse._ArgumentGroup, several: bool, name: str, required: bool, one: str, many: str,
                    every: str) -> None:
    """``--NAME`` for one value; where a run takes several, ``--NAME A,B`` or ``--all-NAMEs``."""
    if not several:
        g.add_argument(f"--{name}", required=required, help=one)
        return
    x = g.add_mutually_exclusive_group(required=required)
    x.add_argument(f"--{name}", help=many)
    x.add_argument(f"--all-{name}s", action="store_true", help=every)


def _data_args(parser: argparse.ArgumentParser, several_targets: bool = False, several_sites: bool = False) -> None:
    g = parser.add_argument_group("data")
    if several_targets:
        g.add_argument("--data", required=True, type=Path, action="append",
                       help="station file: CSV or gzip CSV, wide or long format; repeat for several files (each "
                       "series is evaluated in turn, DIR/summary.* compares them)")
    else:
        g.add_argument("--data", required=True, type=Path, help="station file: CSV or gzip CSV, wide or long format")
    _one_or_several(g, several_targets, "target", True, "column to forecast, e.g. DO_obs",
                    "column(s) to forecast, comma-separated (e.g. DO_obs or DO_obs,Temp); with several, each is "
                    "evaluated in turn into DIR/<target>/ and DIR/summary.csv compares them",
                    "evaluate every numeric measurement column of the station (flag and metadata columns and "
                    "--covariates excluded)")
    g.add_argument("--time-col", help="timestamp column (default: detected, e.g. DateTimeStamp, datetime)")
    g.add_argument("--sep", help="delimiter of a text file: ',', ';', tab or '|' (default: detected from the header line)")
    g.add_argument("--decimal", choices=(".", ","), help="decimal mark (default: detected; a comma only in files not "
                   "separated by commas)")
    g.add_argument("--sheet", help="sheet of an .xlsx workbook: a name or a 1-based number (default: the first)")
    g.add_argument("--time-format", metavar="FORMAT", help="strptime format of the time column, e.g. '%%d/%%m/%%Y %%H:%%M' "
                   "(default: ISO 8601, Y/M/D, or D/M/Y and M/D/Y told apart by a day above 12)")
    g.add_argument("--tz", metavar="ZONE", help="IANA time zone of timestamps without a UTC offset, e.g. Asia/Kolkata "
                   "(default: read as UTC); times repeated or skipped by a daylight-saving change are placed by file "
                   "order or dropped, and counted")
    if several_sites:
        _one_or_several(g, True, "site", False, "site to use in a long-format file with several sites",
                        "site(s) of a long-format file, comma-separated; with several, one global version is "
                        "trained for all of them (networks trained once on every site's samples)",
                        "train one global version for every site of a long-format file; a site without enough "
                        "data is left out and listed")
    else:
        _one_or_several(g, several_targets, "site", False, "site to use in a long-format file with several sites",
                        "site(s) to use in a long-format file with several sites, comma-separated; with several, "
                        "each is evaluated in turn into DIR/<site>/",
                        "evaluate every site of a long-format file; a site too short for the chosen lengths is "
                        "skipped and listed with the reason in DIR/summary.*")
    g.add_argument("--site-col", help="column holding the site code (default: detected, e.g. siteID, StationCode)")
    g.add_argument("--freq", help="regular time step to resample to, a pandas alias such as 1h or 15min "
                   "(default: the file's most common step); coarser steps average readings in (t-step, t]")
    g.add_argument("--max-gap", type=int, default=QCConfig.model_fields["max_gap"].default,
                   help="interpolate gaps of up to this many steps; longer gaps stay missing and no window spans them")
    g.add_argument("--drop-suspect", action="store_true", help="also drop readings flagged <1> (suspect) by NERRS QC")
    spike = QCConfig().spike_guard
    g.add_argument("--spike-guard", action=argparse.BooleanOptionalAction, default=spike.enabled,
                   help="causal spike guard: remove a reading whose jump from the last accepted reading is an outlier "
                   "against the recent rates of change, using only readings up to it (dissolved oxygen, water "
                   "temperature, pH and salinity columns; removed readings are treated like out-of-range ones)")
    g.add_argument("--spike-threshold", type=float, default=spike.threshold, metavar="K",
                   help="the spike guard's threshold in robust standard deviations (1.4826 x MAD) of the recent rates "
                   "of change (> 0; larger removes fewer readings)")


def _model_args(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    d = EvaluateConfig.model_fields
    m = parser.add_argument_group("decomposition and model")
    m.add_argument("--val-fraction", type=float, default=d["val_fraction"].default,
                   help="fraction of the period before the test period (evaluate) or of the training data "
                   "(train, backfill) used for early stopping")
    m.add_argument("--method", choices=METHODS, default=d["method"].default, help="decomposition method")
    m.add_argument("--modes", type=int, default=d["modes"].default,
                   help="number of modes K (1-32); a residual component is added, so K+1 component models")
    m.add_argument("--window", type=int, default=d["window"].default, help="input window W of each network, in steps")
    m.add_argument("--decomp-window", type=int, default=d["decomp_window"].default,
                   help="trailing window L decomposed at every forecast origin (stepwise), in steps; L >= W")
    m.add_argument("--horizon", type=int, default=d["horizon"].default, help="forecast horizon H, in steps (1-500)")
    m.add_argument("--epochs", type=int, default=d["epochs"].default, help="maximum training epochs (early stopping on validation)")
    m.add_argument("--units", type=int, default=d["units"].default, help="LSTM units per network")
    m.add_argument("--jobs", type=int, default=d["jobs"].default,
                   help="networks trained in parallel, each in its own process (0: one per CPU core)")
    m.add_argument("--seed", type=int, default=d["seed"].default, help="random seed (decomposition noise, weights, shuffling)")
    m.add_argument("--level-free", dest="level_free", action=argparse.BooleanOptionalAction,
                   default=d["level_free"].default,
                   help="every network sees its input windows and predicts its targets relative to each window's "
                   "last value, so a level never seen in training is not out of distribution")
    se = parser.add_argument_group("ceemdan-se-vmd (two-stage decomposition)")
    se.add_argument("--secondary-modes", type=int, default=d["secondary_modes"].default,
                    help="VMD modes of the high-complexity group (second stage)")
    se.add_argument("--se-order", type=int, default=d["se_order"].default, help="sample entropy embedding dimension m")
    se.add_argument("--se-tolerance", type=float, default=d["se_tolerance"].default,
                    help="sample entropy tolerance r as a fraction of each IMF's standard deviation")
    se.add_argument("--se-thresholds", metavar="LOW,HIGH",
                    help="group IMFs by fixed entropy thresholds (>= HIGH: high, >= LOW: medium, else low) "
                    "instead of k-means on the training windows' entropies")
    return m


def _served_model_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", choices=SERVED_MODELS, default=EvaluateConfig.model_fields["model"].default,
                        help="the model to train, serve or register: the main model (ensemble: the online-weighted "
                        "ensemble of every model below, with the record of their errors its weights need), the hybrid "
                        "(hybrid_feca_lstm), the per-component networks with FECA (decomp_feca_lstm) or without "
                        "(decomp_lstm), the plain LSTM (lstm), or a statistical model, each fitted as the evaluation "
                        "fits it (settings chosen on the last --val-fraction of the data)")


def _threshold_args(parser: argparse.ArgumentParser, alerts: bool) -> None:
    g = parser.add_argument_group("crossings" + (" and alerts" if alerts else ""),
                                  "the probability of crossing each threshold at every step, from the served model's "
                                  "quantiles, stored with the forecast")
    g.add_argument("--threshold", action="append", metavar="COLUMN<VALUE",
                   help="e.g. 'DO_obs<2' (hypoxia) or 'Turb>50'; repeatable")
    if alerts:
        g.add_argument("--alert-level", type=float, default=EvaluateConfig.model_fields["alert_level"].default,
                       metavar="P", help="raise an alert when a crossing's probability reaches P (0 < P <= 1) at "
                       "any step; alerts are stored and listed by 'wq alerts list'")


def _store_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("storage (also from --config FILE, WQ_DATABASE_URL, WQ_MODELS_DIR)")
    g.add_argument("--database", metavar="URL",
                   help="forecast archive, a SQLAlchemy URL (default: sqlite:///data/wq.db; "
                   "PostgreSQL: postgresql+psycopg://user:pass@host/db)")
    g.add_argument("--models", type=Path, metavar="DIR", help="model registry folder (default: models/)")
    g.add_argument("--config", type=Path, metavar="FILE", help="settings file (default: wq.toml here, if present)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show full tracebacks (and Prefect's INFO logs)")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="wq", description="Honest water-quality forecasting: decomposition + FECA-LSTM and baselines, combined by an online-weighted ensemble.")
    p.add_argument("--version", action="version", version=f"wq-pipeline {__import__('wq_pipeline').__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    e = sub.add_parser(
        "evaluate",
        help="train and score every model and baseline on one station series, over one or more seasons",
        description=(
            "Load and quality-control a station file (with a causal spike guard), test stationarity, decompose "
            "the target at every forecast origin, and train the hybrid (harmonic + AR corrected by one FECA-LSTM "
            "on the raw window, the components and calendar terms), the published model (one FECA-LSTM per "
            "component, summed, with and without FECA) and a plain LSTM, all level-free. Score them, and the "
            "main model, an online-weighted ensemble of every model and baseline, against persistence, "
            "seasonal naive, level-adjusted seasonal naive, climatology, ARIMA, harmonic + AR and the plain "
            "LSTM on the same test points, per fold (--folds) and pooled. Writes metrics.json, forecasts.csv, "
            "weights.csv, stationarity.csv and report.html to --out. Lengths are in steps of --freq."
        ),
        formatter_class=fmt,
    )
    d = EvaluateConfig.model_fields
    _data_args(e, several_targets=True)
    m = _model_args(e)
    m.add_argument("--covariates", metavar="COL,COL",
                   help="other columns of the station (e.g. Temp,Sal) given to every network as extra input "
                   "channels: their values up to the forecast origin, never after")
    m.add_argument("--protocol", choices=(*PROTOCOLS, "both"), default=d["protocol"].default,
                   help="stepwise: honest, each forecast uses only data up to its origin; "
                   "global: LEAKY, decomposes the whole series first (only to reproduce published numbers); "
                   "both: run each into DIR/stepwise and DIR/global and write DIR/comparison.json")
    m.add_argument("--test-fraction", type=float, default=d["test_fraction"].default,
                   help="last fraction of the period used for testing (validation, --val-fraction, is before it); "
                   "one fold only")
    m.add_argument("--folds", type=int, default=d["folds"].default,
                   help="K test periods spread over the series (each N/(K+1) steps, the last ending at the series "
                   "end); every fold trains on the data before its own validation period; scores per fold and pooled")
    m.add_argument("--test-start", metavar="TIME",
                   help="the test period starts at TIME (ISO 8601; no offset: the series' zone); with --folds, the "
                   "folds' test periods split TIME .. end")
    m.add_argument("--seasonal-period", type=int, help="season of the seasonal-naive baseline in steps (default: detected on training data)")
    hy = e.add_argument_group(
        "hybrid model (a member of the ensemble)",
        "a first stage (harmonic + AR, chosen on validation) plus one FECA-LSTM that learns its error from the raw "
        "window, the stepwise components and calendar terms; the defaults were chosen on training and validation "
        "data (BENCHMARKS.md, 'Skill')")
    hy.add_argument("--first-stage", choices=("harmonic_ar", "none"), default=d["first_stage"].default,
                    help="none: the network forecasts the series itself")
    for flag, field, what in (("raw-channel", "raw_channel", "the raw window as an input channel"),
                              ("hybrid-components", "hybrid_components", "the decomposition's components as input channels"),
                              ("calendar", "calendar", "hour of day and day of year (sine, cosine) as input channels"),
                              ("shrink", "shrink", "per-step weights on the network's correction, fitted on validation "
                               "(else first stage + correction)")):
        hy.add_argument(f"--{flag}", dest=field, action=argparse.BooleanOptionalAction, default=d[field].default, help=what)
    en = e.add_argument_group(
        "ensemble (the main model)",
        "combines every baseline and network model at each origin by their errors on forecasts whose targets were "
        "already observed (validation warms the weights up; they keep updating through the test period)")
    en.add_argument("--ensemble-rule", choices=("softmax", "inverse_mse", "best", "stack"),
                    default=d["ensemble_rule"].default,
                    help="softmax: Hedge weights on recent RMSE ratios; inverse_mse: 1/MSE; best: the recent best "
                    "member; stack: convex least squares on the recent errors")
    en.add_argument("--ensemble-half-life", type=float, metavar="STEPS",
                    help="age in grid steps at which a past error counts half (default: 60 days on sub-daily grids, "
                    "280 steps on daily ones)")
    pq = e.add_argument_group(
        "quantiles (every model)",
        "each model's quantiles per step come from its own errors on forecasts whose targets were already observed "
        "(conformal); scored by CRPS, pinball loss, interval coverage, width and Winkler score")
    pq.add_argument("--quantiles", metavar="Q,Q,...",
                    help="quantile levels, strictly between 0 and 1, increasing (default "
                    + ",".join(f"{q:g}" for q in d["quantiles"].default) + ")")
    pq.add_argument("--threshold", action="append", metavar="COLUMN<VALUE",
                    help="a level to forecast the probability of crossing, e.g. 'DO_obs<2' (hypoxia) or 'Turb>50'; "
                    "repeatable; scored by the Brier score and a reliability table")
    pq.add_argument("--alert-level", type=float, default=d["alert_level"].default, metavar="P",
                    help="score the alerts the main model would have raised when a crossing's probability reaches P "
                    "at any step (hits, misses, false alarms)")
    pq.add_argument("--challenge", action="store_true",
                    help="daily runs: also score the main model the NEON Forecasting Challenge's way, by CRPS per "
                    "horizon at the start of each 30-day window, against the challenge's day-of-year normal "
                    "climatology and its random walk with bootstrapped steps")
    pq.add_argument("--interval-method", choices=("split", "rolling", "aci"), default=d["interval_method"].default,
                    help="split: validation errors only; rolling: every error so far, by age; aci: rolling, each level "
                    "steered by its own misses (adaptive conformal)")
    e.add_argument("--global", dest="global_networks", action="store_true",
                   help="with several series (--site A,B, --all-sites, several --data): train each network kind "
                   "once on the pooled samples of every series (each scaled by its own training spread, with a "
                   "series identifier channel) instead of once per series; QC, decomposition, baselines, ensemble "
                   "weights and scores stay per series. Runs the series in-process, side by side")
    e.add_argument("--series-workers", type=int, default=1, metavar="N",
                   help="with several series and the thread task runner: evaluate N series at once (each already "
                   "trains on every core); with [runner] task_runner = \"dask\" in --config the series fan out "
                   "over the Dask cluster's workers instead")
    e.add_argument("--against-local", action="store_true",
                   help="with --global: also evaluate every series with its own networks into DIR/local/<series>/ "
                   "and compare the main model on the same points (DIR/global_vs_local.csv, summary.*)")
    e.add_argument("--out", type=Path, default=d["out"].default, help="output folder")
    e.add_argument("--no-flow", action="store_true",
                   help="run the stages in-process without Prefect (same results; no flow run is recorded)")
    e.add_argument("--register", action="store_true",
                   help="save the evaluated --model (default: the ensemble main model, with its members and "
                   "the record of their forecasts), as its last fold fitted it before its test period, to the model "
                   "registry, so 'wq forecast' and 'wq backfill' issue what the evaluation scored")
    _served_model_arg(e)
    e.add_argument("--models", type=Path, metavar="DIR", help="model registry folder for --register (default: models/)")
    e.add_argument("--config", type=Path, metavar="FILE", help="settings file (default: wq.toml here, if present)")
    e.add_argument("-v", "--verbose", action="store_true", help="show Prefect's INFO logs and full tracebacks")

    r = sub.add_parser("report", help="(re)build the HTML report of a finished evaluation",
                       description="Rebuild DIR/report.html from the files a finished 'wq evaluate' wrote to DIR "
                       "(for --protocol both, DIR is the folder holding stepwise/ and global/).")
    r.add_argument("dir", type=Path, help="output folder of a finished 'wq evaluate' run")

    t = sub.add_parser("train", formatter_class=fmt, help="train a model version on the data known at a time and register it",
                       description="Fit --model (default: the main model, the online-weighted ensemble of every "
                       "baseline and network model, as 'wq evaluate' fits it) on the data known at --as-of and save "
                       "it as a model version (a folder in --models with a manifest). The same data and options give "
                       "the same version id, so rerunning does not train twice.")
    _data_args(t, several_sites=True)
    _model_args(t)
    _served_model_arg(t)
    t.add_argument("--as-of", metavar="TIME", help="train on observations up to TIME (ISO 8601; default: all data)")
    _store_args(t)

    f = sub.add_parser("forecast", formatter_class=fmt, help="issue one forecast and store it in the archive",
                       description="Issue the forecast as of TIME (default: the newest observation) with the newest "
                       "model version trained on data up to TIME, from the newest real observation at or before "
                       "TIME, and store it. Storing the same forecast twice keeps one copy.")
    _data_args(f)
    _served_model_arg(f)
    f.add_argument("--as-of", metavar="TIME", help="issue time (ISO 8601; no offset: the series' zone)")
    f.add_argument("--model-version", metavar="VERSION", help="use this version instead of the newest")
    _threshold_args(f, alerts=True)
    _store_args(f)

    b = sub.add_parser("backfill", formatter_class=fmt, help="store the forecasts that would have been issued over a past period",
                       description="For every issue time from --start to --end (inclusive) every --every: the "
                       "forecast as of that time, optionally retraining every --retrain-every on the data known "
                       "then. Resumable: a rerun skips stored forecasts; an interrupted run loses nothing.")
    _data_args(b)
    _model_args(b)
    _served_model_arg(b)
    b.add_argument("--start", required=True, metavar="TIME", help="first issue time (ISO 8601)")
    b.add_argument("--end", required=True, metavar="TIME", help="last issue time (ISO 8601)")
    b.add_argument("--every", default="1h", metavar="DURATION", help="issue cadence (pandas duration: 1h, 30min, 1d)")
    b.add_argument("--retrain-every", metavar="DURATION",
                   help="train a new version every DURATION (e.g. 7d) on the data known then; "
                   "default: use registered versions (training one as of --start if none exists)")
    b.add_argument("--model-version", metavar="VERSION", help="use this version for every issue time")
    b.add_argument("--chunk", type=int, default=96, help="origins decomposed, predicted and stored per transaction")
    _threshold_args(b, alerts=False)
    _store_args(b)

    mo = sub.add_parser("models", help="list or show registered model versions")
    msub = mo.add_subparsers(dest="models_command", required=True, metavar="list|show", parser_class=_Parser)
    ml = msub.add_parser("list", help="list model versions")
    ml.add_argument("--site")
    ml.add_argument("--target")
    _store_args(ml)
    ms = msub.add_parser("show", help="print a version's manifest")
    ms.add_argument("version")
    _store_args(ms)

    fo = sub.add_parser("forecasts", help="export stored forecasts")
    fsub = fo.add_subparsers(dest="forecasts_command", required=True, metavar="export", parser_class=_Parser)
    fx = fsub.add_parser("export", formatter_class=fmt, help="write stored forecasts to CSV, Parquet or the EFI standard")
    fx.add_argument("--site")
    fx.add_argument("--target")
    fx.add_argument("--model-version", metavar="VERSION")
    fx.add_argument("--start", metavar="TIME", help="first issue time (ISO 8601, no offset: UTC)")
    fx.add_argument("--end", metavar="TIME", help="last issue time (ISO 8601, no offset: UTC)")
    fx.add_argument("--format", choices=("csv", "parquet", "efi"), default="csv",
                    help="efi: the Ecological Forecasting Initiative standard (NEON Forecasting Challenge), each "
                    "forecast's quantiles as 31 ensemble members")
    fx.add_argument("--out", required=True, type=Path, help="file to write")
    _store_args(fx)

    al = sub.add_parser("alerts", help="list the crossing alerts raised by issued forecasts")
    asub = al.add_subparsers(dest="alerts_command", required=True, metavar="list", parser_class=_Parser)
    ali = asub.add_parser("list", formatter_class=fmt, help="list stored alerts, newest first",
                          description="Alerts are raised when an issued forecast's probability of crossing a "
                          "station's threshold reaches its alert level ('wq forecast --threshold ... --alert-level', "
                          "or thresholds and alert_level in the config file's [[stations]]).")
    ali.add_argument("--site")
    ali.add_argument("--target")
    ali.add_argument("--start", metavar="TIME", help="first issue time (ISO 8601, no offset: UTC)")
    ali.add_argument("--end", metavar="TIME", help="last issue time (ISO 8601, no offset: UTC)")
    ali.add_argument("--limit", type=int, default=50, help="show at most this many (newest first)")
    _store_args(ali)

    sv = sub.add_parser("serve", help="serve the scheduled Prefect deployments (long-running)",
                        description="Start the hourly forecast and weekly retrain deployments of every station in "
                        "the config file with a Prefect runner (flows.deployments.serve_all); runs until interrupted. Each scheduled run takes "
                        "its as-of time from its scheduled start time.")
    _store_args(sv)
    return p


def _config_from_args(a: argparse.Namespace, argv: Sequence[str], target: str | None = None,
                      data: Path | None = None, site: str | None = None) -> EvaluateConfig:
    d = EvaluateConfig.model_fields
    if data is None:  # evaluate takes --data more than once; one file stands for itself
        data = a.data[0] if isinstance(a.data, list) and len(a.data) == 1 else a.data
    fields = dict(
        data=data, target=target or a.target, time_col=a.time_col, site=site or a.site,
        site_col=a.site_col, freq=a.freq,
        sep=a.sep, decimal=a.decimal, sheet=a.sheet, time_format=a.time_format, tz=a.tz,
        qc=dict(max_gap=a.max_gap, drop_suspect=a.drop_suspect,  # a dict: EvaluateConfig validates it below
                spike_guard=dict(enabled=a.spike_guard, spike_threshold=a.spike_threshold)),
        command="wq " + shlex.join(list(argv)),
    )
    for name in ("method", "modes", "window", "decomp_window", "horizon", "jobs", "test_fraction", "val_fraction",
                 "epochs", "units", "seed", "seasonal_period", "out", "secondary_modes", "se_order", "se_tolerance",
                 "first_stage", "raw_channel", "hybrid_components", "calendar", "shrink", "level_free", "folds",
                 "test_start", "ensemble_rule", "ensemble_half_life", "model", "challenge"):
        fields[name] = getattr(a, name, d[name].default)
    if getattr(a, "quantiles", None):
        fields["quantiles"] = _number_list(a.quantiles, "--quantiles")
    if getattr(a, "threshold", None):
        fields["thresholds"] = list(a.threshold)
    if getattr(a, "alert_level", None) is not None:
        fields["alert_level"] = a.alert_level
    if getattr(a, "interval_method", None):
        fields["interval_method"] = a.interval_method
    if getattr(a, "se_thresholds", None):
        fields["se_grouping"], fields["se_thresholds"] = "thresholds", _number_pair(a.se_thresholds, "--se-thresholds")
    fields["covariates"] = _name_list(getattr(a, "covariates", None))
    protocol = getattr(a, "protocol", "stepwise")
    fields["protocol"] = "stepwise" if protocol == "both" else protocol
    try:
        return EvaluateConfig(**fields)
    except ValidationError as exc:
        raise InputError("; ".join(_option_message(err) for err in exc.errors())) from None


def _read_options(a: argparse.Namespace) -> ReadOptions:
    """``--sep``, ``--decimal``, ``--sheet``, ``--time-format``, ``--tz`` validated."""
    try:
        return ReadOptions(**{k: getattr(a, k) for k in READ_FIELDS})
    except ValidationError as exc:
        raise InputError("; ".join(_option_message(err) for err in exc.errors())) from None


def _name_list(text: str | None) -> list[str]:
    """``"Temp, Sal"`` -> ``["Temp", "Sal"]`` (empty for None)."""
    return [] if not text else [part.strip() for part in text.split(",")]


def _number_list(text: str, option: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"{option}: expected numbers separated by commas, got {text!r}") from None


def _number_pair(text: str, option: str) -> tuple[float, float]:
    try:
        low, high = (float(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"{option}: expected two numbers LOW,HIGH, got {text!r}") from None
    return low, high


def _option_message(err: dict) -> str:
    loc = [str(x) for x in err.get("loc", ()) if x != "qc"]
    opt = "--" + loc[-1].replace("_", "-") if loc else "options"
    return f"{opt}: {err.get('msg', 'invalid value')} (got {err.get('input')!r})"


def _prepare_environment(verbose: bool) -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if verbose:
        os.environ["PREFECT_LOGGING_LEVEL"] = "INFO"
    else:
        os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")


def _evaluation_targets(a: argparse.Namespace, data: Path, site: str | None) -> list[str]:
    """``--target A,B`` -> ``[A, B]``; ``--all-targets`` -> every measurement column of the
    station (one site of ``data``) except the covariates."""
    if not a.all_targets:
        targets = _name_list(a.target)
        if any(not t for t in targets) or len({t.lower() for t in targets}) != len(targets):
            raise InputError(f"--target: expected distinct, non-empty column names, got {a.target!r}")
        return targets
    from wq_pipeline.data.load import load_table
    from wq_pipeline.data.qc import variable_columns

    read = _read_options(a)
    table = load_table(data, time_col=a.time_col, site=site, site_col=a.site_col, read=read)
    skip = {c.lower() for c in _name_list(a.covariates)}
    targets = [c for c in variable_columns(table) if c.lower() not in skip]
    if not targets:
        raise InputError(f"{table.name}: no numeric measurement column to evaluate (besides the covariates)")
    return targets


def _evaluation_sites(a: argparse.Namespace, data: Path) -> list[str | None]:
    """The sites of ``data`` to evaluate: every one (``--all-sites``), the ``--site`` list (each
    checked against the file's sites: exit 2 listing them), or the file's only one (None)."""
    from wq_pipeline.data.load import list_sites

    if a.all_sites:
        sites = list_sites(data, time_col=a.time_col, site_col=a.site_col, read=_read_options(a))
        if not sites:
            raise InputError(f"{data.name}: --all-sites: the site column holds no site code")
        return sites
    wanted = _name_list(a.site)
    if len(wanted) <= 1:
        return [wanted[0] if wanted else None]
    if len({w.lower() for w in wanted}) != len(wanted) or any(not w for w in wanted):
        raise InputError(f"--site: expected distinct, non-empty site codes, got {a.site!r}")
    known = list_sites(data, time_col=a.time_col, site_col=a.site_col, read=_read_options(a))
    lower = {k.lower(): k for k in known}
    missing = [w for w in wanted if w not in known and w.lower() not in lower]
    if missing:
        raise InputError(f"{data.name}: site(s) {', '.join(repr(m) for m in missing)} not found; sites: "
                         + ", ".join(known))
    return [w if w in known else lower[w.lower()] for w in wanted]


@dataclass
class _Series:
    """One series of a ``wq evaluate`` run: its config and its label (the output sub-folder)."""

    label: str
    cfg: EvaluateConfig


def _evaluation_series(a: argparse.Namespace, argv: Sequence[str]) -> list[_Series]:
    """Every (file, site, target) the run evaluates, with its output folder: ``DIR`` for one
    series, else ``DIR/<file>/<site>/<target>`` keeping only the parts that vary."""
    from wq_pipeline.evaluation.summary import folder_name

    files = list(a.data)
    if len({str(f) for f in files}) != len(files):
        raise InputError("--data: the same file is given twice")
    triples = [(f, site, t) for f in files for site in _evaluation_sites(a, f) for t in _evaluation_targets(a, f, site)]
    vary = [len({x[i] for x in triples}) > 1 for i in range(3)]
    several = len(triples) > 1
    out = []
    for f, site, target in triples:
        parts = [p for p, v in zip((f.name.split(".")[0], site or "", target), vary) if v]
        cfg = _config_from_args(a, argv, target, f, site)
        if several:  # a target is never its own covariate
            cfg = cfg.model_copy(update={"out": cfg.out.joinpath(*[folder_name(p) for p in parts]),
                                         "covariates": [c for c in cfg.covariates if c.lower() != target.lower()]})
        out.append(_Series("/".join(parts) or target, cfg))
    return out


def cmd_evaluate(a: argparse.Namespace, argv: Sequence[str]) -> int:
    from wq_pipeline.evaluation.pipeline import preflight
    from wq_pipeline.evaluation.summary import summary_html, summary_markdown, summary_table

    series = _evaluation_series(a, argv)
    several = len(series) > 1
    if a.global_networks:
        if not several:
            raise InputError("--global trains each network once across two or more series; this run has one (give "
                             "several sites with --site A,B or --all-sites, or several --data files)")
        if a.protocol != "stepwise" or a.register:
            raise InputError("--global runs the honest stepwise protocol only, and registers nothing "
                             "(leave out --protocol and --register; 'wq train --all-sites' registers a global "
                             "version)")
    elif a.against_local:
        raise InputError("--against-local compares global networks with local ones: give --global too")
    runnable, skipped = [], {}
    for s in series:  # bad input fails here, before Prefect starts and before anything is written
        try:
            preflight(s.cfg)
            runnable.append(s)
        except InputError as exc:
            if not several:
                raise
            skipped[s.label] = str(exc)
    if not runnable:
        label, why = next(iter(skipped.items()))
        raise InputError(f"none of the {len(skipped)} series can be evaluated; {label}: {why}")
    registry_dir = None
    if a.register:
        from wq_pipeline.settings import load_serve_settings

        registry_dir = str(load_serve_settings(a.config, None, a.models).archive.models)
    if several:
        at_once = ("side by side, networks trained once across them" if a.global_networks
                   else f"{a.series_workers} at a time" if not a.no_flow and a.protocol != "both" else "in turn")
        print(f"Evaluating {len(runnable)} series {at_once} (each trains on every core): "
              f"{', '.join(s.label for s in runnable)}" + (f"; skipping {len(skipped)}" if skipped else "") + "\n")
        for label, why in skipped.items():
            print(f"  skipped {label}: {why}")
    t0 = time.perf_counter()
    results = _evaluate_global(runnable, skipped) if a.global_networks else {}
    global_seconds = time.perf_counter() - t0
    if a.against_local:
        results = _against_local(a, runnable, results)
    fan_out = several and not a.global_networks and not a.no_flow and a.protocol != "both"
    if fan_out:
        results.update(_evaluate_fanned_out(a, runnable, registry_dir, skipped))
    for s in runnable if not (a.global_networks or fan_out) else []:
        try:
            results[s.label] = _evaluate_target(a, s.cfg, registry_dir)
        except InputError as exc:  # found only while running (e.g. too few samples for a network)
            if not several:
                raise
            skipped[s.label] = str(exc)
            print(f"  skipped {s.label}: {exc}")
    if several:
        from wq_pipeline.evaluation.pipeline import write_outputs

        out = a.out
        table = summary_table(results)
        md_extra = html_extra = ""
        tables = {"summary.csv": table}
        if a.against_local:
            from wq_pipeline.evaluation.summary import comparison_html, comparison_markdown, global_vs_local

            comparison = global_vs_local(table)
            tables["global_vs_local.csv"] = comparison
            md_extra = comparison_markdown(comparison, global_seconds)
            html_extra = comparison_html(comparison, global_seconds)
        write_outputs(out, {"series": [s.label for s in series], "rows": table.to_dict(orient="records"),
                            "skipped": [{"series": k, "reason": v} for k, v in skipped.items()],
                            **({"global_seconds": round(global_seconds, 1)} if a.global_networks else {})},
                      tables, name="summary.json")
        for name, text in (("summary.md", summary_markdown(table, skipped, md_extra)),
                           ("summary.html", summary_html(table, skipped, html_extra))):
            tmp = out / f".{name}.tmp"
            tmp.write_text(text)
            os.replace(tmp, out / name)
        print(summary_markdown(table, skipped))
        print(f"Wrote {out}/summary.csv, summary.md, summary.html, summary.json; one folder per series")
        if not results:
            raise InputError(f"no series could be evaluated; see {out}/summary.md")
    return EXIT_OK


def _evaluate_global(runnable: list[_Series], skipped: dict[str, str]) -> dict[str, dict]:
    """Evaluate ``runnable`` series with global networks (:func:`~wq_pipeline.evaluation.global_networks.run_global`);
    a series that fails with bad input joins ``skipped``; any other failure is raised."""
    from wq_pipeline.evaluation.global_networks import run_global
    from wq_pipeline.evaluation.pipeline import metrics_table

    results, errors = run_global({s.label: s.cfg for s in runnable})
    for label, exc in errors.items():
        if not isinstance(exc, InputError):
            raise exc
        skipped[label] = str(exc)
        print(f"  skipped {label}: {exc}")
    from wq_pipeline.report import build_report

    out = {}
    for s in runnable:
        if s.label in results:
            m = results[s.label].metrics
            build_report(s.cfg.out)
            print(f"{s.label}:\n{metrics_table(m)}\n")
            out[s.label] = {"stepwise": m}
    return out


def _evaluate_fanned_out(a: argparse.Namespace, runnable: list[_Series], registry_dir: str | None,
                         skipped: dict[str, str]) -> dict[str, dict]:
    """Several series through one Prefect flow run, one task per series on the configured task
    runner (:func:`flows.evaluate.evaluate_series_flow`); a series with bad input joins ``skipped``."""
    from flows.deployments import task_runner_for
    from flows.evaluate import evaluate_series_flow

    from wq_pipeline.evaluation.pipeline import metrics_table
    from wq_pipeline.settings import load_serve_settings

    if a.series_workers < 1:
        raise InputError(f"--series-workers: expected a positive number of series, got {a.series_workers}")
    runner = load_serve_settings(a.config).runner
    dask = runner.task_runner == "dask"
    if not dask:
        runner = runner.model_copy(update={"max_workers": a.series_workers})
    # Dask's worker processes are daemonic: each series trains in its worker's own process
    configs = {s.label: s.cfg.model_copy(update={"jobs": 1} if dask else {}).model_dump(mode="json") for s in runnable}
    done = evaluate_series_flow.with_options(task_runner=task_runner_for(runner))(configs, registry_dir)
    out = {}
    for s in runnable:
        got = done.get(s.label)
        if isinstance(got, str):
            skipped[s.label] = got
            print(f"  skipped {s.label}: {got}")
        elif got is not None:
            print(f"{s.label}:\n{metrics_table(got)}\n")
            if got.get("model_version"):
                print(f"Registered the evaluated {a.model} as version {got['model_version']} in {registry_dir}\n")
            out[s.label] = {"stepwise": got}
    return out


def _against_local(a: argparse.Namespace, runnable: list[_Series], results: dict[str, dict]) -> dict[str, dict]:
    """Evaluate every series of a ``--global`` run again with its own networks, into
    ``DIR/local/<series>``: ``{series: {GLOBAL_NETWORKS: metrics, LOCAL_NETWORKS: metrics}}``."""
    from wq_pipeline.evaluation.summary import GLOBAL_NETWORKS, LOCAL_NETWORKS, folder_name

    both = {}
    for s in runnable:
        if s.label not in results:
            continue
        print(f"{s.label}, local networks:")
        local_out = a.out / "local" / Path(*[folder_name(p) for p in s.label.split("/")])
        local = _evaluate_target(a, s.cfg.model_copy(update={"out": local_out}), None)["stepwise"]
        both[s.label] = {GLOBAL_NETWORKS: results[s.label]["stepwise"], LOCAL_NETWORKS: local}
    return both


def _evaluate_target(a: argparse.Namespace, cfg: EvaluateConfig, registry_dir: str | None) -> dict[str, dict]:
    """Evaluate one target under the protocol(s) asked for; returns ``{protocol: metrics}``."""
    from wq_pipeline.evaluation.pipeline import (
        compare_protocols,
        metrics_table,
        run_evaluation,
        write_outputs,
    )

    protocols = ("stepwise", "global") if a.protocol == "both" else (cfg.protocol,)
    results = {}
    for protocol in protocols:
        run_cfg = cfg.model_copy(update={"protocol": protocol, "out": cfg.out / protocol if len(protocols) > 1 else cfg.out})
        register = registry_dir if protocol == "stepwise" else None
        if a.no_flow:
            result = run_evaluation(run_cfg)
            metrics = result.metrics
            if register:
                from wq_pipeline.store.registry import Registry
                from wq_pipeline.serve.training import register_evaluation

                metrics["model_version"] = register_evaluation(result, run_cfg, Registry(Path(register))).version
        else:
            from flows.evaluate import evaluate_flow

            metrics = evaluate_flow(run_cfg.model_dump(mode="json"), register)
        results[protocol] = metrics
        print(metrics_table(metrics))
        if metrics.get("model_version"):
            print(f"\nRegistered the evaluated {a.model} as version {metrics['model_version']} in {registry_dir}")
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
        from wq_pipeline.report import build_report

        build_report(cfg.out)
    print(f"Report: {(cfg.out / 'report.html').resolve()}")
    return results


def _stores(a: argparse.Namespace):
    """``(registry, open_archive, shown URL)`` from --config / environment / --database / --models.
    The archive is opened by calling ``open_archive()``, once the inputs are checked, so that bad
    input writes nothing; the shown URL hides the password."""
    from sqlalchemy.engine import make_url

    from wq_pipeline.store.archive import Archive
    from wq_pipeline.store.registry import Registry
    from wq_pipeline.settings import load_serve_settings

    settings = load_serve_settings(getattr(a, "config", None), getattr(a, "database", None), getattr(a, "models", None))
    url = settings.archive.database
    return Registry(settings.archive.models), lambda: Archive(url), make_url(url).render_as_string(hide_password=True)


def _fmt_metrics(m: dict) -> str:
    def f(key: str) -> str:
        v = m.get(key)
        return "n/a" if v is None else f"{v:.3f}"
    return (f"RMSE {f('rmse')}, NSE {f('nse')}, skill vs persistence {f('skill')} "
            f"({m.get('n_points', 'n/a')} points at step H)")


def cmd_train(a: argparse.Namespace, argv: Sequence[str]) -> int:
    sites = _evaluation_sites(a, a.data)
    if len(sites) > 1:
        return _train_global(a, argv, [s for s in sites if s is not None])
    cfg = _config_from_args(a, argv, site=sites[0])
    from wq_pipeline.serve.jobs import train_job
    from wq_pipeline.models.workers import resolve_jobs

    registry, open_archive, shown_url = _stores(a)
    if cfg.model in STATISTICAL_MODELS:
        print(f"Fitting {cfg.model} ...", file=sys.stderr)
    else:
        print(f"Training {cfg.method} K={cfg.modes}: {cfg.modes + 1} networks ...", file=sys.stderr)
    version, trained, _ = train_job(cfg, registry, open_archive, as_of=a.as_of, command=cfg.command,
                                    workers=min(resolve_jobs(cfg.jobs), cfg.modes + 1))
    m = version.manifest
    print(f"{'Registered' if trained else 'Already registered'} model version {version.version} ({version.model})")
    print(f"  trained on {m['training_period']['start']} .. {m['training_period']['end']} "
          f"({m['training']['n_train']} training, {m['training']['n_val']} validation origins)")
    print(f"  validation: {_fmt_metrics(m['validation'])}")
    print(f"  folder: {version.path}")
    return EXIT_OK


def _train_global(a: argparse.Namespace, argv: Sequence[str], sites: list[str]) -> int:
    """``wq train --all-sites`` / ``--site A,B``: one global version for every site."""
    from wq_pipeline.serve.jobs import train_global_job

    cfgs = {site: _config_from_args(a, argv, site=site) for site in sites}
    registry, open_archive, _ = _stores(a)
    print(f"Training one global {a.model} for {len(sites)} sites: {', '.join(sites)} ...", file=sys.stderr)
    done, _ = train_global_job(cfgs, registry, open_archive, as_of=a.as_of, command=next(iter(cfgs.values())).command)
    g = done.version
    print(f"{'Registered' if done.trained else 'Already registered'} global version {g.version} "
          f"({g.model}, networks {', '.join(g.manifest['components'])})")
    print(f"  folder: {g.path}")
    for label, v in done.stations.items():
        m = v.manifest
        print(f"  {label}: {v.version} trained on {m['training_period']['start']} .. {m['training_period']['end']}; "
              f"validation: {_fmt_metrics(m['validation'])}")
    for label, why in done.skipped.items():
        print(f"  skipped {label}: {why}")
    return EXIT_OK


def cmd_forecast(a: argparse.Namespace, argv: Sequence[str]) -> int:
    cfg = _config_from_args(a, argv)
    from wq_pipeline.serve.jobs import forecast_job

    registry, open_archive, shown_url = _stores(a)
    done = forecast_job(cfg, registry, open_archive, as_of=a.as_of, model_version=a.model_version, command=cfg.command)
    issued, written = done.issued, done.rows_written
    frame = issued.frame()
    by = str(frame["issued_by"].iloc[0])
    stood_in = "" if by == issued.model else f" ({issued.model} could not issue here: {by} stood in)"
    print(f"Forecast of {issued.target} at {issued.site}, issued at {issued.issued_at[0].isoformat()} "
          f"by model version {issued.version}{stood_in}:")
    import numpy as np

    levels = list(issued.levels)
    band = [levels.index(q) for q in (0.05, 0.5, 0.95) if q in levels]
    q = issued.quantiles[0] if issued.quantiles is not None and len(band) == 3 else None
    if q is not None and np.isfinite(q).all():
        print(f"  {'target time':<25}  forecast   median   90 % interval")
        for h, (t, v) in enumerate(zip(frame["target_time"], frame["value"])):
            print(f"  {t.isoformat():<25}  {v:8.4f}  {q[h, band[1]]:7.4f}   {q[h, band[0]]:.4f} .. {q[h, band[2]]:.4f}")
    else:
        for t, v in zip(frame["target_time"], frame["value"]):
            print(f"  {t.isoformat()}  {v:.4f}")
    from wq_pipeline.serve.alerts import alert_sentence

    crossings = done.crossings
    for th in issued.thresholds:
        p = crossings[crossings["threshold"] == th.label]
        if len(p):
            print(f"  P({th.label}) by step: " + ", ".join(f"{v:.2f}" for v in p["probability"]))
    for note in done.notes:
        print(f"  note: {note}")
    for r in done.alerts.itertuples(index=False):
        print(f"ALERT: {alert_sentence(r)}")
    print(f"Stored {written} new rows in {shown_url}" + ("" if written else " (already stored)"))
    return EXIT_OK



def cmd_backfill(a: argparse.Namespace, argv: Sequence[str]) -> int:
    cfg = _config_from_args(a, argv)
    from tqdm.auto import tqdm

    from wq_pipeline.serve.jobs import backfill_job
    from wq_pipeline.models.workers import resolve_jobs

    if a.chunk < 1:
        raise InputError(f"--chunk must be >= 1 (got {a.chunk})")
    registry, open_archive, shown_url = _stores(a)
    bar = None  # shown once the inputs are checked, so bad input prints only its error

    def log(msg: str) -> None:
        (bar.write if bar is not None else print)(f"wq backfill: {msg}", file=sys.stderr)

    def started(total: int) -> None:
        nonlocal bar
        bar = tqdm(total=total, desc="Backfill", unit="issue", file=sys.stderr,
                   disable=os.environ.get("WQ_NO_PROGRESS") == "1")

    try:
        res, _ = backfill_job(cfg, registry, open_archive, start=a.start, end=a.end, every=a.every,
                              retrain_every=a.retrain_every, model_version=a.model_version, chunk=a.chunk,
                              workers=min(resolve_jobs(cfg.jobs), cfg.modes + 1), command=cfg.command,
                              on_start=started, progress=lambda n: bar.update(n) if bar is not None else None, log=log)
    finally:
        if bar is not None:
            bar.close()
    rate = res.written_origins / max(res.seconds, 1e-9)
    print(f"Backfill {a.start} .. {a.end} every {a.every}: {res.issue_times} issue times, {res.origins} forecasts "
          f"({res.already_stored} already stored, {res.written_origins} new, {res.skipped} issue times without a "
          f"usable observation); {res.rows_written} rows written in {res.seconds:.1f} s ({rate:.1f} forecasts/s; "
          f"decomposition {res.decompose_seconds:.1f} s, training {res.train_seconds:.1f} s)")
    print(f"Model versions: {', '.join(res.versions)}" + (f" (trained now: {', '.join(res.trained)})" if res.trained else ""))
    return EXIT_OK


def cmd_models(a: argparse.Namespace) -> int:
    import json

    registry, _, _ = _stores(a)
    if a.models_command == "show":
        print(json.dumps(registry.get(a.version).manifest, indent=2))
        return EXIT_OK
    versions = registry.list(site=a.site, target=a.target)
    if not versions:
        print(f"No model versions in {registry.root}")
        return EXIT_OK
    print(f"{'version':<58}{'trained until':<27}{'model':<31}{'val RMSE':>9}{'val NSE':>9}")
    for v in versions:
        val = v.manifest.get("validation", {})
        rmse = val.get("rmse", (val.get("test") or {}).get("rmse"))
        nse = val.get("nse", (val.get("test") or {}).get("nse"))
        cells = ["n/a" if x is None else f"{x:.3f}" for x in (rmse, nse)]
        model = v.model if v.model in STATISTICAL_MODELS else f"{v.model} ({v.manifest.get('method', '')})"
        if v.kind == "global":  # the pooled networks of several stations' versions
            model = f"{v.model} (global, {len(v.manifest.get('stations', []))} sites)"
        print(f"{v.version:<58}{v.trained_until.isoformat():<27}{model:<31}{cells[0]:>9}{cells[1]:>9}")
    return EXIT_OK


def cmd_forecasts(a: argparse.Namespace) -> int:
    from wq_pipeline.evaluation.asof import as_timestamp

    _, open_archive, _ = _stores(a)
    archive = open_archive()
    filters = {"site": a.site, "target": a.target, "model_version": a.model_version,
               "start": as_timestamp(a.start, "UTC", "--start") if a.start else None,
               "end": as_timestamp(a.end, "UTC", "--end") if a.end else None}
    if filters["start"] is not None and filters["end"] is not None and filters["end"] < filters["start"]:
        raise InputError(f"--end {a.end} is before --start {a.start}")
    n = archive.export(a.out, a.format, **filters)
    print(f"Wrote {n} {'EFI' if a.format == 'efi' else 'forecast'} rows to {a.out}")
    return EXIT_OK


def cmd_alerts(a: argparse.Namespace) -> int:
    from wq_pipeline.serve.alerts import alert_sentence
    from wq_pipeline.evaluation.asof import as_timestamp

    if a.limit < 1:
        raise InputError(f"--limit must be >= 1 (got {a.limit})")
    _, open_archive, shown_url = _stores(a)
    start = as_timestamp(a.start, "UTC", "--start") if a.start else None
    end = as_timestamp(a.end, "UTC", "--end") if a.end else None
    if start is not None and end is not None and end < start:
        raise InputError(f"--end {a.end} is before --start {a.start}")
    alerts = open_archive().alerts(site=a.site, target=a.target, start=start, end=end)
    if alerts.empty:
        print(f"No alerts in {shown_url}")
        return EXIT_OK
    print(f"{len(alerts)} alert(s) in {shown_url}" + (f", the newest {a.limit}:" if len(alerts) > a.limit else ":"))
    for r in alerts.head(a.limit).itertuples(index=False):
        print(f"  {alert_sentence(r)}")
    return EXIT_OK


def cmd_serve(a: argparse.Namespace) -> int:
    from wq_pipeline.settings import load_serve_settings

    settings = load_serve_settings(a.config, a.database, a.models)
    if not settings.stations:
        raise InputError("wq serve: no [[stations]] in the config file (see wq.example.toml)")
    from flows.deployments import serve_all

    serve_all(settings)
    return EXIT_OK


def cmd_report(a: argparse.Namespace) -> int:
    from wq_pipeline.report import build_report

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
        if args.command == "train":
            return cmd_train(args, argv)
        if args.command == "forecast":
            return cmd_forecast(args, argv)
        if args.command == "backfill":
            return cmd_backfill(args, argv)
        if args.command == "models":
            return cmd_models(args)
        if args.command == "forecasts":
            return cmd_forecasts(args)
        if args.command == "alerts":
            return cmd_alerts(args)
        if args.command == "serve":
            return cmd_serve(args)
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
