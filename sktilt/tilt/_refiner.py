"""Adversarial refinement of a generative model (BTGM Sec. 4.4): :class:`AdversarialRefiner`.

A discriminator between the data and the model's samples, turned into a *calibrated*
log density ratio ``f ≈ log p_data / p_model`` and self-normalised so that
``E_model exp(f) = 1``, is a criterion whose tilt at ``beta = 1`` is the data
distribution: ``p exp(f) = p_data`` for an exact ratio (discriminator-driven latent
sampling, Che et al. 2020; discriminator rejection sampling, Azadi et al. 2019, is the
rejection-sampling version). BTGM App. F used a raw logit instead, far from a log ratio
(``E_p e^f`` in the tens of thousands), and swept beta: every tilt dropped modes.

This module holds the ratio as a picklable criterion (:class:`LogDensityRatio`), the
tuner run at a fixed beta (``_FixedBetaTuner``) and the estimator.
"""

from __future__ import annotations

__all__ = ["AdversarialRefiner", "LogDensityRatio"]

import copy
import inspect
import math
from numbers import Integral, Real
from typing import Any, Literal

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, _fit_context, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import log_loss
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._deprecation import DEPRECATED
from .._random import as_seed_sequence, draw_seed, torch_seeded
from .._typing import RandomStateLike
from .._utils import (
    check_device,
    check_n_samples,
    draw_in_chunks,
    to_numpy,
    warn_at_caller,
)
from ._bases import as_base
from ._beta_search import BetaFit, SearchResult
from ._criteria import _Criterion
from ._objective import TiltObjective
from ._reference import TiltQualityWarning, tilted_moments
from ._sampling import draw_base
from ._tuner import BoltzmannTuner, _evaluate, _Fitted

# Probabilities are clipped to [floor, 1 - floor] before the logit: a classifier that is
# certain (isotonic calibration can return exactly 0 or 1) gives |f| <= 16, not inf.
_PROBA_FLOOR = 1e-7
# A held-out log-loss below this (about 98 % confidence on the right class) means the
# discriminator separates data and model: the ratio is then a cliff, not a density ratio.
_SEPARATED_LOG_LOSS = 0.05
# Rows per chunk when drawing model samples for the discriminator and the normaliser.
_CHUNK = 8192


class LogDensityRatio(_Criterion):
    """Criterion ``f(x) = sum_r [logit P_r(data | x) + offset_r]`` from fitted classifiers.

    With ``P_r`` a calibrated probability that ``x`` came from the data rather than the
    model of round ``r``, trained on ``n_data`` data and ``n_model`` model samples,
    ``logit P_r + log(n_model / n_data)`` estimates ``log p_data(x) / p_model(x)``
    (Bayes' rule); ``offset_r`` holds that correction and the self-normalisation
    ``-log E_model exp(f_r)``. Not differentiable: the tuner uses score-function
    gradients. A module-level object, so it pickles.

    Parameters
    ----------
    classifiers : list of fitted classifiers
        Each has ``predict_proba``, with the data as class 1.
    offsets : list of float
        One additive constant per classifier.
    """

    def __init__(self, classifiers, offsets):
        self.classifiers = classifiers
        self.offsets = offsets

    def log_ratios(self, X) -> np.ndarray:
        """Each round's term at ``X``, shape ``(n_rounds, n)``; ``X`` numpy or torch."""
        if isinstance(X, torch.Tensor):
            X = to_numpy(X)
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        out = np.empty((len(self.classifiers), len(X)))
        for r, (clf, offset) in enumerate(zip(self.classifiers, self.offsets)):
            p = np.clip(clf.predict_proba(X)[:, 1], _PROBA_FLOOR, 1 - _PROBA_FLOOR)
            out[r] = np.log(p) - np.log1p(-p) + float(offset)
        return out

    def __call__(self, X) -> np.ndarray:
        return self.log_ratios(X).sum(0)


