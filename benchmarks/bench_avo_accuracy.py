"""AVO accuracy over seeds on the seeds' simulators and published external ones.

Run: ``python benchmarks/bench_avo_accuracy.py [--seeds 12] [--cases poisson,gk,...]
[--moment-step 0.5]``
(about 15 s per fit on one core).

Point-estimate problems (defaults apart from the starting proposal), each judged against
the exact MLE on the same data, in MLE standard errors (identifiable combinations):

* ``poisson``  -- the seeds' Poisson rate (20 000 observations);
* ``peak_<case>`` -- the narrow-peak family :data:`sktilt.datasets.RESONANCE_CASES` (a
  Breit-Wigner peak over an exponential background, 5 000 observations, exact MLE),
  started 20-50 % off;
* ``weinberg`` -- the seeds' Weinberg asymmetry, judged on c(E, G_f) (20 000);
* ``gauss10``  -- sbibm's 10-D Gaussian linear (1 000 observations);
* ``gk``       -- ELFI's g-and-k (A, B, g, k), 10 000 observations, MLE by quantile
  inversion; ``gk_at_mle`` the same started at the MLE, 3 SE wide (the estimator's
  precision without the travel; not a target: its start knows the answer);
* ``slcp``     -- sbibm's SLCP (5 parameters, |t2|, |t3| identifiable), 1 000 sets of
  4 points, started in the positive orthant of t2, t3 (at 0 their gradients vanish);
  ``slcp600`` the same with ``max_iter=600``.

Targets (issue #12): every parameter within 2 SE in >= 90 % of fits, RMS <= 1.2 SE,
<= 200 000 simulations. Also the source task ``source`` (bimodal population through a
noisy simulator, FlowProposal, gamma=0 and gamma=-0.3): mass of the left mode (0.3),
entropy and a classifier two-sample test (C2ST accuracy, target <= 0.55); and ``moons``
(sbibm's two-moons box U(-1, 1)^2 as the population, gamma=0 and gamma=-0.1): mass in
the box, KS distances of the identified combinations t1 - t0 and |t0 + t1|, entropy
(the box's is log 4; its edges are blurred by the simulator's noise) and C2ST; and
``slcp_source`` (SLCP's prior box U(-3, 3)^5 as the population, 600 updates): KS
distances of the identified t0, t1, |t2|, |t3|, tanh t4, entropy (the box's: 5 log 6)
and C2ST.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from scipy.stats import ks_2samp
from sklearn.model_selection import cross_val_score
from sklearn.neural_network import MLPClassifier

from sktilt import (AVOSimulatorFitter, FlowProposal, GaussianProposal, MomentRefinement,
                    Simulator)
from sktilt.datasets import (
    GK_TRUE_THETA,
    RESONANCE_CASES,
    SLCP_TRUE_THETA,
    TWO_MOONS_SOURCE_ENTROPY,
    bimodal_source_sample,
    bimodal_source_simulator_batch,
    gaussian_linear_mle,
    gaussian_linear_simulator_batch,
    gk_mle,
    gk_simulator_batch,
    poisson_mle,
    poisson_simulator_batch,
    resonance_case,
    resonance_mle,
    resonance_simulator_batch,
    slcp_mle,
    slcp_simulator_batch,
    slcp_source_sample,
    two_moons_simulator_batch,
    two_moons_source_sample,
    weinberg_c,
    weinberg_c_mle,
    weinberg_simulator_batch,
)
from sktilt.metrics import marginal_ks_test


def point_cases():
    rng = np.random.default_rng(2024)
    X = rng.poisson(7.0, size=(20_000, 1)).astype(float)
    lam, se = poisson_mle(X)
    yield ("poisson", poisson_simulator_batch, X, GaussianProposal([np.log(5.0)], [1.0]),
           lambda th: np.exp(th[:1]), np.array([lam]), np.array([se]))
    X = weinberg_simulator_batch(np.tile([42.0, 0.9], (20_000, 1)), np.random.default_rng(2024))
    c, se = weinberg_c_mle(X)
    yield ("weinberg", weinberg_simulator_batch, X, GaussianProposal([45.0, 1.0], [1.0, 0.1]),
           lambda th: np.array([weinberg_c(*th)]), np.array([c]), np.array([se]))
    truth = np.linspace(-1, 1, 10)
    X = gaussian_linear_simulator_batch(np.tile(truth, (1000, 1)), np.random.default_rng(7))
    m, se = gaussian_linear_mle(X)
    yield ("gauss10", gaussian_linear_simulator_batch, X,
           GaussianProposal(np.zeros(10), np.ones(10)), lambda th: th, m, se)
    X = gk_simulator_batch(np.tile(GK_TRUE_THETA, (10_000, 1)), np.random.default_rng(11))
    m, se = gk_mle(X)
    yield ("gk", gk_simulator_batch, X, GaussianProposal([2.5, 1.5, 1.0, 0.3],
                                                         [0.5, 0.5, 0.5, 0.2]),
           lambda th: th, m, se)
    # the estimator's own precision, without the travel: started at the MLE, 3 SE wide
    yield "gk_at_mle", gk_simulator_batch, X, GaussianProposal(m, 3 * se), lambda th: th, m, se
    X = slcp_simulator_batch(np.tile(SLCP_TRUE_THETA, (1000, 1)), np.random.default_rng(13))
    m, se = slcp_mle(X)
    # t2, t3 enter squared: their signs are not identified, and at 0 their score-function
    # gradients vanish by symmetry, so the start picks the positive sign (no loss of
    # generality); judged on |t2|, |t3|
    start = GaussianProposal([0.0, 0.0, 1.0, 1.0, 0.0], np.ones(5))
    ident = lambda th: np.r_[th[0], th[1], abs(th[2]), abs(th[3]), th[4]]  # noqa: E731
    yield "slcp", slcp_simulator_batch, X, start, ident, m, se
    yield "slcp600", slcp_simulator_batch, X, start, ident, m, se, {"max_iter": 600}
    # the narrow-peak family (sktilt.datasets.resonance), each started 20-50 % off in
    # position, width and fraction, with the slope 1 off
    for i, case in enumerate(RESONANCE_CASES):
        X, truth = resonance_case(case, np.random.default_rng(500 + i))
        m, se = resonance_mle(X)
        start = truth * np.array([0.8, 1.5, 1.4, 1.0]) + np.array([0.0, 0.0, 0.0, 1.0])
        prop = GaussianProposal(start, np.maximum(np.abs(truth - start), se * 3),
                                bounds=[(0, 1), (1e-4, 0.5), (1e-3, 0.999), (-20, 20)])
        yield f"peak_{case}", resonance_simulator_batch, X, prop, lambda th: th, m, se


def point_study(names, seeds, moment_step=None, polish_simulations="auto"):
    for name, sim, X, prop, ident, mle, se, *settings in point_cases():
        if name not in names:
            continue
        settings = settings[0] if settings else {}
        if moment_step is not None or polish_simulations != "auto":
            settings = {**settings, "refinement": MomentRefinement(
                0.5 if moment_step is None else moment_step, polish_simulations)}
        zs, sims, conv, t0 = [], [], [], time.perf_counter()
        ks_fit, ks_mle = [], []  # marginal KS p-values: data at theta_ and at the MLE
        for s in range(seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = AVOSimulatorFitter(Simulator(sim, vectorized=True), prop,
                                       random_state=s, **settings).fit(X)
            zs.append((ident(f.theta_) - mle) / se)
            sims.append(f.n_simulations_)
            conv.append(f.converged_)
            if len(f.theta_) == len(mle):  # the MLE is a point of the simulator's
                rng = np.random.default_rng(1000 + s)
                n = min(len(X), 10_000)
                for point, out in ((f.theta_, ks_fit), (mle, ks_mle)):
                    Y = sim(np.tile(point, (n, 1)), rng)
                    out.append(marginal_ks_test(X, Y, rng).p_value)
        z = np.array(zs)
        within = np.mean(np.all(np.abs(z) < 2, axis=1))
        print(f"{name:<9} RMS {np.sqrt((z**2).mean()):6.2f} SE  per parameter "
              f"{np.round(np.sqrt((z**2).mean(0)), 2).tolist()}  all within 2 SE "
              f"{within:4.0%}  worst {np.abs(z).max():6.1f}  converged_ {np.mean(conv):4.0%}"
              f"  simulations {int(np.mean(sims))}  {(time.perf_counter() - t0) / seeds:.1f} "
              "s/fit", flush=True)
        if ks_fit:
            print(f"{'':<9} data simulated at theta_ pass a KS test (1 %) in "
                  f"{np.mean(np.array(ks_fit) > 0.01):4.0%} of fits, at the MLE in "
                  f"{np.mean(np.array(ks_mle) > 0.01):4.0%}", flush=True)


def c2st(A, B, seed=0):
    """Cross-validated accuracy of a classifier telling A from B (0.5: indistinguishable)."""
    X = np.concatenate([A, B])
    y = np.r_[np.zeros(len(A)), np.ones(len(B))]
    clf = MLPClassifier((32, 32), max_iter=500, random_state=seed)
    return cross_val_score(clf, (X - X.mean(0)) / X.std(0), y, cv=5).mean()


def _bimodal_task(seed):
    _, X = bimodal_source_sample(2000, 100 + seed)

    def measures(theta):
        return {"left-mode mass (truth 0.3)": np.mean(theta[:, 0] < -0.25)}
    return bimodal_source_simulator_batch, X, FlowProposal([0.0], [1.0]), measures


def _moons_task(seed):
    _, X = two_moons_source_sample(2000, 100 + seed)
    box = np.random.default_rng(5).uniform(-1.0, 1.0, (20_000, 2))

    def measures(theta):
        # the simulator sees theta only through t1 - t0 and |t0 + t1|: their laws are
        # identified, theta's is not
        return {"mass in the box (truth 1)": np.mean(np.all(np.abs(theta) <= 1, axis=1)),
                "KS t1-t0": ks_2samp(theta[:, 1] - theta[:, 0], box[:, 1] - box[:, 0])[0],
                "KS |t0+t1|": ks_2samp(np.abs(theta.sum(1)), np.abs(box.sum(1)))[0]}
    return (two_moons_simulator_batch, X, FlowProposal([0.0, 0.0], [0.5, 0.5]), measures)


def _slcp_task(seed):
    _, X = slcp_source_sample(2000, 100 + seed)
    box = np.random.default_rng(5).uniform(-3.0, 3.0, (20_000, 5))

    def identified(t):  # the signs of t2, t3 are not identified; t4 enters through tanh
        return np.c_[t[:, :2], np.abs(t[:, 2:4]), np.tanh(t[:, 4])]

    def measures(theta):
        a, b = identified(theta), identified(box)
        return {f"KS {name}": ks_2samp(a[:, j], b[:, j])[0]
                for j, name in enumerate(["t0", "t1", "|t2|", "|t3|", "tanh t4"])}
    return slcp_simulator_batch, X, FlowProposal(np.zeros(5), np.full(5, 1.7)), measures


# name: (task, gammas, the true source's entropy, fitter settings)
SOURCE_TASKS = {"source": (_bimodal_task, (0.0, -0.3), None, {}),
                "moons": (_moons_task, (0.0, -0.1), TWO_MOONS_SOURCE_ENTROPY, {}),
                # 5 parameters need more updates: 300 left C2ST at 0.562 (seed 0)
                "slcp_source": (_slcp_task, (0.0, -0.1), 5 * np.log(6.0),
                                {"max_iter": 600})}


def source_study(name, seeds):
    """Source estimation with FlowProposal: push-forward C2ST, the source's measures,
    entropy (gamma < 0 should give at least gamma = 0's at equal C2ST)."""
    task, gammas, true_entropy, settings = SOURCE_TASKS[name]
    for gamma in gammas:
        rows = []
        for s in range(seeds):
            sim, X, proposal, measures = task(s)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = AVOSimulatorFitter(Simulator(sim, vectorized=True), proposal,
                                       gamma=gamma, random_state=s, **settings).fit(X)
            row = measures(f.sample_parameters(20_000, random_state=0))
            row.update(entropy=f.proposal_.entropy(),
                       C2ST=c2st(X, f.sample(len(X), random_state=1)),
                       converged_=float(f.converged_), simulations=f.n_simulations_)
            rows.append(row)
        cols = {k: np.array([r[k] for r in rows]) for k in rows[0]}
        text = "  ".join(f"{k} {v.mean():.3f} ({v.min():.3f}-{v.max():.3f})"
                         for k, v in cols.items() if k != "simulations")
        bound = "" if true_entropy is None else f" [truth's entropy {true_entropy:.3f}]"
        print(f"{name} gamma={gamma:+.1f}: {text}{bound}  simulations "
              f"{int(cols['simulations'].mean())}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=12)
    parser.add_argument("--moment-step", type=float, default=None,
                        help="MomentRefinement(moment_step=...) of the point fits "
                        "(default: the fitter's; 0 is the paper's algorithm)")
    parser.add_argument("--polish-simulations", default="auto",
                        type=lambda v: v if v == "auto" else int(v),
                        help="MomentRefinement(polish_simulations=...): 'auto' or an int")
    parser.add_argument("--cases", default="poisson,weinberg,gauss10,gk,slcp,slcp600,"
                        "source,moons,slcp_source")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = args.cases.split(",")
    point_study(names, args.seeds, args.moment_step, args.polish_simulations)
    for name in SOURCE_TASKS:
        if name in names:
            source_study(name, args.seeds)
