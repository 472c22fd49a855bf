"""The HTML evaluation report: drawn in a real headless Chromium, escaped, small, both protocols,
the ensemble as the main model with its weights, every fold of a multi-fold run."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.report.cdp import Browser, BrowserError
from wq_pipeline.errors import InputError
from wq_pipeline.evaluation.pipeline import MEMBER_NAMES, MODEL_NAMES, SKILL_REFERENCES
from wq_pipeline.report import _fmt, _pct, build_context, build_report, json_for_script, render_html, RunFiles
from wq_pipeline.report.figures import MODEL_COLORS, MODEL_LABELS, gap_broken, minmax_indices, parse_times, time_text

ENSEMBLE_LABEL = "ensemble: every model weighted by its recent errors"

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "reports" / "screenshots" / "report.png"
BUDGET = 5 * 1024 * 1024

# Evaluated in the page: sections present, every chart spec drawn on a canvas with coloured pixels.
CHECK = r"""
(() => {
  const r = window.__wqReport || {};
  const charts = [...document.querySelectorAll('[data-chart]')].map(div => {
    const c = div.querySelector('canvas');
    if (!c) return {id: div.dataset.chart, w: 0, h: 0, coloured: 0};
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let coloured = 0;
    for (let i = 0; i < d.length; i += 4) {
      const hi = Math.max(d[i], d[i + 1], d[i + 2]), lo = Math.min(d[i], d[i + 1], d[i + 2]);
      if (d[i + 3] > 100 && hi - lo > 60) coloured++;
    }
    return {id: div.dataset.chart, w: c.width, h: c.height, coloured};
  });
  // pixels of the main model's colour (#5E2CA5) on the forecast chart's canvas
  let main_pixels = 0;
  const fc = document.querySelector('[data-chart="forecast"] canvas');
  if (fc) {
    const d = fc.getContext('2d').getImageData(0, 0, fc.width, fc.height).data;
    for (let i = 0; i < d.length; i += 4)
      if (d[i + 3] > 200 && Math.abs(d[i] - 0x5E) + Math.abs(d[i + 1] - 0x2C) + Math.abs(d[i + 2] - 0xA5) < 40) main_pixels++;
  }
  const tables = {};
  document.querySelectorAll('table[id]').forEach(t => {
    tables[t.id] = [...t.querySelectorAll('tbody tr')].map(tr => [...tr.children].map(c => c.textContent.trim()));
  });
  const sections = [...document.querySelectorAll('[data-section]')].map(s => ({
    n: s.dataset.section, id: s.id, heading: (s.querySelector('h2') || {}).textContent || ''}));
  return {sections, charts, expected: r.charts || [], rendered: r.rendered || [], errors: r.errors || [],
          title: document.title, text: document.body.textContent,
          scripts: [...document.scripts].map(s => s.type || 'js'),
          alerts: [...document.scripts].filter(s => s.type !== 'application/json' && /alert\(/.test(s.textContent)).length,
          banner: !!document.getElementById('leaky-banner'), main_pixels, tables};
})()
"""


@pytest.fixture(scope="module")
def run_dir(tiny_stepwise_run) -> Path:
    """The shared tiny real run (62 days of Sapelo DO with QC events: out-of-range readings and an
    interpolated hole, so every mark has something to show)."""
    return tiny_stepwise_run[0]


@pytest.fixture(scope="module")
def browser():
    try:
        b = Browser()
    except BrowserError as exc:
        pytest.fail(f"headless Chromium could not start: {exc}")
    yield b
    b.close()


def _copy(run_dir: Path, dst: Path) -> Path:
    shutil.copytree(run_dir, dst)
    (dst / "report.html").unlink(missing_ok=True)
    return dst


def _edit_metrics(folder: Path, **changes) -> dict:
    p = folder / "metrics.json"
    m = json.loads(p.read_text())
    m.update(changes)
    p.write_text(json.dumps(m))
    return m


def _embedded(html: str) -> dict:
    blob = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(blob)


def _assert_clean(res) -> None:
    assert res.console_errors == [], res.console_errors
    assert res.exceptions == [], res.exceptions
    assert res.dialogs == [], res.dialogs
    assert all(u.startswith(("file:", "data:", "about:")) for u in res.requests), res.requests


def _assert_drawn(value: dict) -> None:
    assert value["errors"] == [], value["errors"]
    assert value["expected"] and value["rendered"] == value["expected"]
    by_id = {c["id"]: c for c in value["charts"]}
    assert set(by_id) == set(value["expected"])
    for c in value["charts"]:
        assert c["w"] > 100 and c["h"] > 50, c
        assert c["coloured"] > 50, f"chart {c['id']} looks blank: {c}"


# --------------------------------------------------------------------------- in the browser


def test_report_renders_every_section_and_chart(run_dir: Path, browser: Browser, tmp_path: Path):
    report = build_report(run_dir)
    assert report == run_dir / "report.html" and report.is_file()
    assert not list(run_dir.glob(".report.html.*")), "temporary file left behind"
    size = report.stat().st_size
    assert size < 1_000_000, f"tiny run report is {size} bytes"
    html = report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "the report must not load anything"

    shot = tmp_path / "report.png"
    res = browser.open(report.as_uri(), CHECK, screenshot=shot)
    _assert_clean(res)
    v = res.value
    assert [s["n"] for s in v["sections"]] == ["1", "2", "3", "4", "5", "6", "7", "8", "10"]
    assert all(s["heading"].strip() for s in v["sections"])
    assert "How the ensemble weighs its members" in v["sections"][5]["heading"]
    _assert_drawn(v)
    ids = set(v["expected"])
    m = json.loads((run_dir / "metrics.json").read_text())
    n_comp = len(m["components"])
    assert {"qc", "spectrum", "forecast", "skill", "resid-hist", "resid-acf", "weights-1", "fan", "pit"} <= ids
    # every model's quantile scores, the main model marked
    unc = v["tables"]["uncertainty-table"]
    assert len(unc) == len(m["probabilistic"]["models"]) and sum("(main)" in r[0] for r in unc) == 1
    assert "conformal calibration" in v["text"]
    assert {"reliability-0", "crossing-0"} <= ids and "Probability of DO_obs<4" in v["text"]
    a = m["exceedance"][0]["alerts"]
    assert f"{a['alerts']} alerts over {a['origins']} test origins" in v["text"]
    assert {f"decomp-{i}" for i in range(n_comp + 1)} <= ids
    assert {f"loss-{i}" for i in range(len(m["training"]))} <= ids
    assert not v["banner"]

    # QC marks, the headline, every model in the metrics table, the footer
    specs = {c["id"]: c for c in _embedded(html)["charts"]}
    labels = [s["label"] for s in specs["qc"]["series"]]
    assert "removed: out of physical range" in labels and "interpolated (never scored)" in labels
    assert len(specs["forecast"]["x"]) == m["n_test"]  # full resolution
    text = v["text"]
    assert f"on {m['models']['decomp_feca_lstm']['n_points']:,} test points" in text
    for label in ("persistence", "seasonal naive", "ARIMA", "LSTM (raw series)", "decomposition + FECA-LSTM"):
        assert label in text
    # the ensemble is the main model, everywhere; the per-component model keeps its label
    assert m["main_model"] == "ensemble"
    assert f"the main model ({ENSEMBLE_LABEL}) has a lower RMSE" in text
    assert "decomposition + FECA-LSTM (the published per-component model, not a baseline)" in text
    assert f"{ENSEMBLE_LABEL} (main)" in " ".join(text.split())  # the metrics table marks it
    fc = [s for s in specs["forecast"]["series"] if s["label"] == f"{ENSEMBLE_LABEL} (main model)"]
    assert len(fc) == 1 and fc[0]["color"] == MODEL_COLORS["ensemble"] and fc[0]["width"] > 2
    assert specs["resid-hist"]["series"][0]["color"] == MODEL_COLORS["ensemble"]
    # its colour is on the forecast canvas (so it reads on white) and no other model shares it
    assert v["main_pixels"] > 200, v["main_pixels"]
    assert list(MODEL_COLORS.values()).count(MODEL_COLORS["ensemble"]) == 1
    assert m["dataset_sha256"] in text and (m["command"] or "wq evaluate --data") in text
    assert "ADF" in text and "KPSS" in text and "max |series − sum of components|" in text

    assert shot.stat().st_size > 10_000
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, SCREENSHOT)


def test_site_name_is_rendered_as_text(run_dir: Path, browser: Browser, tmp_path: Path):
    evil = "<script>alert(1)</script>"
    folder = _copy(run_dir, tmp_path / "evil")
    _edit_metrics(folder, site=evil, command="wq evaluate --site '</script><script>alert(2)</script>' & <b>x</b>")
    report = build_report(folder)
    html = report.read_text()
    assert "<script>alert" not in html and "</script><script>alert" not in html
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in html  # in the embedded JSON, escaped
    res = browser.open(report.as_uri(), CHECK)
    _assert_clean(res)
    v = res.value
    assert evil in v["text"] and evil in v["title"]
    assert "</script><script>alert(2)</script>' & <b>x</b>" in v["text"]
    assert v["alerts"] == 0
    assert v["scripts"] == ["application/json", "js", "js"]
    _assert_drawn(v)


def test_both_protocols_side_by_side(run_dir: Path, browser: Browser, tmp_path: Path):
    both = tmp_path / "both"
    both.mkdir()
    _copy(run_dir, both / "stepwise")
    gl = _copy(run_dir, both / "global")
    m = json.loads((gl / "metrics.json").read_text())
    for name in ("decomp_lstm", "decomp_feca_lstm", "hybrid_feca_lstm", "ensemble"):  # models fed components
        mm = m["models"][name]
        mm["nse"], mm["rmse"], mm["skill"] = 0.97, mm["rmse"] * 0.2, 0.8
    _edit_metrics(gl, protocol="global", leaky=True, models=m["models"],
                  protocol_label="global (LEAKY: the whole series is decomposed before the split)")
    report = build_report(both)
    assert report == both / "report.html"
    res = browser.open(report.as_uri(), CHECK)
    _assert_clean(res)
    v = res.value
    assert [s["n"] for s in v["sections"]] == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
    _assert_drawn(v)
    assert "protocols" in v["expected"]
    text = v["text"]
    assert "LEAKY: for reproduction only" in text
    honest = json.loads((both / "stepwise" / "metrics.json").read_text())["models"]
    chart = {c["id"]: c for c in _embedded(report.read_text())["charts"]}["protocols"]
    main = chart["cats"].index("decomp. FECA-LSTM")
    assert chart["ys"][0][main] == pytest.approx(honest["decomp_feca_lstm"]["nse"], rel=1e-5)
    assert chart["ys"][1][main] == pytest.approx(0.97)
    ens = chart["cats"].index("ensemble")
    assert chart["ys"][0][ens] == pytest.approx(honest["ensemble"]["nse"], rel=1e-5)
    assert f"{ENSEMBLE_LABEL}: NSE {_fmt(honest['ensemble']['nse'], 3)} honest against 0.97 leaky" in text
    assert not v["banner"]  # the report covers the honest run; the leaky one is labelled in section 8


# --------------------------------------------------------------------------- without a browser


def test_global_run_carries_the_leaky_banner(run_dir: Path, tmp_path: Path):
    folder = _copy(run_dir, tmp_path / "g")
    _edit_metrics(folder, protocol="global", leaky=True, protocol_label="global (LEAKY)")
    html = build_report(folder).read_text()
    assert 'id="leaky-banner"' in html and "LEAKY: for reproduction only" in html
    assert "(LEAKY)</title>" in html


def test_missing_run_is_an_input_error(tmp_path: Path):
    with pytest.raises(InputError, match="metrics.json"):
        build_report(tmp_path)


def test_json_for_script_cannot_close_the_script_element():
    text = json_for_script({"s": "</script><!-- & \u2028", "x": [float("nan"), 1.5]})
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == {"s": "</script><!-- & \u2028", "x": [None, 1.5]}


def test_minmax_decimation_keeps_spikes_and_gaps():
    rng = np.random.default_rng(0)
    y = rng.normal(size=20_000)
    y[12_345] = 50.0
    y[7_000:7_010] = np.nan
    idx = minmax_indices(y, 2000)
    assert idx.size <= 2000 + 1000 + 2
    assert 12_345 in idx and 0 in idx and 19_999 in idx
    assert np.isnan(y[idx]).any()
    assert np.nanmax(y[idx]) == 50.0 and np.nanmin(y[idx]) == np.nanmin(y)


def _synthetic_year(h: int = 6) -> RunFiles:
    """A year of hourly data in the shape of a run folder: 8,784 grid points, 8,784 test origins
    x H steps x every model's forecasts, the ensemble's weights of its 10 members at 9,584
    validation and test origins, 5 components, 11 training histories of 200 epochs."""
    rng = np.random.default_rng(1)
    n = 8784
    times = pd.date_range("2012-01-01", periods=n + h, freq="1h", tz="-05:00")
    iso = np.asarray([t.isoformat() for t in times])
    y = 7 + 2 * np.sin(np.arange(n + h) * 2 * np.pi / 24) + rng.normal(0, 0.3, n + h)
    removed = np.where(rng.random(n) < 0.01, "out_of_range", "")
    series = pd.DataFrame({"time": iso[:n], "raw": y[:n], "value": np.where(removed == "", y[:n], np.nan),
                           "observed": removed == "", "interpolated": rng.random(n) < 0.01, "removed": removed})
    comps = {f"imf{k}": y[:n] / 5 for k in range(1, 5)}
    components = pd.DataFrame({"time": iso[:n], "raw": y[:n], **comps, "residual": y[:n] - 4 * y[:n] / 5})
    origins = np.arange(n)
    steps = np.arange(1, h + 1)
    pos = (origins[:, None] + steps[None, :]).ravel()
    frames = [pd.DataFrame({"model": name, "issued_at": np.repeat(iso[origins], h), "target_time": iso[pos],
                            "step": np.tile(steps, n), "forecast": y[pos] + rng.normal(0, 0.5, pos.size),
                            "observed": y[pos]}) for name in MODEL_NAMES]
    forecasts = pd.concat(frames, ignore_index=True)
    per = {k: list(rng.random(h)) for k in ("rmse", "mae", "mape", "r2", "nse", "kge", "skill")}
    models = {name: {"rmse": 0.5, "mae": 0.4, "mape": 6.0, "r2": 0.9, "nse": 0.9, "kge": 0.9, "skill": 0.1,
                     "n_points": n, "per_step": per} for name in MODEL_NAMES}
    hist = {"epochs_run": 200, "best_epoch": 150, "seconds": 100.0, "n_train": 6000, "n_val": 800,
            "loss": list(rng.random(200)), "val_loss": list(rng.random(200))}
    training = {name: hist for name in ["lstm", *(f"{p}_{c}" for p in ("feca", "plain") for c in comps),
                                        "feca_residual", "plain_residual"]}
    stat = pd.DataFrame([{"series": s, "test": t, "statistic": -3.0, "pvalue": 0.01, "lags": 10, "verdict": "stationary",
                          "joint_verdict": "stationary"} for s in ["raw", *comps, "residual"] for t in ("ADF", "KPSS")])
    metrics = {"dataset": "year.csv", "dataset_sha256": "0" * 64, "target": "DO_obs", "unit": "mg/L", "site": "s",
               "freq": "1h", "protocol": "stepwise", "protocol_label": "stepwise", "leaky": False, "method": "vmd",
               "modes": 4, "components": [*comps, "residual"], "decomposer_params": {}, "window": 48,
               "decomp_window": 720, "horizon": h, "seed": 0, "epochs": 200, "n_train": 6000, "n_val": 800,
               "n_test": n, "periods": {"train_start": iso[0], "val_start": iso[6000], "test_start": iso[6800],
                                        "end": iso[n - 1]},
               "qc": {"grid_points": n, "rules": ["r"]}, "baselines": {"seasonal_period": 24, "arima_order": [2, 1, 2]},
               "models": models, "main_model": "decomp_feca_lstm", "training": training, "timings_s": {"total": 1.0},
               "command": "wq evaluate", "versions": {}}
    members = list(MEMBER_NAMES)
    w = rng.dirichlet(np.full(len(members), 0.3), size=n + 800)
    weights = pd.DataFrame(w, columns=members)
    weights.insert(0, "period", ["validation"] * 800 + ["test"] * n)
    weights.insert(0, "issued_at", [t.isoformat() for t in pd.date_range(times[0] - pd.Timedelta(hours=800),
                                                                         periods=n + 800, freq="1h")])
    weights.insert(0, "fold", 1)
    metrics["main_model"] = "ensemble"
    metrics["ensemble"] = {"rule": "softmax", "half_life_steps": 72.0, "eta": 10.0, "min_records": 12.0,
                           "members": members, "mean_weight": dict(zip(members, w[800:].mean(axis=0))),
                           "dominant_share": {c: 0.1 for c in members}}
    return RunFiles(path=Path("."), metrics=metrics, forecasts=forecasts, stationarity=stat, series=series,
                    components=components, weights=weights)


def test_a_year_of_hourly_data_stays_under_5_mb():
    run = _synthetic_year()
    ctx = build_context(run)
    html = render_html(ctx)
    size = len(html.encode("utf-8"))
    assert size < BUDGET, f"report of a year of hourly data is {size / 1e6:.2f} MB"
    specs = {c["id"]: c for c in ctx["charts"]}
    assert len(specs["qc"]["x"]) <= 4 * 2000  # value + raw + markers, min/max decimated
    assert all(len(specs[f"decomp-{i}"]["x"]) <= 2002 for i in range(6))
    assert len(specs["forecast"]["x"]) == 8784  # the test period stays at full resolution
    wc = specs["weights-1"]
    assert wc["decimated"] and len(wc["x"]) < 9584 and wc["n_source"] == 9584  # min/max decimated
    assert len(ctx["ensemble"]["dominance"]) >= 40  # about one row per week: the dominant member of noise changes


# --------------------------------------------------------------------------- the ensemble and the folds


def _weights(folder: Path) -> tuple[dict, pd.DataFrame]:
    return json.loads((folder / "metrics.json").read_text()), pd.read_csv(folder / "weights.csv")


def _check_weight_chart(spec: dict, w: pd.DataFrame, members: list[str], every: pd.DataFrame | None = None) -> None:
    """One series per member drawn on its own, plus one summing the members that never weigh more
    than an equal share in any fold (``every``: all folds' rows); every value is the weights.csv
    value at that origin."""
    every = w if every is None else every
    assert spec["x"] == parse_times(w["issued_at"]).seconds.tolist()
    covered = [c for s in spec["series"] for c in s["members"]]
    assert sorted(covered) == sorted(members) and len(covered) == len(set(covered))
    equal_share = 1 / len(members)
    for s, ys in zip(spec["series"], spec["ys"]):
        if len(s["members"]) == 1:
            (c,) = s["members"]
            assert s["label"] == MODEL_LABELS[c] and s["color"] == MODEL_COLORS[c]
            assert every[c].max() > equal_share + 1e-6
            expected = w[c].to_numpy(float)
        else:
            assert s["label"].startswith(f"others ({len(s['members'])} members")
            assert (every[s["members"]].max() <= equal_share + 1e-6).all()
            expected = w[s["members"]].sum(axis=1).to_numpy(float)
        np.testing.assert_allclose(np.asarray(ys, float), expected, rtol=1e-5, atol=1e-9)


def test_weights_chart_has_one_series_per_member(run_dir: Path, browser: Browser):
    m, w = _weights(run_dir)
    members = m["ensemble"]["members"]
    assert members == list(MEMBER_NAMES) and [c for c in w.columns if c not in ("fold", "issued_at", "period")] == members
    report = build_report(run_dir)
    specs = {c["id"]: c for c in _embedded(report.read_text())["charts"]}
    assert [k for k in specs if k.startswith("weights-")] == ["weights-1"]
    spec = specs["weights-1"]
    _check_weight_chart(spec, w, members)
    assert sum(len(s["members"]) == 1 for s in spec["series"]) >= 2  # the real run: several members earn weight
    assert spec["yrange"] == [0, 1]
    # the bands are this fold's validation (warm-up) and test periods
    p = m["folds"][0]["periods"]
    t = parse_times([p["val_start"], p["test_start"], p["test_end"]]).seconds
    assert [(b["from"], b["to"]) for b in spec["bands"]] == [(t[0], t[1]), (t[1], t[2] + 3600)]
    assert (w["period"] == "validation").sum() == m["n_val"] and (w["period"] == "test").sum() == m["n_test"]

    res = browser.open(report.as_uri(), CHECK)
    _assert_clean(res)
    v = res.value
    _assert_drawn(v)
    text = " ".join(v["text"].split())
    assert ("the ensemble's weights come only from the errors of earlier forecasts whose targets had been "
            "observed by that origin") in text
    assert f"Rule: {m['ensemble']['rule'].replace('stack', 'the convex combination')}" in text
    assert f"half-life {_fmt(m['ensemble']['half_life_steps'])} grid steps (60 d)" in text
    # mean test weight and dominant share of every member, as metrics.json has them
    rows = {r[0]: r for r in v["tables"]["members-table"]}
    assert len(rows) == len(members)
    for c in members:
        r = rows[MODEL_LABELS[c]]
        assert r[1] == _pct(m["ensemble"]["mean_weight"][c]) and r[2] == _pct(m["ensemble"]["dominant_share"][c])
        assert r[3] == _fmt(m["models"][c]["rmse"])
    # which member dominated when: every row checked against weights.csv
    _check_dominance(v["tables"]["dominance-table"], w, several_folds=False)


def _check_dominance(rows: list[list[str]], w: pd.DataFrame, several_folds: bool) -> None:
    """Each row of the dominance table against weights.csv: the origins it spans, that the named
    member has the largest mean weight in each calendar week of the row (validation and test
    apart) and its mean weight over the row; consecutive rows never name the same member."""
    members = [c for c in w.columns if c not in ("fold", "issued_at", "period")]
    by_label = {MODEL_LABELS[c]: c for c in members}
    t = parse_times(w["issued_at"]).seconds
    week = pd.to_datetime(t, unit="s").to_period("W").astype(str).to_numpy()
    done = {k: 0 for k in w["fold"].unique()}
    prev = None
    for r in rows:
        fold = int(r[0]) if several_folds else 1
        r = r[1:] if several_folds else r
        period, n_weeks, n_origins, label, weight = r[0], int(r[3]), int(r[4].replace(",", "")), r[5], r[6]
        in_fold = np.flatnonzero(w["fold"].to_numpy() == fold)
        sel = in_fold[done[fold]:done[fold] + n_origins]
        done[fold] += n_origins
        sub = w.iloc[sel]
        assert (sub["period"] == period).all(), r
        assert len(set(week[sel])) == n_weeks, r
        if label.startswith("none: all"):
            cand = members
        else:
            cand = [by_label[x] for x in label.removesuffix(" (equal weights)").split(" = ")]
        for wk in set(week[sel]):
            means = sub[week[sel] == wk][members].mean()
            assert all(means[c] >= means.max() - 1e-9 for c in cand), (r, wk, means.idxmax())
        assert weight == _fmt(sub[cand[0]].mean(), 3), r
        assert (fold, period, label) != prev, "consecutive weeks with the same dominant member must be merged"
        prev = (fold, period, label)
    assert done == {k: int((w["fold"] == k).sum()) for k in done}, "the rows cover every origin"


@pytest.fixture(scope="module")
def folds_dir(two_fold_run: Path) -> Path:
    return two_fold_run


def test_every_fold_in_the_report(folds_dir: Path, browser: Browser):
    m, w = _weights(folds_dir)
    assert m["n_folds"] == 2 and len(m["folds"]) == 2 and m["main_model"] == "ensemble"
    report = build_report(folds_dir)
    html = report.read_text()
    specs = {c["id"]: c for c in _embedded(html)["charts"]}
    res = browser.open(report.as_uri(), CHECK)
    _assert_clean(res)
    v = res.value
    _assert_drawn(v)
    assert [s["n"] for s in v["sections"]] == ["1", "2", "3", "4", "5", "6", "7", "8", "10"]

    # the per-fold table: one row per fold, then the pooled row, each from metrics.json
    rows = v["tables"]["folds-table"]
    assert [r[0] for r in rows] == ["1", "2", "pooled"]
    main = m["main_model"]
    for r, (fold, models, n_test, start, end) in zip(rows, [
            *[(f["fold"], f["models"], f["n_test"], f["periods"]["test_start"], f["periods"]["test_end"])
              for f in m["folds"]],
            ("pooled", m["models"], m["n_test"], m["folds"][0]["periods"]["test_start"],
             m["folds"][-1]["periods"]["test_end"])]):
        mm = models[main]
        best = mm["best_baseline"]
        # the best baseline is that fold's lowest RMSE among the baselines and the plain LSTM
        assert best == min(SKILL_REFERENCES, key=lambda n: models[n]["rmse"])
        ratio = mm["rmse"] / models[best]["rmse"]
        assert mm["mse_skill_best_baseline"] == pytest.approx(1 - ratio ** 2, rel=1e-6)
        assert r == [str(fold), f"{time_text(start)} to {time_text(end)}", _fmt(n_test), _fmt(mm["n_points"]),
                     _fmt(mm["rmse"]), MODEL_LABELS[best], _fmt(models[best]["rmse"]), _fmt(ratio, 3),
                     _fmt(mm["mse_skill_best_baseline"], 3, signed=True)], (fold, r)
    assert sum(f["n_test"] for f in m["folds"]) == m["n_test"]
    assert m["folds"][0]["models"][main]["rmse"] != m["folds"][1]["models"][main]["rmse"]

    # the bands of the time charts cover every fold's validation and test period
    qc = specs["qc"]["bands"]
    assert [b["label"] for b in qc] == ["validation 1", "test 1", "validation 2", "test 2"]
    for k, f in enumerate(m["folds"]):
        p = f["periods"]
        t = parse_times([p["val_start"], p["test_start"], p["test_end"]]).seconds
        assert (qc[2 * k]["from"], qc[2 * k]["to"]) == (t[0], t[1])
        assert (qc[2 * k + 1]["from"], qc[2 * k + 1]["to"]) == (t[1], t[2] + 3600)
    assert qc[1]["to"] == qc[3]["from"], "the test periods of consecutive folds meet"
    assert qc[1]["from"] < qc[2]["from"] < qc[2]["to"] <= qc[1]["to"], "fold 2 validates inside fold 1's test period"
    fc = specs["forecast"]
    assert [b["label"] for b in fc["bands"]] == ["test 1", "test 2"]
    assert len(fc["x"]) == m["n_test"]
    x = np.asarray(fc["x"])
    inside = np.zeros(x.size, dtype=bool)
    for b in fc["bands"]:
        inside |= (x >= b["from"]) & (x <= b["to"] + 3 * 3600)  # target times run up to H steps past the period
    assert inside.all()

    # one weights chart per fold, each with one series per member (or summed "others")
    assert sorted(k for k in specs if k.startswith("weights-")) == ["weights-1", "weights-2"]
    for f in m["folds"]:
        wf = w[w["fold"] == f["fold"]].reset_index(drop=True)
        assert len(wf) == f["n_val"] + f["n_test"]
        _check_weight_chart(specs[f"weights-{f['fold']}"], wf, m["ensemble"]["members"], w)
        t = parse_times([f["periods"]["val_start"], f["periods"]["test_end"]]).seconds
        xs = specs[f"weights-{f['fold']}"]["x"]
        assert t[0] <= xs[0] and xs[-1] <= t[1]
    _check_dominance(v["tables"]["dominance-table"], w, several_folds=True)
    rows = {r[0]: r for r in v["tables"]["members-table"]}
    for c in m["ensemble"]["members"]:  # per-fold mean weights beside the pooled one
        r = rows[MODEL_LABELS[c]]
        assert r[3:5] == [_pct(f["ensemble"]["mean_weight"][c]) for f in m["folds"]]
    text = " ".join(v["text"].split())
    assert "pooled over the test periods of all 2 folds" in text
    assert "each fold starts afresh at its own validation period" in text


def test_flow_headline_and_summary_carry_the_folds(folds_dir: Path, run_dir: Path, tmp_path: Path):
    from flows.evaluate import headline_markdown
    from wq_pipeline.evaluation.summary import COLUMNS, fold_ratios, summary_html, summary_markdown, summary_table

    m = json.loads((folds_dir / "metrics.json").read_text())
    one = json.loads((run_dir / "metrics.json").read_text())
    md = headline_markdown(m)
    e = m["models"]["ensemble"]
    assert f"| **ensemble** (main model) | {e['rmse']:.3f} |" in md
    for f in m["folds"]:
        fm = f["models"]
        best = fm["ensemble"]["best_baseline"]
        assert (f"- fold {f['fold']} (test {f['periods']['test_start']} .. {f['periods']['test_end']}, "
                f"{f['n_test']} origins): ensemble RMSE {fm['ensemble']['rmse']:.3f}; best baseline {best} RMSE "
                f"{fm[best]['rmse']:.3f}") in md
    assert "- fold" not in headline_markdown(one) and "| **ensemble** (main model) |" in headline_markdown(one)

    table = summary_table({"DO_obs": {"stepwise": m}, "Temp": {"stepwise": one}})
    assert list(table.columns[:13]) == list(COLUMNS[:13])  # the old columns, in their old places
    csv = tmp_path / "summary.csv"
    table.to_csv(csv, index=False)
    back = pd.read_csv(csv)
    n = len(MODEL_NAMES)
    assert len(back) == n * 3 + n  # pooled + 2 folds for the two-fold run, pooled only for the one-fold run
    for series, mm in (("DO_obs", m), ("Temp", one)):
        pooled = back[(back.series == series) & (back.fold.astype(str) == "pooled")].set_index("model")
        assert len(pooled) == n
        for name in MODEL_NAMES:
            assert pooled.loc[name, "rmse"] == pytest.approx(mm["models"][name]["rmse"], rel=1e-9)
        assert pooled["main"].to_dict() == {name: name == "ensemble" for name in pooled.index}
        for name in MODEL_NAMES:  # the quantile scores beside the point scores
            q = mm["probabilistic"]["models"][name]
            assert pooled.loc[name, "crps"] == pytest.approx(q["crps"], rel=1e-9)
            assert pooled.loc[name, "coverage_90"] == pytest.approx(q["intervals"]["90"]["coverage"], rel=1e-9)
    for f in m["folds"]:
        rows = back[(back.series == "DO_obs") & (back.fold.astype(str) == str(f["fold"]))].set_index("model")
        for name in MODEL_NAMES:
            assert rows.loc[name, "rmse"] == pytest.approx(f["models"][name]["rmse"], rel=1e-9)
            assert rows.loc[name, "best_baseline"] == f["models"][name]["best_baseline"]
    ratios = fold_ratios(back)
    assert ratios[["series", "fold"]].values.tolist() == [["DO_obs", "pooled"], ["DO_obs", "1"], ["DO_obs", "2"],
                                                           ["Temp", "pooled"]]
    for r, models in zip(ratios.itertuples(), [m["models"], *(f["models"] for f in m["folds"]), one["models"]]):
        best = models["ensemble"]["best_baseline"]
        assert r.best_baseline == best
        assert r.ratio == pytest.approx(models["ensemble"]["rmse"] / models[best]["rmse"], rel=1e-9)
    text = summary_markdown(back)
    assert f"| DO_obs | stepwise | 2 | ensemble | {m['folds'][1]['models']['ensemble']['rmse']:.3f} |" in text
    assert text.count("| DO_obs | stepwise |") == 4  # the pooled row of every model, then 3 fold lines
    page = summary_html(back)
    assert f"<td>{ratios.iloc[1].ratio:.3f}</td>" in page or f"<td class=beats>{ratios.iloc[1].ratio:.3f}</td>" in page


def test_runs_without_weights_or_ensemble_still_build(run_dir: Path, browser: Browser, tmp_path: Path):
    # weights.csv missing: the section stays with metrics.json's numbers and says what is missing
    no_w = _copy(run_dir, tmp_path / "no_weights")
    (no_w / "weights.csv").unlink()
    html = build_report(no_w).read_text()
    assert "This run folder has no weights.csv" in html and 'id="members-table"' in html
    assert not [c for c in _embedded(html)["charts"] if c["id"].startswith("weights-")]

    # a run from before the ensemble and the folds: the hybrid was the main model
    old = _copy(run_dir, tmp_path / "old")
    (old / "weights.csv").unlink()
    m = json.loads((old / "metrics.json").read_text())
    for key in ("ensemble", "folds", "n_folds"):
        m.pop(key)
    m["models"].pop("ensemble")
    m["main_model"] = "hybrid_feca_lstm"
    (old / "metrics.json").write_text(json.dumps(m))
    f = pd.read_csv(old / "forecasts.csv")
    f[f.model != "ensemble"].drop(columns="fold").to_csv(old / "forecasts.csv", index=False)
    report = build_report(old)
    res = browser.open(report.as_uri(), CHECK)
    _assert_clean(res)
    v = res.value
    assert [s["n"] for s in v["sections"]] == ["1", "2", "3", "4", "5", "7", "8", "10"]
    _assert_drawn(v)
    text = " ".join(v["text"].split())
    assert "the main model (hybrid: harmonic + AR, corrected by a FECA-LSTM) has a lower RMSE" in text
    assert ENSEMBLE_LABEL not in text and "How the ensemble weighs" not in text
    assert "folds-table" not in v["tables"]
    assert [b["label"] for b in {c["id"]: c for c in _embedded(report.read_text())["charts"]}["qc"]["bands"]] == \
        ["validation", "test"]


def test_lines_break_across_a_stretch_without_forecasts():
    """Daily target times with a five-month hole (an ice or outage season): the chart gets a NaN
    point inside the hole, both sides kept, even when decimation picked neither."""
    days = pd.date_range("2022-01-01", "2022-05-10", freq="1D").append(pd.date_range("2022-11-01", "2022-12-20"))
    sec = parse_times([d.isoformat() for d in days]).seconds
    y = np.arange(days.size, dtype=float)
    idx = np.array([0, 50, days.size - 1])  # decimated: neither side of the hole
    xs, (ys,) = gap_broken(sec, idx, [y])
    last_before = int(np.flatnonzero(days == pd.Timestamp("2022-05-10"))[0])
    assert np.isnan(ys).sum() == 1
    k = int(np.flatnonzero(np.isnan(ys))[0])
    assert ys[k - 1] == last_before and ys[k + 1] == last_before + 1  # the hole's two sides, around the break
    assert sec[last_before] < xs[k] < sec[last_before + 1]
    plain = np.arange(days.size)[:40]  # no hole in the first 40 days: nothing inserted
    xs2, (ys2,) = gap_broken(sec[:40], plain, [y[:40]])
    assert xs2 == sec[:40].tolist() and not np.isnan(ys2).any()
