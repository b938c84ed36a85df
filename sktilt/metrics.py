"""Scores of the two estimators.

* :func:`~sktilt.energy_distance`, a two-sample discrepancy between observed and simulated
  data: :meth:`sktilt.AVOSimulatorFitter.score` reports it negated, so that higher is
  better; :func:`energy_test`, its permutation two-sample test, with
  :func:`marginal_ks_test` and the classifier two-sample test :func:`classifier_test`
  the checks after an AVO fit;
* scorers reading a fitted :class:`~sktilt.BoltzmannTuner`'s ``criterion_mean_``,
  ``kl_`` and ``beta_``, gathered in :data:`PARETO_SCORING` to compute the Pareto front
  with a grid search, and :func:`pareto_front_from_cv` to extract it.
"""

from __future__ import annotations

__all__ = [
    "PARETO_SCORING",
    "beta_scorer",
    "classifier_test",
    "default_two_sample_classifier",
    "criterion_mean_scorer",
    "TwoSampleTest",
    "energy_distance",
    "energy_test",
    "kl_scorer",
    "marginal_ks_test",
    "pareto_front_from_cv",
]

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ._utils import column_scale

# Pairwise distances are computed in blocks of this many rows, to bound memory.
_BLOCK = 1024


def _mean_pairwise_distance(A, B, *, same: bool) -> float:
    """Mean Euclidean distance over pairs (a, b); excludes the diagonal when ``same``."""
    total = 0.0
    for i in range(0, A.shape[0], _BLOCK):
        a = A[i:i + _BLOCK]
        sq = (np.sum(a**2, 1)[:, None] + np.sum(B**2, 1)[None, :] - 2.0 * a @ B.T)
        total += np.sqrt(np.maximum(sq, 0.0)).sum()
    if same:
        n = A.shape[0]
        return total / (n * (n - 1))  # the zero diagonal is in the sum, not the count
    return total / (A.shape[0] * B.shape[0])


def energy_distance(X, Y) -> float:
    """Energy distance between two samples (Szekely & Rizzo), unbiased for each term.

    ``D(X, Y) = 2 E|X - Y| - E|X - X'| - E|Y - Y'|`` with Euclidean norms, the
    within-sample means over distinct pairs. The population value is ``>= 0`` and
    ``0`` only when the two distributions are equal; the estimate can be slightly
    negative when they are close. It is not scale-invariant: standardise features
    first when their units differ.

    Parameters
    ----------
    X : array-like of shape (n, d) or (n,)
    Y : array-like of shape (m, d) or (m,)
        ``n, m >= 2``.

    Returns
    -------
    float
    """
    X = np.asarray(X, dtype=float)
    Y = np.asarray(Y, dtype=float)
    X = X[:, None] if X.ndim == 1 else X
    Y = Y[:, None] if Y.ndim == 1 else Y
    if X.ndim != 2 or Y.ndim != 2 or X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must be 2-D with the same number of columns, got "
                         f"{X.shape} and {Y.shape}.")
    if X.shape[0] < 2 or Y.shape[0] < 2:
        raise ValueError("energy_distance needs at least 2 samples in X and in Y.")
    return float(2.0 * _mean_pairwise_distance(X, Y, same=False)
                 - _mean_pairwise_distance(X, X, same=True)
                 - _mean_pairwise_distance(Y, Y, same=True))


# --------------------------------------------------------------------------------------
# Scorers for BoltzmannTuner: the Pareto front (E_q f vs KL) through GridSearchCV.
# They read fitted values, ignoring the test fold: the tuned model's quality is a
# property of q, not of held-out data. Use them with ``refit=False``; the ranks of
# ``kl`` are meaningless (lower KL is not "worse"), only the values matter.

def criterion_mean_scorer(estimator, X=None, y=None) -> float:
    """``E_q f`` of a fitted :class:`~sktilt.BoltzmannTuner` (its ``criterion_mean_``)."""
    return float(estimator.criterion_mean_)


