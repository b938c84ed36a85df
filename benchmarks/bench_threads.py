"""How many torch threads should the library's fits use? One, or torch's default.

Times two workloads in fresh processes, side by side in one run:

* ``tuner``: the README's BoltzmannTuner quickstart (decoder, CurveMaximum, top 1 %);
* ``avo``: the README's Poisson AVOSimulatorFitter quickstart, ``n_jobs=2``, with
  fewer updates (``--avo-iter``, default 60);

each with the library's default (``sktilt.get_config()["torch_threads"]``, one thread)
and with torch's default (``torch_threads=None``: one thread per core), first with the
other cores idle, then with a busy-loop process per extra core (a loaded machine, like
a laptop running a browser or a CI runner shared with other jobs). A run longer than
``--cap`` seconds is stopped and reported as ``>cap`` (its ratio is then a lower bound).
Each child warms torch's optimiser machinery up before the clock starts (a process's
first optimiser costs about 1.4 s of imports, FACTS.md).

Run: ``python benchmarks/bench_threads.py`` (about 3-6 min on 2 cores).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import subprocess
import sys
import time

import numpy as np


def _tuner() -> None:
    import torch

    from sktilt import BoltzmannTuner, CurveMaximum, LatentSampler, quantile_budget

    torch.manual_seed(0)
    decoder = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(),
                                  torch.nn.Linear(64, 168))
    tuner = BoltzmannTuner(LatentSampler(decoder, latent_dim=8), criterion=CurveMaximum(),
                           kl_budget=quantile_budget(0.01), random_state=0)
    tuner.fit().sample(1000)


def _poisson(theta, random_state):
    return random_state.poisson(np.exp(theta), size=1).astype(float)


def _avo(max_iter: int) -> None:
    from sktilt import AVOSimulatorFitter, GaussianProposal

    X_obs = np.random.default_rng(0).poisson(7.0, size=(2000, 1)).astype(float)
    AVOSimulatorFitter(_poisson, GaussianProposal(loc=[np.log(5.0)], scale=[1.0]),
                       gamma=1.0, n_jobs=2, max_iter=max_iter, random_state=0).fit(X_obs)


def _child(workload: str, setting: str, avo_iter: int) -> None:
    """One timed fit in this (fresh) process; prints the seconds."""
    import warnings

    import torch

    import sktilt

    warnings.simplefilter("ignore")
    if setting == "torch":
        sktilt.set_config(torch_threads=None)
    w = torch.zeros(1, requires_grad=True)  # warm-up: the first optimiser's imports
    opt = torch.optim.Adam([w])
    (w ** 2).sum().backward()
    opt.step()
    threads = (torch.get_num_threads() if setting == "torch"
               else sktilt.get_config()["torch_threads"])
    start = time.perf_counter()
    _tuner() if workload == "tuner" else _avo(avo_iter)
    print(f"RESULT {time.perf_counter() - start:.3f} {threads}", flush=True)


def _busy() -> None:
    while True:
        pass


def _run(workload: str, setting: str, args) -> tuple[float | None, str]:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", workload, setting,
           "--avo-iter", str(args.avo_iter)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.cap,
                             check=True).stdout
    except subprocess.TimeoutExpired:
        return None, "?"
    line = [x for x in out.splitlines() if x.startswith("RESULT")][-1].split()
    return float(line[1]), line[2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("WORKLOAD", "SETTING"))
    parser.add_argument("--avo-iter", type=int, default=60)
    parser.add_argument("--cap", type=float, default=120.0,
                        help="seconds after which a run is stopped (reported as >cap)")
    parser.add_argument("--workloads", nargs="+", default=["tuner", "avo"])
    args = parser.parse_args()
    if args.child:
        _child(*args.child, args.avo_iter)
        return
    cores = os.cpu_count() or 1
    print(f"{cores} cores; load average at start {os.getloadavg()[0]:.2f}; "
          f"avo max_iter={args.avo_iter}; cap {args.cap:g} s")
    print(f"{'machine':<8} {'workload':<8} {'library (1 thr)':>16} {'torch default':>16} "
          f"{'torch/library':>14}")
    for busy in (False, True):
        loops = [multiprocessing.Process(target=_busy, daemon=True)
                 for _ in range(cores - 1 if busy else 0)]
        for p in loops:
            p.start()
        try:
            for workload in args.workloads:
                lib, n_lib = _run(workload, "library", args)
                tor, n_tor = _run(workload, "torch", args)
                shown = [f"{t:.1f} s ({n} thr)" if t is not None else f">{args.cap:g} s"
                         for t, n in ((lib, n_lib), (tor, n_tor))]
                ratio = (f"{tor / lib:.1f}x" if tor is not None and lib is not None
                         else f">{args.cap / lib:.1f}x" if lib is not None else "?")
                print(f"{'busy' if busy else 'idle':<8} {workload:<8} {shown[0]:>16} "
                      f"{shown[1]:>16} {ratio:>14}", flush=True)
        finally:
            for p in loops:
                p.kill()
                p.join()


if __name__ == "__main__":
    main()
