"""A seeded generator of aggregated household weekly electricity load curves.

The generator is the embedded default data set of sktilt: nothing downloads, thousands of
weeks come out per second, and the curves carry the structure an energy analyst expects
(night minimum, morning and evening peaks, weekday/weekend contrast, cold weeks higher,
heavy-tailed weekly peaks from coincident appliance events). See
:func:`make_load_curves` for the model and its limits.
"""

from __future__ import annotations

__all__ = ["make_load_curves"]

import numbers

import numpy as np
import pandas as pd

from .._random import as_seed_sequence

_HOURS_PER_WEEK = 168
# Household-weeks simulated at once: bounds memory (~10 arrays of this many x 168 floats).
_HOUSEHOLD_WEEKS_PER_CHUNK = 16384
_WEEKEND = np.array([0, 0, 0, 0, 0, 1, 1], dtype=bool)  # days Monday..Sunday
_LATE_NIGHT = np.array([0, 0, 0, 0, 1, 1, 0], dtype=float)  # Friday and Saturday evenings
_TAU = np.arange(24) + 0.5  # mid-hour clock times: hourly values ~ hourly means


def _sig(x):
    """Logistic function (via tanh, which does not overflow)."""
    return 0.5 + 0.5 * np.tanh(x * x.dtype.type(0.5))


def _deposit(out, week, start, duration, power) -> None:
    """Add rectangular events (``power`` kW from ``start`` for ``duration`` h) to hourly means.

    ``out`` is the flat ``(n_weeks * 168,)`` accumulator; ``start`` is in hours from the
    week's Monday 00:00. Each event spreads over the hours it overlaps, so a 20-minute
    2 kW kettle adds 0.67 kW to one hour. Events running past Sunday midnight wrap to the
    start of the same week (weeks are exchangeable samples, not a time series).
    """
    week, start, duration, power = (
        a.ravel() for a in np.broadcast_arrays(week, start, duration, power)
    )
    keep = power > 0
    week, start, end, power = week[keep], start[keep], start[keep] + duration[keep], power[keep]
    first = np.floor(start)
    n_bins = int(np.ceil(duration.max(initial=0.0))) + 1
    for j in range(n_bins):  # loop over an event's few hours, vectorised over all events
        b = first + j
        overlap = np.clip(np.minimum(end, b + 1.0) - np.maximum(start, b), 0.0, None)
        idx = week * _HOURS_PER_WEEK + (b.astype(np.int64) % _HOURS_PER_WEEK)
        out += np.bincount(idx, weights=power * overlap, minlength=out.size)


