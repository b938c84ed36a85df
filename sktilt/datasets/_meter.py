"""Weekly hourly load curves from a user's smart-meter readings.

:func:`load_meter_curves` turns readings at any regular resolution that divides an hour
(CSV file or DataFrame, wide or long format) into complete local-clock weeks of 168 hourly
mean powers in kW, optionally summed over groups of meters. What it cannot honour
(unparseable timestamps, irregular sampling, negative or non-numeric values, no complete
week, ...) raises a ``ValueError`` that names the parameter or the data to fix.
"""

from __future__ import annotations

__all__ = ["load_meter_curves"]

import os
import warnings

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

_HOUR_NS = 3_600_000_000_000
_WEEK_HOURS = 168
_DAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_UNITS = {"kw": ("kW", 1.0, False), "w": ("W", 1e-3, False),
          "kwh": ("kWh", 1.0, True), "wh": ("Wh", 1e-3, True)}


def _read(path_or_frame) -> pd.DataFrame:
    if isinstance(path_or_frame, pd.DataFrame):
        return path_or_frame
    if isinstance(path_or_frame, (str, os.PathLike)):
        path = os.fspath(path_or_frame)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"path_or_frame: no such file {path!r}.")
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.readline()
        sep = ";" if head.count(";") > head.count(",") else ","  # European CSV exports
        return pd.read_csv(path, sep=sep)
    raise TypeError(f"path_or_frame must be a CSV path or a pandas DataFrame, got "
                    f"{type(path_or_frame).__name__}.")


def _parse_timestamps(raw, where: str, fmt: str | None) -> tuple[pd.DatetimeIndex, bool]:
    """Parse timestamps (and whether they mixed UTC offsets); errors name the fix."""
    if isinstance(raw, pd.DatetimeIndex):
        return raw, False
    s = pd.Series(np.asarray(raw, dtype=object) if isinstance(raw, pd.Index) else raw)
    if s.isna().any():
        raise ValueError(f"{where} has {int(s.isna().sum())} missing timestamps; drop those rows.")
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return pd.DatetimeIndex(s), False
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.infer_dtype(s) in (
            "integer", "floating", "mixed-integer-float", "boolean", "decimal"):
        raise ValueError(f"{where} holds numbers, not timestamps; convert them first, e.g. "
                         f"pd.to_datetime(values, unit='s'), or set timestamp_col.")
    attempts = [dict(format=fmt)] if fmt else [{}, dict(format="ISO8601"), dict(format="mixed")]
    for kwargs in attempts:
        try:
            return pd.DatetimeIndex(pd.to_datetime(s, **kwargs)), False
        except (ValueError, TypeError) as exc:
            if "utc=True" in str(exc):  # several UTC offsets: summer and winter time
                return pd.DatetimeIndex(pd.to_datetime(s, utc=True, **kwargs)), True
    try:
        bad = s[pd.isna(pd.to_datetime(s, errors="coerce", format=fmt or "mixed", utc=True))]
    except (ValueError, TypeError):
        bad = s
    example = bad.iloc[0] if len(bad) else s.iloc[0]
    raise ValueError(f"could not parse the timestamps in {where} (e.g. {example!r}); set "
                     f"timestamp_col if they are elsewhere, timestamp_format (e.g. "
                     f"'%d.%m.%Y %H:%M'), or pass a DataFrame with a DatetimeIndex.")