class _FixedBetaTuner(BoltzmannTuner):
    """A :class:`BoltzmannTuner` trained at one given beta instead of steered to a budget.

    Reuses the tuner's steps (base, reference draws, likelihood start, the tilt net) and
    replaces the beta search by one run at ``beta`` with a cosine-decayed learning rate
    (the score-function gradient is noisy: a decaying step lets the flow settle).
    ``kl_budget`` is unused; ``kl_`` is the KL the tilt reached.
    """

    def fit_at_beta(self, beta: float) -> _FixedBetaTuner:
        self._validate_params()
        device = check_device(self.device)
        hidden, max_iter = self._renamed_params()
        base, base_estimator = self._resolve_base(None)
        seed = draw_seed(self.random_state)
        with torch_seeded(seed):
            eps_ref, f_ref = draw_base(base, self.criterion, self._n_reference(base), device)
            gradient = self._detect_gradient(base, self.criterion, device)
            flow, _ = self._start_flow(base, eps_ref, f_ref, beta, device,
                                       np.random.default_rng(seed), hidden)
            start_flow = copy.deepcopy(flow)
            start = BetaFit(None, None, copy.deepcopy(flow.state_dict()))
            objective = TiltObjective(base, self.criterion, self.batch_size,
                                      pathwise=gradient == "pathwise")
            net = self._net(flow, objective, device, user=False)
            steps = self._max_steps(base, max_iter)
            net.run(steps, beta=beta)
            stats, diagnostics = _evaluate(net.module_, base, self.criterion,
                                           self.n_eval_samples, f_ref, beta)
            fit = BetaFit(stats, tilted_moments(f_ref, beta),
                          copy.deepcopy(net.module_.state_dict()), steps, diagnostics)
            result = SearchResult(fits=[start, fit], converged=True, steps=steps)
            self._set_fitted(base, base_estimator, _Fitted(gradient, net, start_flow, result,
                                                           f_ref))
        return self


def _draw_base_instances(base_sampler, n: int, seed: int) -> np.ndarray:
    """``n`` samples of the base model in instance space, flattened, float64."""
    base = as_base(base_sampler)

    def draw(m):
        return (to_numpy(base.to_instance(base.sample(m)), np.float64).reshape(m, -1),)

    with torch_seeded(seed), torch.no_grad():
        return draw_in_chunks(n, _CHUNK, draw)[0]


