"""Quality control: duplicates, NERRS flags, physical ranges, causal spike guard, regular grid, gaps.

Order of operations in :func:`run_qc` (all on the rows of one site):

1. stable sort by time (file order kept among equal timestamps);
2. exact duplicate rows (same time, every cell equal) dropped and counted;
3. conflicting duplicates (same time, some cell differs) counted; rule ``"last"`` keeps the
   last row in file order (before QC), rule ``"mean"`` averages the QC-passed values (after 4-5);
4. NERRS flags (``f_<var>``, any case) applied per reading: codes -5, -4, -3 (rejected /
   outside sensor range), -2 (missing), -1 (not collected) -> NaN; ``<1>`` (suspect) -> NaN
   only with ``drop_suspect``;
5. physical ranges (inclusive, by column name) applied per reading -> NaN;
6. causal spike guard (:mod:`wq_pipeline.data.spikes`) applied per reading, once timestamps are
   unique and sorted (after 3), to the target and to every other variable column with a
   built-in default (dissolved oxygen, water temperature, pH, salinity) or a configured
   override: a reading whose jump from the last accepted reading is an outlier against the
   recent rates of change -> NaN (reason ``"spike"``). The decision at a reading uses only the
   readings up to it, so it never changes when later readings change;
7. regular grid at ``freq``: the value at grid time ``t`` is the MEAN of the readings in
   ``(t - freq, t]`` (bins closed on the right, labelled on the right). A grid value therefore
   never uses a reading taken after its own timestamp, which keeps forecasting leak-free.
   At the native step this simply places each reading on its grid point. Grid points are
   anchored at midnight of the first day and span from the first reading's bin to the last
   grid point not after the last reading (a trailing partial bin would end after the data);
8. runs of at most ``max_gap`` missing grid steps with values on both sides are linearly
   interpolated; longer runs stay NaN entirely; leading/trailing NaN are never filled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from wq_pipeline.config import QCConfig
from wq_pipeline.errors import InputError
from wq_pipeline.data.load import LoadedTable, find_column, first_non_numeric, read_context
from wq_pipeline.data.timestamps import row_ref
from wq_pipeline.data.spikes import column_params, describe, spike_guard

#: NERRS codes whose reading is always removed, and those counted as "rejected"
REMOVED_CODES = frozenset({-5, -4, -3, -2, -1})
REJECTED_CODES = frozenset({-5, -4, -3})
SUSPECT_CODE = 1

#: physical ranges (inclusive) by lower-case column name, in the column's units
PHYSICAL_RANGES: dict[str, tuple[float, float]] = {
    **{k: (0.0, 25.0) for k in ("do_mgl", "do_obs", "dissolved_oxygen", "do", "oxygen")},  # mg/L
    "do_pct": (0.0, 500.0),  # % saturation
    "ph": (0.0, 14.0),
    **{k: (-5.0, 45.0) for k in ("temp", "temperature", "watertemp")},  # degC (water)
    **{k: (0.0, 45.0) for k in ("sal", "salinity")},  # ppt / psu
    "spcond": (0.0, 100.0),  # mS/cm
    "specific_conductance": (0.0, 100000.0),  # uS/cm
    **{k: (0.0, 4000.0) for k in ("turb", "turbidity")},  # NTU / FNU
    "nitrate": (0.0, 1000.0),  # umol/L
}

#: units by lower-case column name (None when unknown)
UNITS: dict[str, str] = {
    **{k: "mg/L" for k in ("do_mgl", "do_obs", "dissolved_oxygen", "do", "oxygen")},
    "do_pct": "%",
    "ph": "pH",
    **{k: "degC" for k in ("temp", "temperature", "watertemp", "atemp")},
    "sal": "ppt",
    "salinity": "ppt",
    "spcond": "mS/cm",
    "specific_conductance": "uS/cm",
    "turb": "NTU",
    "turbidity": "FNU",
    "log_turbidity": "log(FNU)",
    "nitrate": "umol/L",
    "chlfluor": "ug/L",
    **{k: "m" for k in ("depth", "cdepth", "level", "clevel", "tide", "elevation")},
    "bp": "mb",
    "wspd": "m/s",
}

#: bookkeeping columns of CDMO exports that are numeric but not variables (lower-case)
METADATA_COLUMNS = frozenset({"isswmp", "historical", "provisionalplus", "f_record"})

_REASONS = ("", "spike", "out_of_range", "flag_suspect", "flag_rejected")  # index = priority


@dataclass
class StationSeries:
    """One station variable on a regular time grid after QC (all series share one index).

    - ``values``: target (unit ``unit``) after QC, short gaps interpolated, NaN where missing.
    - ``observed``: bool, True where a real (not interpolated) reading passed QC.
    - ``interpolated``: bool, True where a short gap was linearly filled.
    - ``raw``: target on the same grid before flag/range removal (bin means, for plots).
    - ``removed``: str, ``""`` or why the grid point lost its reading(s): ``"flag_rejected"``
      (any negative NERRS code), ``"flag_suspect"``, ``"out_of_range"``, ``"spike"`` (causal
      spike guard); with several, the first of these.
    - ``frame``: every numeric variable column of the site (target included) on the grid after
      flags/ranges/spike guard, with the same short-gap interpolation; columns empty after QC
      are dropped.
    - ``frame_observed``: bool frame like ``frame``, True where the grid value is a real reading
      that passed QC (not interpolated); covariates use it to stay causal.
    - ``freq``: grid step as a pandas alias (e.g. ``"1h"``); ``summary``: JSON-serialisable counts
      and ``rules`` (list of str).
    """

    values: pd.Series
    observed: pd.Series
    interpolated: pd.Series
    raw: pd.Series
    removed: pd.Series
    frame: pd.DataFrame
    frame_observed: pd.DataFrame
    freq: str
    site: str | None
    target: str
    path: Path
    unit: str | None
    summary: dict


# --------------------------------------------------------------------------- helpers


def freq_alias(step: pd.Timedelta) -> str:
    """Fixed step -> compact pandas alias: '1D', '1h', '15min', '30s', else nanoseconds."""
    ns = int(step.value)
    for unit, size in (("D", 86_400_000_000_000), ("h", 3_600_000_000_000), ("min", 60_000_000_000),
                       ("s", 1_000_000_000), ("ms", 1_000_000), ("us", 1_000), ("ns", 1)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"  # pragma: no cover


def flag_codes(col: pd.Series) -> np.ndarray:
    """NERRS flag cells -> float codes (NaN where blank / no code).

    Reads the leading integer of ``'<0> '``, ``'<1> [SDO] (CCU)'``, ``'<-3>'`` (or a bare ``-3``).
    """
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=float)
    codes, uniq = pd.factorize(col.to_numpy(dtype=object), use_na_sentinel=False)
    ext = pd.Series(uniq, dtype=object).astype(str).str.extract(r"^\s*<?\s*(-?\d+)\s*(?:>|$|\s)", expand=False)
    return pd.to_numeric(ext, errors="coerce").to_numpy(dtype=float)[codes]


def short_gap_mask(missing: np.ndarray, max_gap: int) -> np.ndarray:
    """Bool mask of positions in runs of ``missing`` of length <= max_gap with data on both sides."""
    n = len(missing)
    out = np.zeros(n, dtype=bool)
    if max_gap <= 0 or n == 0 or not missing.any():
        return out
    for start, end in _runs(missing):
        if start > 0 and end < n and end - start <= max_gap:
            out[start:end] = True
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end_exclusive) of each run of True."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def fill_short_gaps(v: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear fill of short inner gaps of a regular-grid array -> (filled copy, filled mask)."""
    miss = np.isnan(v)
    fill = short_gap_mask(miss, max_gap)
    out = v.copy()
    if fill.any():
        x = np.arange(len(v))
        out[fill] = np.interp(x[fill], x[~miss], v[~miss])
    return out, fill