def _numeric(col: pd.Series, name) -> np.ndarray:
    """Readings as float64; empty cells are gaps, anything else non-numeric is an error."""
    if pd.api.types.is_bool_dtype(col.dtype) or not (
        pd.api.types.is_numeric_dtype(col.dtype) or col.dtype == object
        or pd.api.types.is_string_dtype(col.dtype)
    ):
        raise ValueError(f"meter {name!r} has non-numeric values (dtype {col.dtype}); "
                         f"drop non-meter columns or set timestamp_col/meter_col/value_col.")
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if not pd.api.types.is_numeric_dtype(col.dtype):
        text = col.astype(object).where(col.notna(), "").astype(str).str.strip()
        bad = np.isnan(values) & (text != "").to_numpy()
        if bad.any():
            raise ValueError(f"meter {name!r} has non-numeric values (e.g. "
                             f"{text[bad].iloc[0]!r}); fix them, or leave the cells empty to "
                             f"treat them as gaps.")
    finite = values[~np.isnan(values)]
    if (finite < 0).any():
        raise ValueError(f"meter {name!r} has negative readings (min {finite.min():g}); "
                         f"this loader takes consumption only: remove export/net-metering "
                         f"readings or clip them at 0 first.")
    return values


def _localize(ts: pd.DatetimeIndex, mixed: bool, tz, where: str) -> tuple[np.ndarray, object]:
    """UTC nanoseconds and the time zone of the local clock (None: naive fixed clock)."""
    if mixed and tz is None:
        raise ValueError(f"{where} carries several UTC offsets (summer/winter time?) but tz is "
                         f"None: pass tz='Europe/Paris' (your meters' IANA zone) so weeks follow "
                         f"the local clock, or tz='UTC'.")
    if ts.tz is None and tz is not None:
        try:  # naive local clock: the repeated autumn hour is resolved from the row order
            ts = ts.tz_localize(tz, ambiguous="infer", nonexistent="raise")
        except ValueError as exc:
            raise ValueError(f"{where}: naive local times are ambiguous or nonexistent around a "
                             f"daylight-saving change in tz={tz!r} ({exc}); give timestamps "
                             f"with UTC offsets or in UTC, in chronological order.") from None
    elif ts.tz is not None and tz is not None:
        ts = ts.tz_convert(tz)
    zone = ts.tz
    if zone is not None:
        ts = ts.tz_convert("UTC")
    return ts.as_unit("ns").asi8.copy(), zone


