"""The ``sktilt`` command: end-to-end applications of the two estimators.

``sktilt energy-peaks``, ``sktilt digits`` and ``sktilt weinberg``; ``sktilt CMD --help``
explains each option.
"""

from __future__ import annotations

__all__ = ["build_parser", "main"]

import argparse
import math
import sys
from pathlib import Path


def _quantile(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 0.5:
        raise argparse.ArgumentTypeError(
            f"--quantile must be a tail fraction in (0, 0.5), e.g. 0.01; got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _budgets(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--budgets must be comma-separated numbers, e.g. 0.5,1,2; got {text}") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise argparse.ArgumentTypeError(f"--budgets must all be finite and > 0, got {text}")
    return values


def _max_energy(text: str) -> str | float:
    if text == "median":
        return text
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(
            f"--max-energy must be 'median' or a positive number of kWh, got {text}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(
            f"--seed must be an integer in [0, 2**32 - 1], got {text}")
    return value


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"--threads must be a non-negative integer (0: torch's default), got {text}")
    return value


def _n_jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"--n-jobs must be a non-zero integer (workers; -1 = all cores), got {text}")
    return value


def _data_file(text: str) -> Path:
    """A readable CSV whose first column holds timestamps (its first rows are read)."""
    import pandas as pd

    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"--data: no such file {text!r}")
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.readline()
        sep = ";" if head.count(";") > head.count(",") else ","  # as load_meter_curves
        rows = pd.read_csv(path, sep=sep, nrows=20)
    except Exception as exc:  # unreadable, empty, not a CSV
        raise argparse.ArgumentTypeError(f"--data: cannot read {text!r} as CSV ({exc})") from None
    if rows.shape[1] < 2 or len(rows) == 0:
        raise argparse.ArgumentTypeError(
            f"--data: {text!r} needs a header and rows of a timestamp column plus readings "
            f"(wide: one column per meter; long: timestamp, meter, value); found the "
            f"columns {list(rows.columns)} and {len(rows)} rows")
    first = rows.iloc[:, 0]
    stamps = (pd.Series(pd.NaT, index=first.index)
              if pd.api.types.is_numeric_dtype(first.dtype)
              else pd.to_datetime(first.astype(str), errors="coerce", format="mixed",
                                utc=True))
    if stamps.isna().any():
        raise argparse.ArgumentTypeError(
            f"--data: the first column of {text!r} ({rows.columns[0]!r}) must hold "
            f"timestamps such as 2024-01-01 00:00; found {first.iloc[0]!r}")
    return path