def kl_scorer(estimator, X=None, y=None) -> float:
    """``KL(q || p)`` of a fitted :class:`~sktilt.BoltzmannTuner` (its ``kl_``)."""
    return float(estimator.kl_)


def beta_scorer(estimator, X=None, y=None) -> float:
    """The selected ``beta_`` of a fitted :class:`~sktilt.BoltzmannTuner`."""
    return float(estimator.beta_)


#: ``scoring=PARETO_SCORING`` in ``GridSearchCV(tuner, {"kl_budget": [...]},
#: refit=False)`` fills ``cv_results_`` with ``mean_test_kl`` and
#: ``mean_test_criterion_mean`` (and ``mean_test_beta``): the Pareto front.
PARETO_SCORING = {
    "criterion_mean": criterion_mean_scorer,
    "kl": kl_scorer,
    "beta": beta_scorer,
}


def pareto_front_from_cv(cv_results) -> dict:
    """Extract the Pareto front from ``cv_results_`` of a search with PARETO_SCORING.

    Returns
    -------
    front : dict of ndarray
        ``kl``, ``criterion_mean`` (non-dominated points by increasing KL) and the
        matching ``params``.
    """
    from .tilt._reference import pareto_front

    kl = np.asarray(cv_results["mean_test_kl"], dtype=float)
    crit = np.asarray(cv_results["mean_test_criterion_mean"], dtype=float)
    front_kl, front_crit = pareto_front(kl, crit)
    params = [cv_results["params"][int(np.flatnonzero((kl == k) & (crit == c))[0])]
              for k, c in zip(front_kl, front_crit)]
    return {"kl": front_kl, "criterion_mean": front_crit, "params": params}


# energy_test: samples per side (subsampled beyond): the distance matrix is (2 n)^2.
MAX_PER_SAMPLE = 2000
# marginal_ks_test: rows per side; it costs O(n log n), so it sees five times the
# observations of the energy test and has the power that comes with them (measured on
# g-and-k fits 10 SE off the MLE: p 1e-5 to 1e-14, where the energy test gave 0.05-0.1).
MAX_PER_SAMPLE_MARGINAL = 10_000
N_PERMUTATIONS = 200
# p-values below this level count as distinguishable (the AVO fitter warns).
LEVEL = 0.01


@dataclass(frozen=True)
class TwoSampleTest:
    """Result of :func:`energy_test` or :func:`marginal_ks_test`.

    Attributes
    ----------
    statistic : float
        Energy distance ``2 E|X - Y| - E|X - X'| - E|Y - Y'|`` (standardised units),
        the largest Kolmogorov-Smirnov distance over the columns, or the classifier's
        held-out accuracy (0.5: indistinguishable).
    p_value : float
        Permutation p-value, ``(1 + #{permuted >= observed}) / (1 + n_permutations)``,
        the Bonferroni-combined KS p-value, or the classifier's exact one-sided
        p-value.
    n_observed, n_simulated : int
        Sizes of the two samples compared (for the classifier test, its held-out rows
        of each).
    method : {"energy", "marginal KS", "classifier"}
    """

    statistic: float
    p_value: float
    n_observed: int
    n_simulated: int
    method: str = "energy"

    def distinguishable(self, level: float = LEVEL) -> bool:
        """Whether the test rejects "same distribution" at ``level``."""
        return self.p_value < level


def _group_means(D: np.ndarray, labels: np.ndarray, n_x: int) -> np.ndarray:
    # labels (n, P) in {0, 1} with n_x ones per column: the energy statistic per column.
    a, b = labels, 1.0 - labels
    n_y = D.shape[0] - n_x
    Da = D @ a
    xx = (a * Da).sum(0) / n_x**2
    xy = (b * Da).sum(0) / (n_x * n_y)
    yy = (b * (D @ b)).sum(0) / n_y**2
    return 2.0 * xy - xx - yy


