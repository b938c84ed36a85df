"""AdversarialRefiner on two benchmarks, judged by models it was not trained with.

* 25 Gaussians (sd 0.05, means on {-4, -2, 0, 2, 4}^2), the synthetic benchmark of
  discriminator rejection sampling (Azadi et al. 2019) and DDLS (Che et al. 2020). The
  base is the same grid smeared to sd 0.5, so most of its mass lies between the modes.
  Reported per round: the share of samples within 4 sd (0.2) of a mode, the modes
  covered, the worst ``|25 * mass of a mode - 1|`` (mass among the near-mode samples),
  a random-forest two-sample accuracy on held-out data, raw ``E_model e^f``.
* Digits with the project's VAE (decoder means): random-forest two-sample accuracy on
  held-out digits (pixels, and their 8 principal components) and the effective number
  of classes (``exp`` of the entropy of a held-out digit classifier's labels of the
  samples) for the base and each round, with a discriminator on pixels (the default)
  and one on 8 principal components.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_adversarial_refiner.py [--quick]``.
"""

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline

from sktilt import VAE, AdversarialRefiner
from sktilt.tilt import TiltQualityWarning

GRID = np.array([(a, b) for a in (-4.0, -2.0, 0.0, 2.0, 4.0) for b in (-4.0, -2.0, 0.0, 2.0, 4.0)])


def grid_data(n, seed, sd=0.05):
    rng = np.random.default_rng(seed)
    return GRID[rng.integers(len(GRID), size=n)] + sd * rng.standard_normal((n, 2))


def grid_base(sd):
    return torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(torch.ones(len(GRID))),
        torch.distributions.Independent(torch.distributions.Normal(
            torch.tensor(GRID, dtype=torch.float32), sd * torch.ones(len(GRID), 2)), 1))


def mode_stats(x, radius=0.2):
    d = np.linalg.norm(x[:, None] - GRID[None], axis=-1)
    near = d.min(1) < radius
    mass = np.bincount(d.argmin(1)[near], minlength=len(GRID)) / max(near.sum(), 1)
    return {"share_near": near.mean(), "modes": int((mass > 0).sum()),
            "worst_mass_error": float(np.abs(len(GRID) * mass - 1).max())}


def rf_two_sample(held, samples, seed=0):
    Z = np.concatenate([held, samples[:len(held)]])
    y = np.r_[np.ones(len(held)), np.zeros(len(held))]
    rf = RandomForestClassifier(200, n_jobs=1, random_state=seed)
    return float(np.mean(cross_val_score(rf, Z, y, cv=2)))


def report(name, samples, held, extra=""):
    stats = mode_stats(samples)
    print(f"  {name:8s} share near modes {stats['share_near']:.3f}  modes {stats['modes']:2d}/25"
          f"  worst |25 m - 1| {stats['worst_mass_error']:.2f}"
          f"  RF two-sample acc {rf_two_sample(held, samples):.3f}{extra}", flush=True)


def bench_grid(quick):
    print("25 Gaussians (data sd 0.05, base sd 0.5)")
    X, held = grid_data(20_000, 0), grid_data(2_000, 1)
    base = grid_base(0.5)
    tuner_params = {"n_components": 50}
    if quick:
        tuner_params["max_iter"] = 300
    t = time.perf_counter()
    refiner = AdversarialRefiner(base, n_rounds=2, n_model_samples=40_000,
                                 tuner_params=tuner_params, random_state=0).fit(X)
    print(f"  fit {time.perf_counter() - t:.0f} s (2 rounds)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        base_samples = base.sample((20_000,)).numpy()
    report("base", base_samples, held,
           f"  kNN judge {refiner.history_[0]['two_sample_accuracy']:.3f}")
    for r, tuner in enumerate(refiner.tuners_, 1):
        h = refiner.history_[r]
        report(f"round {r}", tuner.sample(20_000, random_state=0), held,
               f"  kNN judge {h['two_sample_accuracy']:.3f}  raw E e^f "
               f"{h['density_ratio_normalizer']:.3f}  KL {h['kl']:.2f}")


def effective_classes(clf, samples):
    labels = clf.predict(samples)
    p = np.bincount(labels, minlength=10) / len(labels)
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def bench_digits(quick):
    print("Digits, VAE decoder means (latent 8)")
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    vae = VAE(latent_dim=8, hidden_layer_sizes=(128, 64), max_iter=60 if quick else 150,
              random_state=0).fit(X_train)
    # The label judge: a classifier of held-out real digits (not the discriminator's family).
    labeller = LogisticRegression(C=1.0, max_iter=2000).fit(X_test, y_test)
    print(f"  data     effective classes {effective_classes(labeller, X_train):.2f}")
    base_samples = vae.sample(2_000, random_state=0)
    print(f"  base     RF two-sample acc {rf_two_sample(X_test, base_samples):.3f}  "
          f"effective classes {effective_classes(labeller, base_samples):.2f}", flush=True)
    # The judge in a feature space: a random forest on the 8 principal components of
    # held-out digits.
    pca = PCA(8).fit(X_test)
    base_pcs = rf_two_sample(pca.transform(X_test), pca.transform(base_samples))
    print(f"           RF two-sample acc on 8 PCs {base_pcs:.3f}")
    tuner_params = {"max_iter": 300} if quick else {}
    for name, classifier in [("pixels", None),
                             ("8 PCs", make_pipeline(PCA(8), HistGradientBoostingClassifier()))]:
        t = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TiltQualityWarning)
            refiner = AdversarialRefiner(vae, classifier=classifier, n_rounds=2,
                                         tuner_params=tuner_params, random_state=0).fit(X_train)
        print(f"  discriminator on {name}: fit {time.perf_counter() - t:.0f} s (2 rounds), "
              f"{sum(issubclass(w.category, TiltQualityWarning) for w in caught)} "
              f"TiltQualityWarning(s); kNN judge (pixels) base "
              f"{refiner.history_[0]['two_sample_accuracy']:.3f}")
        for r, tuner in enumerate(refiner.tuners_, 1):
            h = refiner.history_[r]
            samples = tuner.sample(2_000, random_state=0).reshape(2_000, -1)
            print(f"  round {r}  RF two-sample acc {rf_two_sample(X_test, samples):.3f}  "
                  f"on 8 PCs {rf_two_sample(pca.transform(X_test), pca.transform(samples)):.3f}  "
                  f"effective classes {effective_classes(labeller, samples):.2f}  "
                  f"kNN judge {h['two_sample_accuracy']:.3f}  "
                  f"raw E e^f {h['density_ratio_normalizer']:.3g}  KL {h['kl']:.2f}  "
                  f"held-out disc. log-loss {h['discriminator_log_loss']:.3f}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and epochs")
    parser.add_argument("--only", choices=["grid", "digits"], default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.only in (None, "grid"):
        bench_grid(args.quick)
    if args.only in (None, "digits"):
        bench_digits(args.quick)