def _simulate_chunk(rng, woy, t_week, n_households, p_heat, p_ac, p_ev):
    """Simulate ``len(woy)`` aggregated weeks; returns (curves, temperature, counts)."""
    W, H = woy.size, n_households
    shape_wh, shape_whd = (W, H), (W, H, 7)
    unif, norm = rng.uniform, rng.normal

    # --- weather: weekly mean + daily anomaly + diurnal cycle (min ~3 h, max ~15 h)
    temp = (
        t_week[:, None, None]
        + norm(0.0, 1.8, (W, 7, 1))
        + 3.5 * np.cos(2 * np.pi * (_TAU - 15.0) / 24.0)
    )  # (W, 7, 24)
    season = np.cos(2 * np.pi * (woy - 25.0) / 52.0)  # +1 at midsummer
    day_length = 12.0 + 4.2 * season
    noon = 13.0 + 0.5 * season  # solar noon in local clock time (summer time shifts it)
    sunrise, sunset = noon - day_length / 2, noon + day_length / 2
    dark = _sig((sunrise[:, None] - _TAU) / 0.4) + _sig((_TAU - sunset[:, None]) / 0.4)
    dark = dark[:, None, None, :]  # (W, 1, 1, 24)

    # --- household heterogeneity (drawn afresh for every week: rows are i.i.d.)
    base = rng.lognormal(np.log(0.08), 0.35, shape_wh)  # standby + cold appliances, kW
    act = rng.lognormal(np.log(0.18), 0.40, shape_wh)  # electronics at full activity, kW
    light = rng.lognormal(np.log(0.10), 0.40, shape_wh)  # lighting when active and dark, kW
    cook = unif(1.0, 2.2, shape_wh)  # mean cooking power, kW
    wake = np.clip(norm(6.6, 0.7, shape_wh), 4.5, 9.5)
    wake_delay = np.clip(norm(1.6, 0.6, shape_wh), 0.3, 3.5)  # weekend lie-in
    bed = np.clip(norm(23.0, 0.8, shape_wh), 21.0, 25.5)
    away = rng.random(shape_wh) < 0.6  # home empty on weekday daytime
    leave = wake + unif(0.8, 1.6, shape_wh)
    back = np.clip(norm(17.6, 1.0, shape_wh), 15.0, 20.5)
    has_dw, has_dryer = rng.random(shape_wh) < 0.6, rng.random(shape_wh) < 0.35
    has_heat, has_ac, has_ev = (rng.random(shape_wh) < p for p in (p_heat, p_ac, p_ev))
    ua = rng.lognormal(np.log(0.17), 0.3, shape_wh)  # heat loss / efficiency, kW per K
    ac_gain = rng.lognormal(np.log(0.3), 0.3, shape_wh)  # kW per K above 24 C
    ev_power = np.where(rng.random(shape_wh) < 0.7, 3.7, 7.4)

    # --- day-level schedule (W, H, 7)
    away_today = away[..., None] & ~_WEEKEND
    wake_d = wake[..., None] + wake_delay[..., None] * _WEEKEND + norm(0.0, 0.3, shape_whd)
    bed_d = bed[..., None] + 0.7 * _LATE_NIGHT + norm(0.0, 0.3, shape_whd)
    outing = rng.random(shape_whd) < np.where(_WEEKEND, 0.45, np.where(away_today, 0.0, 0.2))
    o_start, o_len = unif(9.5, 16.0, shape_whd), unif(1.5, 4.5, shape_whd)

    # --- hourly occupancy (W, H, 7, 24), in float32 (the bulk of the work): awake x at home
    f32 = np.float32
    tau = _TAU.astype(f32)
    e = lambda a: a[..., None].astype(f32)  # noqa: E731  (day -> hour axis)
    awake = _sig((tau - e(wake_d)) / f32(0.25)) * _sig((e(bed_d) - tau) / f32(0.25))
    prev_bed = np.roll(bed_d, 1, axis=-1)  # yesterday's bedtime may be after midnight
    awake = np.maximum(awake, _sig((e(prev_bed) - f32(24.0) - tau) / f32(0.25)))
    gone = _sig((tau - e(e(leave))) / f32(0.3)) * _sig((e(e(back)) - tau) / f32(0.3))
    presence = 1.0 - f32(0.8) * gone * e(away_today)
    presence *= 1.0 - f32(0.7) * e(outing) * _sig((tau - e(o_start)) / f32(0.3)) * _sig(
        (e(o_start + o_len) - tau) / f32(0.3)
    )
    activity = awake * presence

    # --- continuous loads: standby, electronics, lighting
    hourly = (W, H, 7, 24)
    load = e(e(base)) * (f32(0.9) + f32(0.2) * rng.random(hourly, dtype=f32))
    noise = np.exp(f32(0.25) * rng.standard_normal(hourly, dtype=f32) - f32(0.03))
    load += activity * (e(e(act)) * noise + e(e(light)) * dark.astype(f32))
    # --- space heating and cooling, computed for the owners only
    t_out = temp.astype(f32)
    heated = np.nonzero(has_heat)
    setpoint = f32(16.5) + f32(3.5) * activity[heated]  # set back at night and when away
    heat_need = np.clip(setpoint - t_out[heated[0]] - f32(4.5), 0.0, None)  # 4.5 K gains
    heat_noise = np.exp(f32(0.15) * rng.standard_normal(heat_need.shape, dtype=f32))
    load[heated] += e(e(ua[heated])) * heat_need * heat_noise
    cooled = np.nonzero(has_ac)
    cool = e(e(ac_gain[cooled])) * np.clip(t_out[cooled[0]] - f32(24.0), 0.0, None)
    load[cooled] += cool * (f32(0.3) + f32(0.7) * presence[cooled])
    out = load.sum(axis=1, dtype=np.float64).reshape(W * _HOURS_PER_WEEK)

    # --- appliance events, deposited into the aggregate (start in hours from Monday 00:00)
    week = np.arange(W)[:, None, None]
    day0 = 24.0 * np.arange(7)
    r = lambda: rng.random(shape_whd)  # noqa: E731
    hh = lambda a: np.broadcast_to(a[..., None], shape_whd)  # noqa: E731
    # breakfast (kettle, toaster, coffee), lunch, dinner (hob/oven)
    _deposit(out, week, day0 + wake_d + unif(0.25, 0.9, shape_whd), unif(0.2, 0.45, shape_whd),
             0.9 * hh(cook) * (r() < 0.75))
    p_lunch = np.where(_WEEKEND, 0.6, np.where(away_today, 0.12, 0.5))
    _deposit(out, week, day0 + norm(12.2, 0.5, shape_whd), unif(0.3, 0.8, shape_whd),
             0.8 * hh(cook) * (r() < p_lunch))
    dinner = np.maximum(norm(18.8, 0.9, shape_whd), np.where(away_today, hh(back) + 0.3, 0.0))
    dinner_len = unif(0.5, 1.3, shape_whd)
    _deposit(out, week, day0 + dinner, dinner_len, hh(cook) * (r() < 0.88))
    # dishwasher: mostly after dinner, sometimes early afternoon
    dw_start = np.where(r() < 0.75, dinner + dinner_len + unif(0.3, 2.0, shape_whd),
                        unif(12.0, 15.0, shape_whd))
    _deposit(out, week, day0 + dw_start, unif(1.3, 2.0, shape_whd),
             unif(0.55, 0.8, shape_whd) * (hh(has_dw) & (r() < 0.55)))
    # laundry (more at weekends), then tumble dryer for its owners
    wash_on = r() < np.where(_WEEKEND, 0.45, 0.22)
    wash = np.where(_WEEKEND | ~away_today, norm(10.5, 1.8, shape_whd), norm(19.5, 1.0, shape_whd))
    wash_len = unif(1.2, 2.0, shape_whd)
    _deposit(out, week, day0 + wash, wash_len, unif(0.4, 0.7, shape_whd) * wash_on)
    _deposit(out, week, day0 + wash + wash_len, unif(1.0, 1.8, shape_whd),
             unif(1.8, 2.5, shape_whd) * (wash_on & hh(has_dryer) & (r() < 0.8)))
    # miscellaneous short loads (vacuum, iron, hair dryer), uniform over hours at home and awake
    stop = np.minimum(bed_d, 24.0)
    gap = np.where(away_today, hh(back - leave), 0.0)
    for _ in range(2):
        s = wake_d + r() * np.clip(stop - wake_d - gap, 0.5, None)
        s = np.where(away_today & (s > hh(leave)), s + gap, s)
        _deposit(out, week, day0 + s, unif(0.1, 0.6, shape_whd),
                 unif(0.8, 2.0, shape_whd) * (r() < 0.6))
    # EV charging: multi-hour blocks at arrival or on an off-peak timer; daytime at weekends
    arrive = np.where(away_today, hh(back) + unif(0.0, 0.5, shape_whd), norm(17.0, 2.0, shape_whd))
    ev_start = np.where(_WEEKEND, unif(10.0, 20.0, shape_whd),
                        np.where(r() < 0.4, 22.0 + unif(0.0, 1.5, shape_whd), arrive))
    energy = unif(4.0, 16.0, shape_whd)  # kWh per session
    _deposit(out, week, day0 + ev_start, energy / hh(ev_power),
             hh(ev_power) * (hh(has_ev) & (r() < np.where(_WEEKEND, 0.3, 0.6))))

    counts = np.stack([has_heat.sum(1), has_ac.sum(1), has_ev.sum(1)], axis=1)
    return out.reshape(W, _HOURS_PER_WEEK), temp.reshape(W, -1).mean(axis=1), counts