def energy_test(X: np.ndarray, Y: np.ndarray, random_state: np.random.Generator, *,
                n_permutations: int = N_PERMUTATIONS) -> TwoSampleTest:
    """Energy-distance two-sample test of ``X`` (n, p) against ``Y`` (m, p).

    Columns are standardised by the spread of ``X``; each side is subsampled to at most
    :data:`MAX_PER_SAMPLE` rows.

    Parameters
    ----------
    X, Y : ndarray of shape (n, p), (m, p)
    random_state : numpy.random.Generator
        Subsampling and permutations.
    n_permutations : int, default=200

    Returns
    -------
    TwoSampleTest
    """
    rng = random_state
    X, Y = np.asarray(X, dtype=float), np.asarray(Y, dtype=float)
    if len(X) > MAX_PER_SAMPLE:
        X = X[rng.choice(len(X), MAX_PER_SAMPLE, replace=False)]
    if len(Y) > MAX_PER_SAMPLE:
        Y = Y[rng.choice(len(Y), MAX_PER_SAMPLE, replace=False)]
    scale = column_scale(X)
    Z = np.concatenate([X, Y]) / scale
    sq = np.sum(Z**2, 1)
    D = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0))
    n, n_x = len(Z), len(X)
    observed = np.zeros((n, 1))
    observed[:n_x] = 1.0
    perms = np.argsort(rng.random((n_permutations, n)), axis=1)[:, :n_x]
    labels = np.zeros((n, n_permutations))
    labels[perms.T, np.arange(n_permutations)] = 1.0
    stat = float(_group_means(D, observed, n_x)[0])
    null = _group_means(D, labels, n_x)
    p_value = (1.0 + np.sum(null >= stat)) / (1.0 + n_permutations)
    return TwoSampleTest(stat, float(p_value), n_x, len(Y))


def marginal_ks_test(X: np.ndarray, Y: np.ndarray, random_state: np.random.Generator
                     ) -> TwoSampleTest:
    """Kolmogorov-Smirnov test of each column of ``X`` against ``Y``, Bonferroni-combined.

    Blind to dependence between columns (the energy test sees it) but cheap, so it uses
    up to :data:`MAX_PER_SAMPLE_MARGINAL` rows per side and detects small changes of a
    marginal's spread or shape. Exact for continuous columns, conservative with ties.

    Parameters
    ----------
    X, Y : ndarray of shape (n, p), (m, p)
    random_state : numpy.random.Generator
        Subsampling.

    Returns
    -------
    TwoSampleTest
        ``p_value = min(1, p * min_j p_j)``.
    """
    from scipy.stats import ks_2samp

    rng = random_state
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    Y = np.asarray(Y, dtype=float).reshape(len(Y), -1)
    if len(X) > MAX_PER_SAMPLE_MARGINAL:
        X = X[rng.choice(len(X), MAX_PER_SAMPLE_MARGINAL, replace=False)]
    if len(Y) > MAX_PER_SAMPLE_MARGINAL:
        Y = Y[rng.choice(len(Y), MAX_PER_SAMPLE_MARGINAL, replace=False)]
    tests = [ks_2samp(X[:, j], Y[:, j]) for j in range(X.shape[1])]
    p_value = min(1.0, X.shape[1] * min(t.pvalue for t in tests))
    return TwoSampleTest(float(max(t.statistic for t in tests)), float(p_value), len(X),
                         len(Y), "marginal KS")


# classifier_test: rows per side (subsampled beyond); half of them train the classifier.
MAX_PER_SAMPLE_CLASSIFIER = 5000