class AdversarialRefiner(BaseEstimator):
    r"""Refine a generative model toward data with calibrated discriminators (BTGM Sec. 4.4).

    Each round trains a classifier between the data ``X`` and samples of the current
    model, reads it as a log density ratio ``f ≈ log p_data / p_model`` (calibrated on
    held-out folds, corrected for class counts, self-normalised so that
    ``E_model exp(f) = 1`` on fresh model samples), and tilts the model toward ``f`` at
    ``beta = 1`` exactly: for an exact ratio ``p_model exp(f) = p_data``. Round ``r``
    tilts ``q_{r-1}``, and since ``q_r ∝ q_{r-1} e^{f_r} ∝ p e^{f_1 + ... + f_r}``, every
    round tilts the *original* base by the summed ratio at ``beta = 1`` (one
    :class:`BoltzmannTuner` flow over the base, no flow-on-flow). This is exact when each
    round's flow is exact; a flow's own error is what the next round's discriminator
    sees and corrects.

    A tilt only reweights the base: it cannot put mass where the base has none. A model
    whose samples lie off the data (the decoder means of a blurry VAE) keeps them off
    the data; a discriminator then separates the two perfectly (a
    :class:`~sktilt.tilt.TiltQualityWarning` says so) and its ratio is no guide. A
    discriminator that sees features, e.g. ``make_pipeline(PCA(8), classifier)``,
    estimates the ratio of the features' densities instead, and the tilt at ``beta = 1``
    matches the distribution of those features while keeping the model's conditional
    given them.

    Parameters
    ----------
    base_sampler : LatentSampler, torch.distributions.Distribution or estimator
        The model ``p``, anything :class:`BoltzmannTuner` accepts; an unfitted
        estimator with ``fit`` and ``get_base_sampler`` (e.g. :class:`~sktilt.VAE`) is
        fitted on the training part of ``X``. Its samples, flattened, must have
        ``X.shape[1]`` features.
    classifier : classifier or None, default=None
        The discriminator, any scikit-learn classifier with ``predict_proba`` (cloned
        every round), e.g. :class:`~sktilt.TorchClassifier` or a pipeline that
        discriminates on features (``make_pipeline(PCA(8), ...)``: the tilt then matches
        the distribution of those features). ``None`` is
        ``HistGradientBoostingClassifier()``.
    n_rounds : int, default=1
        Discriminator-then-tilt rounds.
    calibration : {"sigmoid", "isotonic"}, default="sigmoid"
        Method of the ``CalibratedClassifierCV`` wrapping the classifier. Isotonic
        calibration is step-wise and can saturate (an unbounded ratio).
    cv : int, default=3
        Folds of the calibration: each fold's classifier is calibrated on the fold it
        did not see.
    n_model_samples : int or None, default=None
        Model samples per discriminator (``None``: as many as training rows, a balanced
        problem). The log-odds are corrected by ``log(n_model / n_data)`` either way.
    n_normalizer_samples : int, default=20000
        Fresh model samples on which ``E_model exp(f)`` is estimated.
    validation_fraction : float, default=0.2
        Fraction of ``X`` held out from the discriminators for the judge's two-sample
        test in ``history_`` (0 disables it).
    judge : classifier or None, default=None
        The two-sample test of ``history_``: its 2-fold cross-validated accuracy between
        held-out data and as many fresh model samples (0.5: indistinguishable). Pick a
        family other than the discriminator's. ``None`` is a 15-nearest-neighbour
        classifier on standardised features.
    tuner_params : dict or None, default=None
        Parameters of the :class:`BoltzmannTuner` of each round (``n_components``,
        ``max_iter``, ``batch_size``, ``lr``, ``n_transforms``, ...); ``kl_budget`` is
        not used (beta is fixed at 1), ``random_state`` is set by this estimator.
    random_state : int, RandomState instance or None, default=None
        Seeds the split, the model samples, the classifiers (when they take a
        ``random_state``) and the tuners.

    Attributes
    ----------
    base_ : object
        The base model the tuner tilts (``base_sampler``, fitted when it was not).
    criterion_ : LogDensityRatio
        The summed, normalised log ratio ``f_1 + ... + f_R``.
    discriminators_ : list of CalibratedClassifierCV
        The fitted discriminator of each round.
    density_ratio_normalizer_ : ndarray of shape (n_rounds,)
        Raw ``E_model exp(f_r)`` before normalisation (1 for a calibrated ratio; far
        from 1 flags a poor discriminator or a model far from the data).
    tuners_ : list of BoltzmannTuner
        The model of each round: round ``r`` tilts the base by ``f_1 + ... + f_r`` at
        ``beta = 1`` (``tuners_[r - 1].sample(n)`` draws it).
    tuner_ : BoltzmannTuner
        ``tuners_[-1]``, the refined model that :meth:`sample` draws.
    history_ : list of dict
        Entry 0 is the base, entry ``r`` round ``r``: ``round``,
        ``two_sample_accuracy`` (the judge on held-out data; NaN without a held-out
        part), ``density_ratio_normalizer``, ``discriminator_log_loss`` (its calibrated
        log-loss on the data and model samples of the round, cross-validated),
        ``kl`` (``KL(q_r || p)`` of the tuner's flow, flow space).
    n_features_in_ : int
        Number of features of ``X``.

    See Also
    --------
    BoltzmannTuner : the tilt at a KL budget.

    Examples
    --------
    >>> import torch
    >>> from sktilt import AdversarialRefiner
    >>> rng = torch.Generator().manual_seed(0)
    >>> X = (1.0 + torch.randn(2000, 1, generator=rng)).numpy()
    >>> base = torch.distributions.MultivariateNormal(torch.zeros(1), 2.0 * torch.eye(1))
    >>> refiner = AdversarialRefiner(base, tuner_params={"max_iter": 100},
    ...                              random_state=0).fit(X)
    >>> refiner.sample(5).shape
    (5, 1)
    """

    _parameter_constraints: dict = {
        "base_sampler": "no_validation",
        "classifier": [HasMethods(["fit", "predict_proba"]), None],
        "n_rounds": [Interval(Integral, 1, None, closed="left")],
        "calibration": [StrOptions({"sigmoid", "isotonic"})],
        "cv": [Interval(Integral, 2, None, closed="left")],
        "n_model_samples": [Interval(Integral, 2, None, closed="left"), None],
        "n_normalizer_samples": [Interval(Integral, 2, None, closed="left")],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "judge": [HasMethods(["fit", "predict"]), None],
        "tuner_params": [dict, None],
        "random_state": ["random_state"],
    }

    def __init__(self, base_sampler: Any, *, classifier: ClassifierMixin | None = None,
                 n_rounds: int = 1, calibration: Literal["sigmoid", "isotonic"] = "sigmoid",
                 cv: int = 3, n_model_samples: int | None = None,
                 n_normalizer_samples: int = 20000, validation_fraction: float = 0.2,
                 judge: ClassifierMixin | None = None, tuner_params: dict[str, Any] | None = None,
                 random_state: RandomStateLike = None) -> None:
        self.base_sampler = base_sampler
        self.classifier = classifier
        self.n_rounds = n_rounds
        self.calibration = calibration
        self.cv = cv
        self.n_model_samples = n_model_samples
        self.n_normalizer_samples = n_normalizer_samples
        self.validation_fraction = validation_fraction
        self.judge = judge
        self.tuner_params = tuner_params
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None) -> AdversarialRefiner:
        """Run ``n_rounds`` rounds of discriminator training and tilting at beta = 1.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data the model is refined toward.
        y : None
            Ignored.

        Returns
        -------
        self : AdversarialRefiner
        """
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2 * self.cv)
        tuner_params = self._check_tuner_params()
        seeds = iter(as_seed_sequence(draw_seed(self.random_state)).generate_state(
            5 * self.n_rounds + 2))
        X_train, X_held = self._split(X, int(next(seeds)))
        base = self._fit_base(X_train)
        self._check_dim(base, X.shape[1])

        def model_samples(n, seed):  # of the current model: the base, then the last tuner
            if tuner is None:
                return _draw_base_instances(base, n, int(seed))
            return tuner.sample(n, random_state=int(seed)).reshape(n, -1).astype(np.float64)

        tuner, tuners, classifiers, offsets, normalizers = None, [], [], [], []
        history = [self._judged({"round": 0}, X_held, model_samples, int(next(seeds)))]
        for r in range(1, self.n_rounds + 1):
            disc, offset, normalizer, log_loss = self._round_ratio(
                r, X_train, X_held, model_samples, seeds)
            classifiers.append(disc)
            offsets.append(offset)
            normalizers.append(normalizer)
            criterion = LogDensityRatio(list(classifiers), list(offsets))
            tuner = _FixedBetaTuner(base, criterion, **{
                **tuner_params, "random_state": int(next(seeds))}).fit_at_beta(1.0)
            tuners.append(tuner)
            history.append(self._judged(
                {"round": r, "density_ratio_normalizer": normalizers[-1],
                 "discriminator_log_loss": log_loss, "kl": tuner.kl_},
                X_held, model_samples, int(next(seeds))))
        self.base_ = base
        self.discriminators_ = classifiers
        self.criterion_ = criterion
        self.density_ratio_normalizer_ = np.array(normalizers)
        self.tuners_ = tuners
        self.tuner_ = tuner
        self.history_ = history
        return self

    def _round_ratio(self, r: int, X_train, X_held, model_samples, seeds):
        """Round ``r``'s calibrated discriminator, its offset (class counts and
        self-normalisation), the raw ``E_model e^f`` and the held-out log-loss."""
        n_model = self.n_model_samples or len(X_train)
        disc = self._fit_discriminator(
            X_train, model_samples(n_model, next(seeds)), int(next(seeds)))
        ratio = LogDensityRatio([disc], [math.log(n_model / len(X_train))])
        fresh = model_samples(self.n_normalizer_samples, next(seeds))
        log_normalizer = _log_mean_exp(ratio(fresh))
        log_loss = _held_out_log_loss(disc, X_held, fresh)
        if log_loss < _SEPARATED_LOG_LOSS:
            warn_at_caller(
                f"Round {r}: the discriminator separates held-out data from model samples "
                f"almost perfectly (log-loss {log_loss:.3g}; log 2 = 0.693 is chance): the "
                "model's samples lie off the data, where no density ratio exists and a tilt "
                "can only reweight them. Refine in a feature space where the two overlap, "
                "e.g. classifier=make_pipeline(PCA(8), HistGradientBoostingClassifier()), "
                "or use a base that covers the data.", TiltQualityWarning)
        return disc, ratio.offsets[0] - log_normalizer, math.exp(log_normalizer), log_loss

    def _check_tuner_params(self) -> dict:
        params = dict(self.tuner_params or {})
        signature = inspect.signature(BoltzmannTuner).parameters
        valid = set(signature) - {"base_sampler", "criterion"}
        unknown = sorted(set(params) - valid)
        if unknown:  # deprecated old names are accepted (the tuner warns), not listed
            current = sorted(k for k in valid if signature[k].default != DEPRECATED)
            raise ValueError(f"tuner_params has unknown BoltzmannTuner parameter(s) "
                             f"{unknown}; valid ones are {current}.")
        params.pop("random_state", None)
        params.pop("kl_budget", None)
        return params

    def _split(self, X, seed: int):
        if self.validation_fraction == 0:
            return X, None
        X_train, X_held = train_test_split(X, test_size=self.validation_fraction,
                                           random_state=seed)
        if len(X_held) < 4 or len(X_train) < 2 * self.cv:
            raise ValueError(
                f"validation_fraction={self.validation_fraction} leaves {len(X_train)} "
                f"training and {len(X_held)} held-out rows of {len(X)}; use more data or "
                "validation_fraction=0.")
        return X_train, X_held

    def _fit_base(self, X_train):
        base = self.base_sampler
        if hasattr(base, "get_base_sampler") and hasattr(base, "fit"):
            try:
                check_is_fitted(base)
            except Exception:  # NotFittedError, or a custom estimator's own check
                base = clone(base).fit(X_train.astype(np.float32))
        as_base(base)  # validates it, with errors that name base_sampler
        return base

    @staticmethod
    def _check_dim(base, n_features: int) -> None:
        sample = _draw_base_instances(base, 2, 0)
        if sample.shape[1] != n_features:
            raise ValueError(
                f"base_sampler draws samples with {sample.shape[1]} features (flattened) "
                f"but X has {n_features}: the refiner compares the two.")

    def _fit_discriminator(self, X_data, X_model, seed: int) -> CalibratedClassifierCV:
        """A classifier of data (class 1) against model samples, calibrated out of fold."""
        classifier = (HistGradientBoostingClassifier() if self.classifier is None
                      else clone(self.classifier))
        if "random_state" in classifier.get_params():
            classifier.set_params(random_state=seed)
        disc = CalibratedClassifierCV(classifier, method=self.calibration, cv=self.cv)
        return disc.fit(np.concatenate([X_data, X_model]),
                        np.r_[np.ones(len(X_data)), np.zeros(len(X_model))])

    def _judged(self, entry: dict, X_held, model_samples, seed: int) -> dict:
        """``entry`` with the judge's two-sample accuracy on held-out data."""
        accuracy = math.nan
        if X_held is not None:
            judge = (make_pipeline(StandardScaler(), KNeighborsClassifier(15))
                     if self.judge is None else clone(self.judge))
            Z = np.concatenate([X_held, model_samples(len(X_held), seed)])
            labels = np.r_[np.ones(len(X_held)), np.zeros(len(X_held))]
            # Stratified 2-fold split of shuffled rows: train on half, test on the other.
            accuracy = float(np.mean(cross_val_score(judge, Z, labels, cv=2)))
        return {**entry, "two_sample_accuracy": accuracy}

    # --------------------------------------------------------------- sample
    def sample(self, n_samples=1, *, random_state=None) -> np.ndarray:
        """Draw samples of the refined model in instance space.

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            Seed of the draws; ``None`` means the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
        """
        check_is_fitted(self)
        return self.tuner_.sample(check_n_samples(n_samples), random_state=random_state)

    def log_density_ratio(self, X) -> np.ndarray:
        """The summed normalised log ratio ``f_1 + ... + f_R`` at ``X``, shape ``(n,)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        f : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.criterion_(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        return tags


def _held_out_log_loss(disc, X_held, X_model) -> float:
    """Log-loss of ``disc`` on held-out data and as many fresh model samples (NaN: none)."""
    if X_held is None:
        return math.nan
    Z = np.concatenate([X_held, X_model[:len(X_held)]])
    labels = np.r_[np.ones(len(X_held)), np.zeros(min(len(X_held), len(X_model)))]
    return float(log_loss(labels, disc.predict_proba(Z)[:, 1], labels=[0, 1]))


def _log_mean_exp(values: np.ndarray) -> float:
    top = float(np.max(values))
    return top + math.log(float(np.mean(np.exp(values - top))))