def make_load_curves(
    n_weeks: int = 1000,
    *,
    n_households: int = 10,
    week_of_year=None,
    temperature=None,
    temperature_mean: float = 11.0,
    temperature_amplitude: float = 8.0,
    p_electric_heating: float = 0.2,
    p_air_conditioning: float = 0.05,
    p_ev: float = 0.1,
    random_state=None,
    return_meta: bool = False,
):
    """Generate aggregated household weekly electricity load curves.

    Each row is one week (Monday 00:00 to Sunday 24:00, local clock time) of hourly mean
    power in kW, summed over ``n_households`` simulated households (the BTGM paper
    aggregates 10). Rows are independent: every week draws its own households, season and
    weather.

    Parameters
    ----------
    n_weeks : int, default=1000
        Number of weekly curves.
    n_households : int, default=10
        Households aggregated per curve. More households smooth the curve (diversity).
    week_of_year : array-like of int in [1, 53] of shape (n_weeks,), optional
        Week of the year of each curve; drawn uniformly when omitted.
    temperature : array-like of shape (n_weeks,), optional
        Weekly mean outdoor temperature in degrees C; otherwise drawn from the seasonal
        climate below plus a weekly anomaly (standard deviation 2.5 C).
    temperature_mean, temperature_amplitude : float, default=11.0, 8.0
        Seasonal climate: mean ``temperature_mean - temperature_amplitude *
        cos(2 pi (week - 3) / 52)`` (coldest in mid-January; defaults ~ northern France).
    p_electric_heating, p_air_conditioning, p_ev : float, default=0.2, 0.05, 0.1
        Share of households with electric space heating, air conditioning, an electric
        vehicle.
    random_state : int, RandomState, Generator or None, default=None
        Seed; the same seed and arguments give the same curves.
    return_meta : bool, default=False
        Also return a DataFrame of per-week metadata.

    Returns
    -------
    X : ndarray of shape (n_weeks, 168), float32
        Hourly mean power in kW; column ``24 * d + h`` is day ``d`` (0 = Monday), hour ``h``.
    meta : DataFrame of shape (n_weeks, 5)
        Only with ``return_meta``: ``week_of_year``, ``temperature`` (weekly mean outdoor
        temperature, C), ``n_electric_heating``, ``n_air_conditioning``, ``n_ev`` (how many
        of the aggregated households own each).

    Notes
    -----
    The model, per household and hour (all times local clock time):

    * **Occupancy.** A household wakes at ~6:36 on weekdays (sd 0.7 h) and 0.3-3.5 h later
      at weekends, goes to bed at ~23:00 (later on Friday and Saturday nights). 60 % leave
      the home on weekdays between ~8 h and ~17:30; weekend (and some weekday) outings of
      1.5-4.5 h. Activity = awake x at home, with smooth (logistic) transitions.
    * **Continuous loads.** Standby and cold appliances (log-normal, median 0.08 kW),
      electronics proportional to activity with hourly log-normal noise, lighting when
      active and dark (sunrise and sunset follow the season at ~48 N).
    * **Weather and heating.** Hourly temperature = weekly mean + daily anomaly (sd 1.8 C)
      + diurnal cycle (+-3.5 C, minimum ~3 h). Electric heating draws ``UA x max(0,
      setpoint - T_out - 4.5 K)`` with a setpoint of 16.5 C set back at night or when away,
      20 C when active; optional air conditioning above 24 C.
    * **Appliance events**, deposited as rectangular power blocks into the hours they
      overlap: breakfast (~wake + 0.5 h), lunch (more at weekends and for those at home),
      dinner (~18:50 or after coming home), dishwasher (after dinner), laundry and tumble
      dryer (weekend mornings, weekday evenings), short miscellaneous loads, and EV charging
      (3.7 or 7.4 kW, 4-16 kWh sessions: on arrival or on an off-peak timer at 22-23:30,
      daytime at weekends).

    With the defaults a household averages ~0.5 kW over the year (~4.6 MWh; ~0.37 kW,
    3.2 MWh, without electric heating), with hourly peaks of 1.5-6 kW (EV charging at the
    top); 10 households average ~5 kW, ~8 kW in weeks below 5 C.
    Aggregated weekly profiles show the night minimum at 3-5 h, a morning peak at 7-8 h on
    weekdays (later and flatter at weekends, higher midday at weekends) and the evening peak
    at 18-20 h; cold weeks are higher.

    Limits: a stylised generator, not calibrated to a metering campaign. Households are
    independent (no shared holidays, weather-driven behaviour or grid events beyond the
    common temperature), no week-to-week persistence (rows are i.i.d., not a time series),
    no public holidays, no water heating, heat pumps or on-site generation (PV), no
    sub-hourly dynamics, and events running past Sunday midnight wrap to the same week's
    Monday. Use :func:`load_meter_curves` for real data.

    Examples
    --------
    >>> from sktilt.datasets import make_load_curves
    >>> X, meta = make_load_curves(500, random_state=0, return_meta=True)
    >>> X.shape, X.dtype
    ((500, 168), dtype('float32'))
    """
    if not isinstance(n_weeks, numbers.Integral) or n_weeks < 1:
        raise ValueError(f"n_weeks must be a positive integer, got {n_weeks!r}.")
    if not isinstance(n_households, numbers.Integral) or n_households < 1:
        raise ValueError(f"n_households must be a positive integer, got {n_households!r}.")
    for name, p in [("p_electric_heating", p_electric_heating),
                    ("p_air_conditioning", p_air_conditioning), ("p_ev", p_ev)]:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}.")
    n_weeks, n_households = int(n_weeks), int(n_households)
    columns = {}
    for name, value in [("week_of_year", week_of_year), ("temperature", temperature)]:
        if value is not None:
            value = np.asarray(value, dtype=float).reshape(-1)
            if value.size == 1:
                value = np.full(n_weeks, value[0])
            if value.size != n_weeks or not np.all(np.isfinite(value)):
                raise ValueError(f"{name} must be finite with one value per week "
                                 f"(n_weeks={n_weeks}), got {value.size} values.")
            columns[name] = value
    if "week_of_year" in columns and not np.all((columns["week_of_year"] >= 1)
                                                & (columns["week_of_year"] <= 53)):
        raise ValueError("week_of_year must lie in [1, 53].")

    root = as_seed_sequence(random_state)
    chunk = max(1, _HOUSEHOLD_WEEKS_PER_CHUNK // n_households)
    X = np.empty((n_weeks, _HOURS_PER_WEEK), dtype=np.float32)
    meta = np.empty((n_weeks, 5))
    for start in range(0, n_weeks, chunk):
        # one child seed per chunk keeps the streams independent across chunks
        rng = np.random.default_rng(root.spawn(1)[0])
        stop = min(start + chunk, n_weeks)
        w = stop - start
        woy = columns.get("week_of_year")
        woy = rng.integers(1, 53, w).astype(float) if woy is None else woy[start:stop]
        t_week = (temperature_mean - temperature_amplitude * np.cos(2 * np.pi * (woy - 3.0) / 52.0)
                  + rng.normal(0.0, 2.5, w))
        if "temperature" in columns:
            t_week = columns["temperature"][start:stop]
        curves, t_mean, counts = _simulate_chunk(rng, woy, t_week, n_households,
                                                 p_electric_heating, p_air_conditioning, p_ev)
        X[start:stop] = curves
        meta[start:stop] = np.column_stack([woy, t_mean, counts])
    if not return_meta:
        return X
    meta = pd.DataFrame(meta, columns=["week_of_year", "temperature", "n_electric_heating",
                                       "n_air_conditioning", "n_ev"])
    for col in ["week_of_year", "n_electric_heating", "n_air_conditioning", "n_ev"]:
        meta[col] = meta[col].astype(np.int64)
    return X, meta