def default_two_sample_classifier(n_features: int, n_rows: int, random_state: int):
    """The classifier of :func:`classifier_test` for ``n_rows`` training rows: an MLP of
    two layers of ``10 p`` units (at most 64; sbi's C2ST uses ``10 p``).

    From 2 000 rows on it stops early on a tenth of them (a fit of 5 000 rows in 8
    dimensions then takes about 3 s); below, early stopping on a few hundred rows halts
    before the classifier has learnt (measured: it never rejected two 2-D samples of
    150 rows on two crossing lines against a Gaussian of equal covariance, which the
    full 500 iterations reject every time).
    """
    from sklearn.neural_network import MLPClassifier

    width = int(min(64, max(8, 10 * n_features)))
    return MLPClassifier((width, width), max_iter=500, early_stopping=n_rows >= 2000,
                         random_state=random_state)


def classifier_test(X: np.ndarray, Y: np.ndarray, random_state: np.random.Generator, *,
                    classifier=None) -> TwoSampleTest:
    """Classifier two-sample test (C2ST, Lopez-Paz & Oquab 2017) of ``X`` against ``Y``.

    Both sides are subsampled to the same size (at most
    :data:`MAX_PER_SAMPLE_CLASSIFIER`), standardised by the spread of ``X`` and split in
    halves with equal class counts. The classifier learns on one half to tell the
    samples apart; its accuracy on the other half is the statistic. It sees any
    difference the classifier can learn (dependence, shape, several modes), where
    :func:`marginal_ks_test` is blind to dependence and the energy distance loses power
    in several dimensions.

    The p-value is exact: given the classifier and how many held-out rows it labels
    ``Y``, the number of them that are ``Y`` is hypergeometric under "same
    distribution", since the held-out labels are then a random balanced assignment.

    Parameters
    ----------
    X, Y : ndarray of shape (n, p), (m, p)
        ``min(n, m) >= 4``.
    random_state : numpy.random.Generator
        Subsampling, the split and the classifier's seed.
    classifier : scikit-learn classifier or None, default=None
        Cloned before fitting; ``None``: :func:`default_two_sample_classifier`.

    Returns
    -------
    TwoSampleTest
        ``statistic`` the held-out accuracy, ``n_observed = n_simulated`` the held-out
        rows per side.
    """
    from scipy.stats import hypergeom
    from sklearn.base import clone

    rng = random_state
    X = np.asarray(X, dtype=float).reshape(len(X), -1)
    Y = np.asarray(Y, dtype=float).reshape(len(Y), -1)
    n = min(len(X), len(Y), MAX_PER_SAMPLE_CLASSIFIER)
    if n < 4:
        raise ValueError(f"classifier_test needs at least 4 rows on each side, got "
                         f"{len(X)} and {len(Y)}.")
    X = X[rng.choice(len(X), n, replace=False)]
    Y = Y[rng.choice(len(Y), n, replace=False)]
    scale = column_scale(X)
    X, Y = (X - X.mean(0)) / scale, (Y - X.mean(0)) / scale
    half = n // 2
    train = np.concatenate([X[:half], Y[:half]])
    labels = np.r_[np.zeros(half), np.ones(half)]
    seed = int(rng.integers(2**31 - 1))
    clf = (default_two_sample_classifier(X.shape[1], len(train), seed)
           if classifier is None else clone(classifier))
    with warnings.catch_warnings():
        # a classifier that cannot separate the samples need not converge
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(train, labels)
    test_x, test_y = X[half:], Y[half:]
    n_test = len(test_x)
    said_y_on_x = int(np.sum(clf.predict(test_x) == 1))
    said_y_on_y = int(np.sum(clf.predict(test_y) == 1))
    accuracy = (n_test - said_y_on_x + said_y_on_y) / (2 * n_test)
    # Under the null the said_y rows are a random draw from 2 n_test rows, n_test of Y.
    p_value = hypergeom.sf(said_y_on_y - 1, 2 * n_test, n_test, said_y_on_x + said_y_on_y)
    return TwoSampleTest(float(accuracy), float(min(1.0, p_value)), n_test, n_test,
                         "classifier")