def _longest_run(mask: np.ndarray) -> int:
    runs = _runs(mask)
    return max((e - s for s, e in runs), default=0)


# --------------------------------------------------------------------------- main


def flag_columns(columns: list[str]) -> dict[str, str]:
    """``{variable: its NERRS flag column}`` (``temp`` -> ``f_temp``, any case)."""
    lower = {c.lower(): c for c in columns}
    out: dict[str, str] = {}
    for c in columns:
        f = lower.get("f_" + c.lower())
        if f is not None and f != c:
            out[c] = f
    return out


def variable_columns(table: LoadedTable) -> list[str]:
    """The numeric measurement columns of a loaded table, in file order: not a flag column, not
    NERRS metadata, and not blank throughout (the candidates for ``--all-targets``)."""
    frame = table.frame
    flags = set(flag_columns(list(frame.columns)).values())
    return [c for c in frame.columns
            if pd.api.types.is_numeric_dtype(frame[c]) and c not in flags and c.lower() not in METADATA_COLUMNS
            and frame[c].notna().any()]


def run_qc(table: LoadedTable, target: str, *, freq: str | None, qc: QCConfig) -> StationSeries:
    """QC one site's rows and put ``target`` on a regular grid (see the module docstring).

    ``freq``: pandas fixed alias ("15min", "1h") or None to use the native step (the most
    common positive time step). Raises :class:`InputError` on an unknown / non-numeric /
    all-missing / constant target, or a ``freq`` finer than the native step.
    """
    name = table.name
    frame = table.frame
    columns = list(frame.columns)
    all_cols = [table.time_col] + ([table.site_col] if table.site_col else []) + columns

    # ---- target column
    if find_column([table.time_col], target) or (table.site_col and find_column([table.site_col], target)):
        raise InputError(f"{name}: column {target!r} is the time or site column; expected a numeric variable column")
    tcol = find_column(columns, target)
    if tcol is None:
        raise InputError(f"{name}: column {target!r} not found; available columns: {', '.join(all_cols)}"
                         + read_context(table.read_how, table.header))
    if not pd.api.types.is_numeric_dtype(frame[tcol]):
        pos = first_non_numeric(frame[tcol])
        assert pos is not None
        raise InputError(
            f"{name}: {row_ref(int(table.source_rows[pos]))}, column {tcol!r}: value {frame[tcol].iloc[pos]!r} "
            f"is not a number (expected a number or a blank / NA cell)"
            + (read_context(table.read_how, table.header) if "," in str(frame[tcol].iloc[pos]) else "")
        )

    # ---- variables and their flag columns
    flag_of = flag_columns(columns)
    variables = [c for c in columns if c == tcol or c in variable_columns(table)]

    # ---- 1. stable sort, 2. exact duplicates, 3. conflicting duplicates ("last")
    order = np.argsort(frame.index.asi8, kind="stable")
    df = frame.iloc[order]
    src = table.source_rows[order]
    exact = df.reset_index().duplicated(keep="first").to_numpy()
    df, src = df.loc[~exact], src[~exact]
    time_dup = df.index.duplicated(keep="first")
    n_conflict = int(time_dup.sum())
    if qc.duplicate_rule == "last" and n_conflict:
        keep = ~df.index.duplicated(keep="last")
        df, src = df.loc[keep], src[keep]

    # ---- 4. flags, 5. ranges (per reading)
    ranges = dict(PHYSICAL_RANGES)
    if qc.ranges:
        ranges.update({k.strip().lower(): (float(lo), float(hi)) for k, (lo, hi) in qc.ranges.items()})
    raw_target = df[tcol].to_numpy(dtype=float)
    if not np.isfinite(raw_target).any():
        raise InputError(f"{name}: column {tcol!r} has no values{_site_txt(table)} (every cell is blank / NA)")
    clean: dict[str, np.ndarray] = {}
    reason = np.zeros(len(df), dtype=np.int8)
    counts = dict(flagged_rejected=0, flagged_missing=0, flagged_suspect=0, out_of_range=0)
    rules: list[str] = []
    if table.read_how:
        rules.append(f"file read as {table.read_how}")
    if table.time_rule:
        rules.append(table.time_rule)
    rules.append(
        "rows sorted by time; exact duplicate rows dropped; rows sharing a timestamp with different "
        + ("values: the last row in file order kept" if qc.duplicate_rule == "last"
           else "values: QC-passed values averaged")
    )
    for c in variables:
        v = df[c].to_numpy(dtype=float, copy=True)
        present = ~np.isnan(v)
        is_t = c == tcol
        if c in flag_of:
            code = flag_codes(df[flag_of[c]])
            rej = present & np.isin(code, list(REJECTED_CODES))
            mis = present & np.isin(code, list(REMOVED_CODES - REJECTED_CODES))
            sus = present & (code == SUSPECT_CODE)
            drop = rej | mis | (sus if qc.drop_suspect else np.zeros_like(sus))
            if is_t:
                counts["flagged_rejected"] = int(rej.sum())
                counts["flagged_missing"] = int(mis.sum())
                counts["flagged_suspect"] = int(sus.sum())
                reason[rej | mis] = 4
                if qc.drop_suspect:
                    reason[sus & ~(rej | mis)] = 3
                rules.append(
                    f"NERRS flags from {flag_of[c]!r}: codes -5/-4/-3 (rejected), -2 (missing), -1 (not collected) "
                    f"removed; <1> suspect {'removed' if qc.drop_suspect else 'kept'}"
                )
            v[drop] = np.nan
        rng = ranges.get(c.lower())
        if rng is not None:
            lo, hi = rng
            with np.errstate(invalid="ignore"):
                oor = ~np.isnan(v) & ((v < lo) | (v > hi))
            if is_t:
                counts["out_of_range"] = int(oor.sum())
                reason[oor] = 2
                rules.append(f"physical range for {c!r}: [{lo:g}, {hi:g}] (inclusive); readings outside removed")
            v[oor] = np.nan
        elif is_t:
            rules.append(f"no physical range known for {c!r} (none applied)")
        clean[c] = v
    if tcol not in flag_of:
        rules.append(f"no flag column for {tcol!r} (no f_{tcol} column)")

    times = df.index
    cl = pd.DataFrame(clean, index=times)
    cl["__raw__"] = raw_target
    cl["__reason__"] = reason
    if qc.duplicate_rule == "mean" and n_conflict:
        agg = {c: "mean" for c in cl.columns}
        agg["__reason__"] = "max"
        cl = cl.groupby(level=0, sort=True).agg(agg)
        times = cl.index

    # ---- 6. causal spike guard (per reading; timestamps are unique and sorted here)
    spiked, spike_rule = _apply_spike_guard(cl, variables, tcol, qc)
    counts["spike_guarded"] = spiked.get(tcol, 0)
    rules.append(spike_rule)

    # ---- 7. regular grid
    t_ns = times.asi8
    uniq = np.unique(t_ns)
    if len(uniq) < 2:
        raise InputError(f"{name}: only one distinct timestamp{_site_txt(table)}; need at least two to build a time grid")
    steps = np.diff(uniq)
    vals_, cnts_ = np.unique(steps, return_counts=True)
    native = pd.Timedelta(int(vals_[np.argmax(cnts_)]), unit="ns")
    if freq is None:
        step = native
    else:
        try:
            step = pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
        except (ValueError, TypeError):
            raise InputError(
                f"{name}: freq {freq!r} is not a fixed-length pandas offset alias (expected e.g. '15min', '1h', '1D')"
            ) from None
        if step <= pd.Timedelta(0):
            raise InputError(f"{name}: freq {freq!r} must be a positive step (expected e.g. '15min', '1h')")
        if step < native:
            raise InputError(
                f"{name}: freq {freq!r} is finer than the native time step {freq_alias(native)} of the data; "
                f"expected a step >= {freq_alias(native)}"
            )
    step_ns = int(step.value)
    alias = freq_alias(step)
    first = times.min()
    origin = first.normalize() if first.tz is None else first.tz_localize(None).normalize().tz_localize(first.tz)
    origin_ns = int(origin.value)
    d = t_ns - origin_ns
    k = -((-d) // step_ns)  # ceil: reading at t belongs to the bin (label - step, label]
    k_min = int(k.min())
    k_max = int((int(uniq[-1]) - origin_ns) // step_ns)  # last label not after the last reading
    if k_max < k_min:
        raise InputError(
            f"{name}: the data span ({freq_alias(pd.Timedelta(int(uniq[-1] - uniq[0]), unit='ns'))}) "
            f"is shorter than one step of freq {alias}; expected a finer freq"
        )
    in_grid = k <= k_max
    beyond = int((~in_grid).sum())
    cl = cl.loc[in_grid]
    grouped = cl.groupby(k[in_grid])
    agg = {c: "mean" for c in cl.columns}
    agg["__reason__"] = "max"
    g = grouped.agg(agg).reindex(np.arange(k_min, k_max + 1))
    grid = pd.DatetimeIndex(origin_ns + np.arange(k_min, k_max + 1, dtype=np.int64) * step_ns, name="time")
    grid = grid.tz_localize("UTC").tz_convert(first.tz) if first.tz is not None else grid
    g.index = grid
    rules.append(
        f"regular grid every {alias} (native step {freq_alias(native)}): value at t = mean of readings in "
        f"(t - {alias}, t] (bins closed and labelled on the right, never using a reading after t)"
    )

    # ---- 8. gaps
    pre = g[tcol].to_numpy(dtype=float)
    observed = ~np.isnan(pre)
    if not observed.any():
        raise InputError(
            f"{name}: column {tcol!r}{_site_txt(table)}: every value was removed by QC "
            f"(flag-rejected {counts['flagged_rejected']}, flag-missing {counts['flagged_missing']}, "
            f"out of range {counts['out_of_range']}, spike-guarded {counts['spike_guarded']}); "
            f"expected some valid readings"
        )
    ov = pre[observed]
    if np.nanmax(ov) == np.nanmin(ov):
        raise InputError(
            f"{name}: column {tcol!r}{_site_txt(table)} is constant after QC (every value = {ov[0]:g}); "
            f"expected a varying series"
        )
    values, filled = fill_short_gaps(pre, qc.max_gap)
    rules.append(
        f"gaps of <= {qc.max_gap} grid steps with values on both sides linearly interpolated; "
        f"longer gaps and leading/trailing gaps left NaN"
    )

    cov: dict[str, np.ndarray] = {}
    cov_seen: dict[str, np.ndarray] = {}
    for c in variables:
        if c == tcol:
            cov[c], cov_seen[c] = values, observed
            continue
        col = g[c].to_numpy(dtype=float)
        if np.isnan(col).all():
            continue
        cov[c], cov_seen[c] = fill_short_gaps(col, qc.max_gap)[0], ~np.isnan(col)
    cov_frame = pd.DataFrame(cov, index=grid)

    raw = pd.Series(g["__raw__"].to_numpy(dtype=float), index=grid, name=tcol)
    rcode = g["__reason__"].fillna(0).to_numpy(dtype=int)
    lost = ~observed & ~np.isnan(raw.to_numpy())
    removed = pd.Series(np.where(lost, np.asarray(_REASONS, dtype=object)[rcode], ""), index=grid,
                        name="removed", dtype=object)
    missing = np.isnan(values)
    summary = {
        "rows_read": int(table.rows_read),
        "rows_site": int(len(frame)),
        "time_dropped": int(table.time_dropped),
        "timestamps": table.time_rule,
        "read_as": table.read_how,
        "duplicates_exact": int(exact.sum()),
        "duplicates_conflicting": n_conflict,
        "flagged_rejected": counts["flagged_rejected"],
        "flagged_missing": counts["flagged_missing"],
        "flagged_suspect": counts["flagged_suspect"],
        "out_of_range": counts["out_of_range"],
        "spike_guarded": counts["spike_guarded"],
        "spike_guarded_by_column": spiked,
        "rows_beyond_grid": beyond,
        "grid_points": int(len(grid)),
        "observed": int(observed.sum()),
        "interpolated": int(filled.sum()),
        "missing": int(missing.sum()),
        "longest_gap_steps": _longest_run(missing),
        "native_step": freq_alias(native),
        "freq": alias,
        "rules": rules,
    }
    return StationSeries(
        values=pd.Series(values, index=grid, name=tcol),
        observed=pd.Series(observed, index=grid, name="observed"),
        interpolated=pd.Series(filled, index=grid, name="interpolated"),
        raw=raw,
        removed=removed,
        frame=cov_frame,
        frame_observed=pd.DataFrame(cov_seen, index=grid),
        freq=alias,
        site=table.site,
        target=tcol,
        path=table.path,
        unit=UNITS.get(tcol.lower()),
        summary=summary,
    )


def _apply_spike_guard(cl: pd.DataFrame, variables: list[str], tcol: str, qc: QCConfig) -> tuple[dict[str, int], str]:
    """Run the causal spike guard on every guarded variable column of ``cl`` in place (guarded
    readings -> NaN; the target's ``__reason__`` -> "spike" unless it has a stronger reason).

    ``cl``: one row per reading, index unique and sorted. Returns ({column: readings guarded},
    rule text).
    """
    cfg = qc.spike_guard
    if not cfg.enabled:
        return {}, "causal spike guard off"
    times = cl.index.asi8
    counts: dict[str, int] = {}
    parts: list[str] = []
    for c in variables:
        params = column_params(c, cfg)
        if params is None:
            continue
        v = cl[c].to_numpy(dtype=float, copy=True)
        mask = spike_guard(times, v, params)
        counts[c] = int(mask.sum())
        parts.append(f"{describe(c, params)}: {counts[c]} removed")
        if mask.any():
            v[mask] = np.nan
            cl[c] = v
            if c == tcol:
                reason = cl["__reason__"].to_numpy(copy=True)
                reason[mask] = np.maximum(reason[mask], _REASONS.index("spike"))
                cl["__reason__"] = reason
    head = (
        f"causal spike guard (uses only readings up to each reading): a reading is removed when its jump "
        f"from the last accepted reading exceeds the column's floor and its rate of change deviates from "
        f"the median rate of the last {cfg.window} accepted readings by more than {cfg.threshold:g} robust "
        f"standard deviations (1.4826 x MAD), or exceeds the column's rate limit, and the same holds against the "
        f"accepted reading before (so one missed glitch does not get the readings after it removed); no decision "
        f"before {cfg.min_history} accepted readings; history restarts after a gap of more than "
        f"{cfg.reset_after_hours:g} h; after {cfg.max_run} consecutive removed readings the new level is accepted"
    )
    if tcol not in counts:
        parts.append(f"none for the target {tcol!r} (no default for this column; see spike_guard.columns)")
    return counts, head + "; " + ("; ".join(parts) if parts else "no guarded column")


def _site_txt(table: LoadedTable) -> str:
    return f" (site {table.site!r})" if table.site is not None else ""