def _fill_short_gaps(v: np.ndarray, max_points: int) -> np.ndarray:
    """Linearly interpolate interior runs of at most ``max_points`` missing readings."""
    missing = np.isnan(v)
    if not missing.any() or max_points <= 0 or missing.all():
        return v
    edges = np.diff(np.concatenate([[0], missing.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    fill = (starts > 0) & (ends < v.size) & (ends - starts <= max_points)
    marks = np.zeros(v.size + 1, dtype=np.int64)
    np.add.at(marks, starts[fill], 1)
    np.add.at(marks, ends[fill], -1)
    mask = np.cumsum(marks[:-1]) > 0
    out = v.copy()
    valid = np.flatnonzero(~missing)
    out[mask] = np.interp(np.flatnonzero(mask), valid, v[valid])
    return out


def _meter_weeks(name, utc_ns, values, zone, *, scale, energy, label_end, max_gap_h, weekday):
    """Complete weeks of one meter: (week-start wall-clock hour numbers, (n, 168) kW)."""
    order = np.argsort(utc_ns, kind="stable")
    utc_ns, values = utc_ns[order], values[order]
    empty = (np.empty(0, np.int64), np.empty((0, _WEEK_HOURS)))
    if utc_ns.size < 2:
        return empty
    steps = np.diff(utc_ns)
    if (steps == 0).any():
        when = pd.Timestamp(utc_ns[np.argmax(steps == 0)], tz="UTC" if zone is not None else None)
        raise ValueError(f"meter {name!r} has duplicate timestamps (e.g. {when}); remove them, "
                         f"or pass tz= if they are local times repeated by a daylight-saving "
                         f"change.")
    step = int(steps.min())
    if step > _HOUR_NS or _HOUR_NS % step or (steps % step).any():
        raise ValueError(f"meter {name!r}: sampling is irregular or not a divisor of one hour "
                         f"(steps {pd.Timedelta(step)} to {pd.Timedelta(int(steps.max()))}); "
                         f"resample to a regular step of at most 1 h that divides an hour "
                         f"(e.g. 15 min) before loading.")
    if label_end:
        utc_ns = utc_ns - step
    n = int((utc_ns[-1] - utc_ns[0]) // step) + 1
    grid = np.full(n, np.nan)
    grid[(utc_ns - utc_ns[0]) // step] = values
    # kW throughout: energy per interval / interval length
    grid *= scale * (_HOUR_NS / step if energy else 1.0)
    grid = _fill_short_gaps(grid, int(np.floor(max_gap_h * _HOUR_NS / step + 1e-9)))

    # hourly means on the local wall clock: the doubled autumn hour averages its two real
    # hours; the hour skipped in spring is interpolated from its neighbours
    real = pd.DatetimeIndex(utc_ns[0] + step * np.arange(n, dtype=np.int64), tz="UTC")
    wall = real.tz_convert(zone).tz_localize(None) if zone is not None else real.tz_localize(None)
    label = wall.as_unit("ns").asi8 // _HOUR_NS
    h0 = int(label.min())
    rel = label - h0
    nh = int(rel.max()) + 1
    ok = ~np.isnan(grid)
    total = np.bincount(rel, minlength=nh)
    count = np.bincount(rel[ok], minlength=nh)
    sums = np.bincount(rel[ok], weights=grid[ok], minlength=nh)
    hourly = np.where((count == total) & (count >= _HOUR_NS // step), sums / np.maximum(count, 1),
                      np.nan)
    skipped = total == 0
    if skipped.any():
        present = np.flatnonzero(~skipped)
        hourly[skipped] = np.interp(np.flatnonzero(skipped), present, hourly[present])

    day0 = -(-h0 // 24)  # first midnight; 1970-01-01 (day 0) was a Thursday (weekday 3)
    first = (day0 + (weekday - (day0 + 3)) % 7) * 24
    n_weeks = max(0, (h0 + nh - first) // _WEEK_HOURS)
    if n_weeks == 0:
        return empty
    block = hourly[first - h0: first - h0 + n_weeks * _WEEK_HOURS].reshape(n_weeks, _WEEK_HOURS)
    keep = ~np.isnan(block).any(axis=1)
    return first + _WEEK_HOURS * np.flatnonzero(keep), block[keep]


def load_meter_curves(
    path_or_frame,
    *,
    timestamp_col=None,
    meter_col=None,
    value_col=None,
    unit: str = "kW",
    group_size: int = 1,
    week_start: str | int = "monday",
    max_gap_hours: float = 2.0,
    tz=None,
    timestamp_format: str | None = None,
    label: str = "start",
    random_state=None,
    return_index: bool = False,
):
    """Load smart-meter readings as weekly curves of 168 hourly mean powers (kW).

    Parameters
    ----------
    path_or_frame : str, path-like or DataFrame
        A CSV file (comma or semicolon separated) or a DataFrame, in one of two layouts:
        **wide**, timestamps plus one column per meter; **long** (set ``meter_col``),
        one row per timestamp and meter with a value column.
    timestamp_col : str, optional
        Column of timestamps. By default the DataFrame's index when it is a DatetimeIndex
        or holds strings, otherwise the first column.
    meter_col : str, optional
        Meter-id column; setting it selects the long layout.
    value_col : str, optional
        Long layout: the readings column (by default the only remaining column).
    unit : {"kW", "kWh", "W", "Wh"}, default="kW"
        Power readings (mean power over each interval) or energy per interval; energies
        are divided by the interval length, so kWh per 15 min x 4 = kW.
    group_size : int, default=1
        Sum the curves of groups of this many meters (households), keeping the weeks
        complete for every member. Leftover meters are dropped with a warning.
    week_start : str or int, default="monday"
        Day on which weeks start (at 00:00 local time); a name or 0 (Monday) to 6.
    max_gap_hours : float, default=2.0
        Runs of missing readings lasting at most this long are linearly interpolated;
        weeks touching a longer gap are dropped. 0 disables interpolation.
    tz : str or tzinfo, optional
        IANA time zone of the meters' local clock, e.g. ``"Europe/Paris"``. Naive
        timestamps are read as local times in ``tz``; aware ones are converted to it.
        Without ``tz``, aware timestamps keep their own zone and naive ones are a clock
        without daylight-saving time.
    timestamp_format : str, optional
        ``strftime`` format of string timestamps (e.g. ``"%d.%m.%Y %H:%M"``); by default
        inferred, ISO 8601 first.
    label : {"start", "end"}, default="start"
        Whether a timestamp marks the start or the end of its interval.
    random_state : int, RandomState or None, default=None
        Seed of the shuffle assigning meters to groups; None keeps the meters' order
        (column order, or order of first appearance in the long layout).
    return_index : bool, default=False
        Also return a DataFrame with ``group``, ``meters`` (tuple of meter ids) and
        ``week_start`` (local Timestamp) for each row.

    Returns
    -------
    X : ndarray of shape (n_curves, 168), float32
        Column ``24 * d + h``: day ``d`` after ``week_start``, local hour ``h``, in kW.
    index : DataFrame
        Only with ``return_index``.

    Notes
    -----
    Daylight-saving time: curves follow the **local wall clock**, so daily routines stay in
    place and every week has exactly 7 x 24 values. The hour skipped in spring (e.g.
    02:00 in Europe/Paris) is interpolated between 01:00 and 03:00; the hour repeated in
    autumn is the mean of its two real hours (so that week's energy is 1 h short of the
    metered energy, and the spring week's 1 h long). Resampling happens on the real time
    axis first: readings on a regular grid (any step dividing one hour), hourly means over
    complete hours only. Weeks run from ``week_start`` 00:00 to 00:00 seven days later;
    partial weeks at either end are dropped.
    """
    frame = _read(path_or_frame)
    key = str(unit).lower()
    if key not in _UNITS:
        raise ValueError(f"unit must be one of 'kW', 'kWh', 'W', 'Wh', got {unit!r}.")
    _, scale, energy = _UNITS[key]
    if isinstance(week_start, str) and week_start.lower() in _DAYS:
        weekday = _DAYS.index(week_start.lower())
    elif isinstance(week_start, (int, np.integer)) and 0 <= week_start <= 6:
        weekday = int(week_start)
    else:
        raise ValueError(f"week_start must be a day name ('monday'...) or 0-6, got {week_start!r}.")
    if not (isinstance(group_size, (int, np.integer)) and group_size >= 1):
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}.")
    if not (np.isfinite(max_gap_hours) and max_gap_hours >= 0):
        raise ValueError(f"max_gap_hours must be a finite number >= 0, got {max_gap_hours!r}.")
    if label not in ("start", "end"):
        raise ValueError(f"label must be 'start' or 'end', got {label!r}.")
    if tz is not None:
        try:
            pd.Timestamp("2000-01-01", tz=tz)
        except Exception:
            raise ValueError(f"tz={tz!r} is not a known time zone; use an IANA name such as "
                             f"'Europe/Paris' or 'UTC'.") from None
    if frame.shape[0] == 0:
        raise ValueError("path_or_frame holds no rows.")

    def column(name, param):
        if name not in frame.columns:
            raise ValueError(f"{param}={name!r} is not a column; columns are "
                             f"{list(frame.columns)}.")
        return frame[name]

    if timestamp_col is not None:
        raw_ts, ts_where, used = column(timestamp_col, "timestamp_col"), \
            f"column {timestamp_col!r}", [timestamp_col]
    elif isinstance(frame.index, pd.DatetimeIndex) or not (
        pd.api.types.is_numeric_dtype(frame.index.dtype)
        or pd.api.types.infer_dtype(frame.index) in ("integer", "floating", "mixed-integer-float")
    ):  # a non-numeric index holds the timestamps (e.g. parsed with index_col=0)
        raw_ts, ts_where, used = frame.index, "the index", []
    else:
        raw_ts, ts_where, used = frame.iloc[:, 0], f"column {frame.columns[0]!r}", \
            [frame.columns[0]]
    ts, mixed = _parse_timestamps(raw_ts, ts_where, timestamp_format)
    options = dict(scale=scale, energy=energy, label_end=label == "end", max_gap_h=max_gap_hours,
                   weekday=weekday)

    results = []  # (meter id, week labels, curves)
    if meter_col is None:
        if value_col is not None:
            raise ValueError("value_col is for the long layout: also pass meter_col.")
        names = [c for c in frame.columns if c not in used]
        if not names:
            raise ValueError("no meter columns besides the timestamps; for the long layout "
                             "pass meter_col and value_col.")
        utc_ns, zone = _localize(ts, mixed, tz, ts_where)
        for name in names:
            values = _numeric(frame[name], name)
            results.append((name, *_meter_weeks(name, utc_ns, values, zone, **options)))
    else:
        meters = column(meter_col, "meter_col")
        rest = [c for c in frame.columns if c not in used + [meter_col]]
        if value_col is None:
            if len(rest) != 1:
                raise ValueError(f"pass value_col=, one of {rest}, for the long layout.")
            value_col = rest[0]
        values_all = column(value_col, "value_col")
        for name, rows in pd.Series(np.arange(len(frame))).groupby(
                meters.to_numpy(), sort=False):
            rows = rows.to_numpy()
            values = _numeric(values_all.iloc[rows], name)
            utc_ns, zone = _localize(ts[rows], mixed, tz, f"{ts_where} (meter {name!r})")
            results.append((name, *_meter_weeks(name, utc_ns, values, zone, **options)))

    usable = [r for r in results if r[1].size]
    dropped = [r[0] for r in results if not r[1].size]
    if usable and dropped:
        warnings.warn(f"{len(dropped)} meter(s) without any complete week were dropped: "
                      f"{dropped[:10]}", UserWarning, stacklevel=2)
    if usable and group_size > len(usable):
        raise ValueError(f"group_size={group_size} exceeds the {len(usable)} meter(s) with "
                         f"complete weeks; lower group_size.")
    order = (np.arange(len(usable)) if random_state is None
             else check_random_state(random_state).permutation(len(usable)))
    n_groups = len(usable) // group_size
    leftover = [usable[i][0] for i in order[n_groups * group_size:]]
    if leftover:
        warnings.warn(f"{len(leftover)} meter(s) left over after forming {n_groups} group(s) of "
                      f"{group_size} were dropped: {leftover[:10]}", UserWarning, stacklevel=2)
    curves, rows = [], []
    for g in range(n_groups):
        members = [usable[i] for i in order[g * group_size:(g + 1) * group_size]]
        common = members[0][1]
        for m in members[1:]:
            common = np.intersect1d(common, m[1])
        total = sum(m[2][np.searchsorted(m[1], common)] for m in members)
        curves.append(total)
        rows += [(g, tuple(m[0] for m in members), int(w)) for w in common]
    X = np.concatenate(curves).astype(np.float32) if curves else np.empty((0, _WEEK_HOURS))
    if X.shape[0] == 0:
        raise ValueError(f"no complete week found: each curve needs {_WEEK_HOURS} hourly values "
                         f"from {_DAYS[weekday]} 00:00 (week_start) with no gap longer than "
                         f"max_gap_hours={max_gap_hours} (common to all meters of a group); "
                         f"provide more data, raise max_gap_hours or lower group_size.")
    if not return_index:
        return X
    starts = pd.to_datetime(np.array([r[2] for r in rows], dtype=np.int64) * _HOUR_NS, unit="ns")
    if zone is not None:
        starts = starts.tz_localize(zone, ambiguous=np.ones(len(starts), dtype=bool),
                                    nonexistent="shift_forward")
    index = pd.DataFrame({"group": [r[0] for r in rows], "meters": [r[1] for r in rows],
                          "week_start": starts})
    return X, index