def _device(text: str) -> str:
    from ._utils import check_device

    try:
        check_device(text, "--device")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``sktilt`` command and its sub-commands.

    Returns
    -------
    parser : argparse.ArgumentParser
        With the sub-commands ``energy-peaks``, ``digits`` and ``weinberg``.
    """
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="sktilt", description="Tilt generative models and simulators (BTGM, AVO).")
    parser.add_argument("--version", action="version", version=f"sktilt {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "energy-peaks", help="sample the top-rho peak weeks of weekly load curves",
        description="Load your meter data (or generate realistic aggregated household "
        "curves), train a VAE of weekly load curves (cached in OUT), tune it to the "
        "top-rho peak weeks with a BoltzmannTuner, and report beta, KL, peak and weekly "
        "consumption base vs tuned, and P(peak > the data's top-rho peak). Writes "
        "summary.json and scenarios.csv (peak weeks from the model's top-rho tail, 168 "
        "hourly kW per row), then curves.png, peaks.png and pareto.png, to OUT.")
    p.add_argument("--quantile", type=_quantile, default=0.01,
                   help="tail fraction rho: the KL budget is -log(rho) (default 0.01)")
    p.add_argument("--data", type=_data_file, default=None,
                   help="CSV of meter readings, timestamps in the first column: wide (one "
                   "column per meter) or long (three columns: timestamp, meter, value); "
                   "see --layout. Default: generated curves")
    p.add_argument("--layout", choices=("auto", "wide", "long"), default="auto",
                   help="layout of --data (default auto: long when the file has three "
                   "columns and the second holds meter names or repeats timestamps)")
    p.add_argument("--unit", choices=("kW", "kWh", "W", "Wh"), default="kW",
                   help="unit of the readings in --data: mean power over each interval "
                   "(kW, W) or energy per interval (kWh, Wh; divided by the interval's "
                   "length, so kWh per 15 min x 4 = kW). Default kW")
    p.add_argument("--households", type=_positive_int, default=10,
                   help="households (meters) aggregated per curve (default 10)")
    p.add_argument("--n-weeks", type=_positive_int, default=3000,
                   help="weeks generated when --data is not given (default 3000)")
    p.add_argument("--epochs", type=_positive_int, default=160,
                   help="VAE training epochs (default 160)")
    p.add_argument("--n-scenarios", type=_positive_int, default=1000,
                   help="peak-week scenarios written to scenarios.csv (default 1000)")
    p.add_argument("--max-energy", type=_max_energy, default=None,
                   help="the planner's case: the top-rho peak weeks among the weeks whose "
                   "weekly energy is at most this many kWh ('median': the data's median "
                   "weekly energy), tuned with the constraint E_q log(weekly energy) <= "
                   "log(cap); the scenarios are the model's weeks in that event. Default: "
                   "no cap")

    p = sub.add_parser(
        "digits", help="conditional generation of digits by tilting toward a classifier",
        description="Train a VAE and a classifier on scikit-learn's 8x8 digits, then tilt "
        "the VAE toward one class with f = log h(label | x) for a grid of KL budgets. "
        "Writes an image grid (one row per beta), the Pareto front and summary.json.")
    p.add_argument("--label", type=int, choices=range(10), default=4,
                   help="target digit (default 4)")
    p.add_argument("--budgets", type=_budgets, default=(0.5, 1.0, 2.0, 3.0),
                   help="comma-separated KL budgets (default 0.5,1,2,3)")
    p.add_argument("--epochs", type=_positive_int, default=150,
                   help="VAE training epochs (default 150)")

    p = sub.add_parser(
        "weinberg", help="fit the Weinberg physics simulator with AVO, in parallel",
        description="Simulate observations of the e+e- -> mu+mu- forward-backward "
        "asymmetry at the truth (E, G_f) = (42, 0.9), fit the simulator's parameters with "
        "AVOSimulatorFitter (simulations in parallel through joblib), compare c(E, G_f) "
        "with its maximum-likelihood estimate, and draw the proposal's trajectory and "
        "the data-vs-fit histogram.")
    p.add_argument("--n-obs", type=_positive_int, default=5000,
                   help="number of observations (default 5000)")
    p.add_argument("--n-jobs", type=_n_jobs, default=2,
                   help="parallel simulation workers (joblib; -1 = all cores; default 2)")
    p.add_argument("--max-iter", type=_positive_int, default=None,
                   help="AVO iterations (default: the fitter's)")

    for p in sub.choices.values():
        p.add_argument("--out", type=Path, default=None,
                       help="output folder (default sktilt-out/COMMAND)")
        p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
        p.add_argument("--device", type=_device, default="cpu",
                       help="torch device of the models, e.g. cuda (default cpu)")
        # One thread by measurement: the models are small, and torch's default of one
        # thread per core oversubscribes a busy machine (an AVO fit ran 30x slower).
        p.add_argument("--threads", type=_threads, default=1,
                       help="torch intra-op threads (default 1, the fastest measured for "
                       "these small models and safe on a busy machine; 0 = torch's "
                       "default of one per core)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv=None) -> int:
    """Run the ``sktilt`` command.

    Parameters
    ----------
    argv : list of str or None, default=None
        The arguments (``sys.argv[1:]`` when ``None``), e.g. ``["digits", "--label", "4"]``.

    Returns
    -------
    status : int
        0 on success; 2 when the run stopped on a bad argument value, unreadable data
        or a missing optional package (the message goes to stderr). Invalid options
        exit through argparse (status 2) before anything runs.
    """
    args = build_parser().parse_args(argv)
    out = args.out or Path("sktilt-out") / args.command
    progress = not args.quiet
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        if args.command == "energy-peaks":
            from .apps.energy import run_energy_peaks

            run_energy_peaks(quantile=args.quantile, data=args.data, layout=args.layout,
                             unit=args.unit, out=out,
                             n_weeks=args.n_weeks, households=args.households,
                             epochs=args.epochs, seed=args.seed, device=args.device,
                             n_scenarios=args.n_scenarios, max_energy=args.max_energy,
                             progress=progress)
        elif args.command == "digits":
            from .apps.digits import run_digits

            run_digits(label=args.label, budgets=args.budgets, out=out, epochs=args.epochs,
                       seed=args.seed, device=args.device, progress=progress)
        else:
            from .apps.weinberg import run_weinberg

            run_weinberg(n_obs=args.n_obs, n_jobs=args.n_jobs, max_iter=args.max_iter,
                         out=out, seed=args.seed, device=args.device, progress=progress)
    except (ValueError, OSError, ImportError) as exc:
        print(f"sktilt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
