"""Aggregated weekly load curves from the SimBench household load profiles (optional).

SimBench (https://simbench.de, package ``simbench``) ships normalised 15-minute load
profiles for 2016 in ``networks/1-complete_data-mixed-all-0-sw/LoadProfile.csv``:
semicolon-separated, a ``time`` column (``dd.mm.yyyy HH:MM``, no daylight-saving time) and
``<profile>_pload`` / ``<profile>_qload`` columns. :func:`load_simbench_curves` reads the
household profiles and sums scaled copies into aggregated weekly curves through
:func:`~sktilt.datasets.load_meter_curves`. The package is optional: pass the CSV (or a
DataFrame in its layout) to use the loader without it.
"""

from __future__ import annotations

__all__ = ["load_simbench_curves", "SIMBENCH_HOUSEHOLD_PROFILES"]

import os
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ._meter import load_meter_curves

#: SimBench household profile names (H0: BDEW standard household; BL-H, WB-H: household
#: variants of the SimBench profile set). Other columns (G*, L*, lv_*, ...) are not households.
SIMBENCH_HOUSEHOLD_PROFILES = ("H0-A", "H0-B", "H0-C", "H0-G", "H0-L", "BL-H", "WB-H")
_SIMBENCH_FILE = Path("networks", "1-complete_data-mixed-all-0-sw", "LoadProfile.csv")
_HOURS_PER_YEAR = 8760.0


def _simbench_profile_file() -> Path:
    try:
        import simbench
    except ImportError:
        raise ImportError(
            "load_simbench_curves() without path_or_frame needs the optional package "
            "'simbench': pip install simbench (or pass the path of SimBench's LoadProfile.csv)."
        ) from None
    path = Path(simbench.__file__).parent / _SIMBENCH_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the installed simbench package; "
                                f"pass path_or_frame= with a LoadProfile.csv.")
    return path


def load_simbench_curves(
    path_or_frame=None,
    *,
    n_households: int = 10,
    n_groups: int = 20,
    profiles="household",
    annual_consumption_kwh: float = 3500.0,
    consumption_sigma: float = 0.3,
    random_state=None,
    return_index: bool = False,
):
    """Aggregated household weekly curves built from SimBench load profiles.

    Each of ``n_groups`` groups aggregates ``n_households`` households; a household is a
    SimBench profile drawn with replacement, rescaled to an annual consumption drawn
    log-normally around ``annual_consumption_kwh``. Every group yields one curve per
    complete Monday-to-Sunday week of the profile year (52 for 2016).

    Parameters
    ----------
    path_or_frame : str, path-like or DataFrame, optional
        SimBench ``LoadProfile.csv`` or a DataFrame in its layout (``time`` column,
        ``<profile>_pload`` columns). By default the file inside the installed ``simbench``
        package (``pip install simbench``).
    n_households : int, default=10
        Households per aggregated curve.
    n_groups : int, default=20
        Number of independently drawn groups.
    profiles : "household" or list of str, default="household"
        Profile names to draw from; "household" is :data:`SIMBENCH_HOUSEHOLD_PROFILES`
        (those present in the file).
    annual_consumption_kwh : float, default=3500.0
        Mean annual consumption of a household.
    consumption_sigma : float, default=0.3
        Log-normal spread of the households' annual consumption (0: all equal).
    random_state : int, RandomState or None, default=None
        Seed of the household draws.
    return_index : bool, default=False
        Also return a DataFrame with ``group``, ``profiles`` (tuple of the drawn profile
        names) and ``week_start`` for each row.

    Returns
    -------
    X : ndarray of shape (n_groups * n_weeks, 168), float32
        Hourly mean power in kW, weeks starting Monday 00:00.
    index : DataFrame
        Only with ``return_index``.

    Notes
    -----
    Limits: SimBench household profiles are a handful of smooth, deterministic shapes (one
    year each), so the aggregate of 10 "households" is a weighted sum of at most a few
    distinct curves: much less household diversity and far fewer stochastic peaks than
    real meters or :func:`make_load_curves`; curves of different groups in the same week
    are strongly correlated. The profile year has no daylight-saving time.
    """
    for name, value in [("n_households", n_households), ("n_groups", n_groups)]:
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if not (annual_consumption_kwh > 0 and consumption_sigma >= 0):
        raise ValueError("annual_consumption_kwh must be > 0 and consumption_sigma >= 0.")
    if path_or_frame is None:
        path_or_frame = _simbench_profile_file()
    if isinstance(path_or_frame, (str, os.PathLike)):
        frame = pd.read_csv(path_or_frame, sep=";")
    elif isinstance(path_or_frame, pd.DataFrame):
        frame = path_or_frame
    else:
        raise TypeError(f"path_or_frame must be None, a CSV path or a DataFrame, got "
                        f"{type(path_or_frame).__name__}.")
    if "time" not in frame.columns:
        raise ValueError("path_or_frame is not in SimBench's LoadProfile layout: no 'time' "
                         "column.")
    available = [c[: -len("_pload")] for c in frame.columns if str(c).endswith("_pload")]
    wanted = SIMBENCH_HOUSEHOLD_PROFILES if isinstance(profiles, str) and \
        profiles == "household" else list(profiles)
    names = [p for p in wanted if p in available]
    if not names:
        raise ValueError(f"profiles={profiles!r}: none found; the file has {available}.")
    if len(names) < len(wanted) and not (isinstance(profiles, str) and profiles == "household"):
        raise ValueError(f"profiles {sorted(set(wanted) - set(names))} are not in the file; "
                         f"it has {available}.")

    # normalise each profile to a mean of 1 so that scaling sets the annual consumption
    time = frame["time"]
    if not pd.api.types.is_datetime64_any_dtype(time.dtype):
        time = pd.to_datetime(time, format="%d.%m.%Y %H:%M")
    relative = frame[[f"{p}_pload" for p in names]].astype(float)
    relative = relative / relative.mean(axis=0).to_numpy()
    relative.columns = names
    relative.index = pd.DatetimeIndex(time)
    curves, index = load_meter_curves(relative, unit="kW", max_gap_hours=0.0,
                                      return_index=True)
    weeks = np.sort(index["week_start"].unique())
    n_weeks = weeks.size
    # (n_profiles, n_weeks, 168): a profile's weeks, in the common order
    by_profile = np.zeros((len(names), n_weeks, curves.shape[1]))
    meter = np.array([m[0] for m in index["meters"]], dtype=object)
    for k, name in enumerate(names):
        rows = np.flatnonzero(meter == name)
        pos = np.searchsorted(weeks, index["week_start"].to_numpy()[rows])
        by_profile[k, pos] = curves[rows]

    rng = check_random_state(random_state)
    picks = rng.randint(len(names), size=(n_groups, n_households))
    kwh = annual_consumption_kwh * rng.lognormal(
        -0.5 * consumption_sigma**2, consumption_sigma, size=(n_groups, n_households))
    weights = np.zeros((n_groups, len(names)))  # mean kW per profile in each group
    np.add.at(weights, (np.repeat(np.arange(n_groups), n_households), picks.ravel()),
              kwh.ravel() / _HOURS_PER_YEAR)
    X = np.einsum("gp,pwh->gwh", weights, by_profile).reshape(-1, curves.shape[1])
    X = X.astype(np.float32)
    if not return_index:
        return X
    idx = pd.DataFrame({
        "group": np.repeat(np.arange(n_groups), n_weeks),
        "profiles": [tuple(names[i] for i in row) for row in picks for _ in range(n_weeks)],
        "week_start": np.tile(weeks, n_groups),
    })
    return X, idx
