"""The HTML evaluation report: drawn in a real headless Chromium, escaped, small, both protocols."""

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
from wq_pipeline.pipeline import MODEL_NAMES
from wq_pipeline.report import build_context, build_report, json_for_script, render_html, RunFiles
from wq_pipeline.report.figures import minmax_indices

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
  const sections = [...document.querySelectorAll('[data-section]')].map(s => ({
    n: s.dataset.section, id: s.id, heading: (s.querySelector('h2') || {}).textContent || ''}));
  return {sections, charts, expected: r.charts || [], rendered: r.rendered || [], errors: r.errors || [],
          title: document.title, text: document.body.textContent,
          scripts: [...document.scripts].map(s => s.type || 'js'),
          alerts: [...document.scripts].filter(s => s.type !== 'application/json' && /alert\(/.test(s.textContent)).length,
          banner: !!document.getElementById('leaky-banner')};
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
    assert [s["n"] for s in v["sections"]] == ["1", "2", "3", "4", "5", "6", "7", "9"]
    assert all(s["heading"].strip() for s in v["sections"])
    _assert_drawn(v)
    ids = set(v["expected"])
    m = json.loads((run_dir / "metrics.json").read_text())
    n_comp = len(m["components"])
    assert {"qc", "spectrum", "forecast", "skill", "resid-hist", "resid-acf"} <= ids
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
    for name in ("decomp_lstm", "decomp_feca_lstm", "hybrid_feca_lstm"):  # what leakage does to models fed components
        mm = m["models"][name]
        mm["nse"], mm["rmse"], mm["skill"] = 0.97, mm["rmse"] * 0.2, 0.8
    _edit_metrics(gl, protocol="global", leaky=True, models=m["models"],
                  protocol_label="global (LEAKY: the whole series is decomposed before the split)")
    report = build_report(both)
    assert report == both / "report.html"
    res = browser.open(report.as_uri(), CHECK)
    _assert_clean(res)
    v = res.value
    assert [s["n"] for s in v["sections"]] == ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
    _assert_drawn(v)
    assert "protocols" in v["expected"]
    text = v["text"]
    assert "LEAKY: for reproduction only" in text
    honest = json.loads((both / "stepwise" / "metrics.json").read_text())["models"]
    chart = {c["id"]: c for c in _embedded(report.read_text())["charts"]}["protocols"]
    main = chart["cats"].index("decomp. FECA-LSTM")
    assert chart["ys"][0][main] == pytest.approx(honest["decomp_feca_lstm"]["nse"], rel=1e-5)
    assert chart["ys"][1][main] == pytest.approx(0.97)
    assert "against 0.97 leaky" in text
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
    x H steps x 6 models of forecasts, 5 components, 11 training histories of 200 epochs."""
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
    return RunFiles(path=Path("."), metrics=metrics, forecasts=forecasts, stationarity=stat, series=series,
                    components=components)


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
