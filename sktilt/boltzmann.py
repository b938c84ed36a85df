"""Boltzmann tuning of generative models (BTGM): the :class:`BoltzmannTuner` estimator."""

from __future__ import annotations

__all__ = ["BoltzmannTuner"]

import copy
import math
import warnings
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, _fit_context, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_array, check_is_fitted, validate_data
from skorch.callbacks import ProgressBar

from ._random import draw_seed, torch_seeded
from ._tilt_loop import run_beta_search
from .beta import BetaSearch
from .diagnostics import reference_beta, resolvable_beta, tilted_moments
from .flows import FLOWS, build_transform
from .rare_events import importance_tail_probability, sir_tail_sample
from .samplers import as_base
from .tilting import (
    TiltFlow,
    TiltNet,
    draw_base,
    draw_defensive,
    draw_tilted,
    evaluate_criterion,
    flow_statistics,
    moment_match_init,
    tilted_samples,
)


def _latent_base(self) -> bool:
    return as_base_kind(self.base_sampler) == "latent"


def as_base_kind(base_sampler) -> str:
    from .samplers import LatentSampler  # local: avoid a cycle in type checkers

    if isinstance(base_sampler, LatentSampler):
        return "latent"
    if hasattr(base_sampler, "get_base_sampler") and hasattr(base_sampler, "fit"):
        try:
            return as_base_kind(base_sampler.get_base_sampler())
        except Exception:
            return getattr(base_sampler, "_base_kind", "unknown")
    return "instance"


class BoltzmannTuner(BaseEstimator):
    r"""Tilt a generative model toward high values of a criterion (BTGM).

    Learns ``q_beta(x) ∝ p(x) exp(beta f(x))`` with a normalising flow applied to the
    samples of ``p`` (its latent space for decoder-based models), choosing ``beta`` so
    that ``KL(q_beta || p)`` meets ``kl_budget``. Among all distributions within that
    KL of ``p``, ``q_beta`` has the largest ``E_q f``; with
    ``kl_budget = quantile_budget(rho) = -log(rho)`` it samples (at least as high as)
    the top-``rho`` tail of ``f``, without rejection sampling.

    Parameters
    ----------
    base_sampler : LatentSampler, torch.distributions.Distribution or estimator
        The model ``p``. A :class:`~sktilt.LatentSampler` is tuned in its ``N(0, I)``
        latent space with its decoder frozen; a torch ``Distribution`` over vectors is
        tuned in instance space; an estimator with ``fit`` and ``get_base_sampler`` is
        fitted on ``X`` first (a fitted one is used as is). Never modified.
    criterion : callable
        ``f``: maps a torch batch in instance space ``(n, ...)`` to ``(n,)``. If it is
        differentiable, pathwise gradients are used; otherwise (numpy output or no
        gradient path) score-function gradients. See :mod:`sktilt.criteria`.
    kl_budget : float, default=1.0
        Target ``KL(q || p)`` in nats; ``quantile_budget(rho)`` gives ``-log(rho)``.
    flow : {"realnvp", "nsf", "maf"}, default="realnvp"
        Flow family (:func:`sktilt.flows.build_transform`).
    n_transforms : int, default=4
        Number of coupling / autoregressive layers.
    hidden_features : tuple of int, default=(64, 64)
        Hidden sizes of the flow's hyper-networks.
    init : {"likelihood", "moments"}, default="likelihood"
        Start of the flow. ``"moments"`` sets its global affine map to the first
        ``q_beta``'s mean and scale, estimated by importance weighting the reference
        base samples. ``"likelihood"`` then also fits the flow to those weighted
        samples by maximum likelihood for ``n_steps`` steps (forward KL, which covers
        every mode the samples see) before the reverse-KL steps, which seek modes: a
        multi-modal ``q_beta`` (e.g. peaks reached at different hours of a curve)
        otherwise keeps only the mode nearest the start.
    gradient : {"auto", "pathwise", "score"}, default="auto"
        Estimator of the criterion's gradient; ``"auto"`` detects differentiability.
    batch_size : int, default=256
        Samples of ``q`` per optimisation step.
    n_steps : int, default=300
        Optimisation steps per beta iteration; later iterations warm-start from the
        previous flow. The likelihood start takes as many again (with
        ``init="moments"`` the first iteration runs twice as many instead).
    lr : float, default=5e-3
        Adam learning rate of the flow.
    max_beta_iter : int, default=8
        Largest number of beta updates.
    tol : float, default=0.02
        Relative tolerance on KL; the search stops once
        ``|KL - budget| <= max(tol * budget, 2 * standard error)``. Where ``KL`` grows
        as ``beta^2`` this pins beta within ``tol / 2``. Flows refitted at the same
        beta from different starts differ by 1 to 3 % in KL when ``q_beta`` has
        several modes, so a much smaller ``tol`` mostly buys more iterations.
    n_eval_samples : int, default=32768
        Samples of ``q`` to estimate KL and the moments of f after each beta.
    n_reference_samples : int, default=100_000
        Samples of ``p`` for the importance-sampling reference (BTGM App. C), which
        also gives the starting beta.
    beta_max : float, default=1e4
        Largest beta tried; a budget not reached there is reported unreachable.
    callbacks : list of skorch callbacks or None, default=None
        Extra callbacks of the flow's skorch net, e.g.
        ``skorch.callbacks.Checkpoint(monitor="train_loss_best", ...)`` (the net has no
        validation split) or ``EarlyStopping(monitor="train_loss")``.
    device : str, default="cpu"
        Torch device of the flow and the frozen decoder copy.
    verbose : int, default=0
        0 is silent; 1 prints one line per beta iteration with a progress bar over
        the optimisation steps; 2 adds skorch's per-epoch log.
    random_state : int, RandomState instance or None, default=None
        Seeds the flow's initialisation and all sampling during ``fit``, and the
        default sampling of :meth:`sample`.

    Attributes
    ----------
    beta_ : float
        Selected inverse temperature.
    kl_ : float
        Monte-Carlo estimate of ``KL(q_beta || p)`` (latent space for latent bases, an
        upper bound on the instance-space KL, BTGM App. B).
    kl_se_ : float
        Its standard error.
    criterion_mean_, criterion_std_ : float
        ``E_q f`` and the standard deviation of ``f`` under ``q``.
    criterion_mean_se_ : float
        Standard error of ``criterion_mean_``.
    history_ : list of dict
        One entry per beta iteration: ``beta``, ``kl``, ``kl_se``, ``criterion_mean``,
        ``criterion_var``, ``criterion_third`` (third central moment), and the
        reference values ``reference_kl``, ``reference_criterion_mean``,
        ``reference_ess``.
    n_iter_ : int
        Number of beta iterations run.
    converged_ : bool
        Whether the KL met the budget within tolerance.
    gradient_ : {"pathwise", "score"}
        Gradient estimator used for the criterion.
    reference_ : TiltReference
        Importance-sampling reference of ``q_beta_`` from base samples.
    log_partition_ : float
        Reference ``log Z(beta_) = log E_p exp(beta_ f)``.
    base_ : Base
        The validated base (frozen decoder copy).
    net_ : TiltNet
        The skorch net holding the fitted flow (``net_.module_``) and its history.
    start_flow_ : TiltFlow
        The flow as it started the beta search (see ``init``): the defensive
        component of :meth:`tail_probability` and :meth:`sample_tail`.
    n_features_in_ : int
        Number of features of ``X`` seen in ``fit`` (instance-space bases).

    See Also
    --------
    sktilt.quantile_budget : KL budget for a top-rho tail.
    sktilt.diagnostics.tilted_moments : the closed-form reference.

    Examples
    --------
    >>> import torch
    >>> from sktilt import BoltzmannTuner, LatentSampler
    >>> from sktilt.criteria import LinearCriterion
    >>> base = LatentSampler(torch.nn.Identity(), latent_dim=2)
    >>> tuner = BoltzmannTuner(base, LinearCriterion([1.0, 0.0]), kl_budget=0.5,
    ...                        n_steps=100, random_state=0).fit()
    >>> round(tuner.beta_, 1)  # exact: sqrt(2 * 0.5) / |a| = 1
    1.0
    """

    _parameter_constraints: dict = {
        "base_sampler": "no_validation",
        "criterion": [callable],
        "kl_budget": [Interval(Real, 0, None, closed="neither")],
        "flow": [StrOptions(set(FLOWS))],
        "n_transforms": [Interval(Integral, 0, None, closed="left")],
        "hidden_features": ["array-like", tuple],
        "init": [StrOptions({"likelihood", "moments"})],
        "gradient": [StrOptions({"auto", "pathwise", "score"})],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_beta_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "n_eval_samples": [Interval(Integral, 2, None, closed="left")],
        "n_reference_samples": [Interval(Integral, 2, None, closed="left")],
        "beta_max": [Interval(Real, 0, None, closed="neither")],
        "callbacks": [list, None],
        "device": [str, torch.device],
        "verbose": ["verbose"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        base_sampler,
        criterion,
        *,
        kl_budget=1.0,
        flow="realnvp",
        n_transforms=4,
        hidden_features=(64, 64),
        init="likelihood",
        gradient="auto",
        batch_size=256,
        n_steps=300,
        lr=5e-3,
        max_beta_iter=8,
        tol=0.02,
        n_eval_samples=32768,
        n_reference_samples=100_000,
        beta_max=1e4,
        callbacks=None,
        device="cpu",
        verbose=0,
        random_state=None,
    ):
        self.base_sampler = base_sampler
        self.criterion = criterion
        self.kl_budget = kl_budget
        self.flow = flow
        self.n_transforms = n_transforms
        self.hidden_features = hidden_features
        self.init = init
        self.gradient = gradient
        self.batch_size = batch_size
        self.n_steps = n_steps
        self.lr = lr
        self.max_beta_iter = max_beta_iter
        self.tol = tol
        self.n_eval_samples = n_eval_samples
        self.n_reference_samples = n_reference_samples
        self.beta_max = beta_max
        self.callbacks = callbacks
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Fit the flow and select beta so that ``KL(q_beta || p) ≈ kl_budget``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), default=None
            Training data of the base model when ``base_sampler`` is an estimator to
            fit; otherwise ignored (validated if given).
        y : None
            Ignored.

        Returns
        -------
        self : BoltzmannTuner
        """
        self.base_ = self._resolve_base(X)
        seed = draw_seed(self.random_state)
        with torch_seeded(seed):
            self._fit(seed)
        return self

    def _resolve_base(self, X):
        base_sampler = self.base_sampler
        if hasattr(base_sampler, "get_base_sampler") and hasattr(base_sampler, "fit"):
            if X is not None:
                X = validate_data(self, X, dtype=None)
            try:
                check_is_fitted(base_sampler)
                self.base_estimator_ = base_sampler
            except Exception:
                if X is None:
                    raise ValueError(
                        f"base_sampler {type(base_sampler).__name__} is not fitted: pass "
                        "training data to fit(X), or fit it first."
                    ) from None
                self.base_estimator_ = clone(base_sampler).fit(X)
        elif X is not None:
            validate_data(self, X, allow_nd=True)
        base = as_base(base_sampler if not hasattr(self, "base_estimator_")
                       else self.base_estimator_).to(self.device)
        if not base.latent and X is None:
            self.n_features_in_ = base.dim
        return base

    def _fit(self, seed: int) -> None:
        base, budget = self.base_, float(self.kl_budget)
        device = torch.device(self.device)
        self.gradient_ = self._detect_gradient(base, device)
        eps_ref, f_ref = draw_base(base, self.criterion, self.n_reference_samples, device)
        search = BetaSearch(budget, beta_max=float(self.beta_max))
        beta = reference_beta(f_ref, budget)
        if beta is None:
            # The base samples cannot resolve the budget. Start below it, where they
            # still resolve q_beta: an over-tilted flow relaxes slowly, so the search
            # should approach the budget from below.
            beta = search.first_beta(float(np.var(f_ref)))
            resolvable = resolvable_beta(f_ref)
            if resolvable is not None:
                beta = min(beta, resolvable)

        net = TiltNet(
            TiltFlow(build_transform(base.dim, flow=self.flow, transforms=self.n_transforms,
                                     hidden_features=self.hidden_features)),
            optimizer=torch.optim.Adam, lr=self.lr, max_epochs=1,
            steps_per_epoch=self.n_steps, device=str(device),
            verbose=int(self.verbose > 1), callbacks=self._callbacks(),
        )
        net.initialize()
        moment_match_init(net.module_.transform, eps_ref, f_ref, beta)
        net.base, net.target = base, self.criterion
        net.pathwise = self.gradient_ == "pathwise"
        net.n_samples_per_step = self.batch_size
        self.net_ = net
        if self.init == "likelihood":
            # At a beta the reference samples resolve well (ESS >= 500), so that the
            # weighted fit does not memorise a handful of samples.
            resolvable = resolvable_beta(f_ref, min_ess=500.0)
            beta_init = beta if resolvable is None else min(beta, resolvable)
            net.weighted_samples = tilted_samples(eps_ref, f_ref, beta_init, device)
            net.run_steps(epochs=1, anneal=True)
            net.weighted_samples = None
        self.start_flow_ = copy.deepcopy(net.module_)

        result = run_beta_search(
            net, lambda: self._draw_q(self.n_eval_samples)[:2], f_ref, budget, beta,
            search, max_iter=self.max_beta_iter, tol=self.tol, verbose=self.verbose,
            # a moment-matched start has not travelled yet: twice the steps
            first_epochs=2 if self.init == "moments" else 1,
        )
        self.history_, self.converged_ = result.history, result.converged
        self._select_state(result.states, budget, result.diverged)
        f_ref_final = tilted_moments(f_ref, self.beta_)
        self.reference_ = f_ref_final
        self.log_partition_ = f_ref_final.log_partition
        self.n_iter_ = len(self.history_)

    def _draw_q(self, n, keep_x=False):
        return draw_tilted(self.net_.module_, self.base_, self.criterion, n,
                           torch.device(self.device), keep_x=keep_x)

    def _callbacks(self):
        callbacks = [clone(cb) if hasattr(cb, "get_params") else copy.deepcopy(cb)
                     for cb in (self.callbacks or [])]
        if self.verbose:
            callbacks.append(ProgressBar(batches_per_epoch=self.n_steps))
        return callbacks or None

    def reference_curve(self, betas, *, n_samples=None, random_state=None) -> dict:
        """Closed-form reference of ``E_{q_beta} f`` and ``KL(q_beta || p)`` vs beta.

        Self-normalised importance weights on fresh base samples (BTGM App. C, Eq.
        29-31): compare with the fitted ``(beta_, criterion_mean_, kl_)`` and
        ``history_`` to see how well the flow represents the tilt (a large gap means a
        hard criterion or too small a flow).

        Parameters
        ----------
        betas : array-like of float
            Inverse temperatures at which to evaluate the reference.
        n_samples : int, default=None
            Base samples to draw; ``None`` means ``n_reference_samples``. More samples
            extend the range of betas where the reference is reliable.
        random_state : int, RandomState instance or None, default=None
            Seed of the base samples; ``None`` means the estimator's ``random_state``.

        Returns
        -------
        curve : dict of ndarray
            ``beta``, ``criterion_mean``, ``kl``, ``ess`` (effective sample size: the
            reference is trustworthy where it is large, say > 100).
        """
        check_is_fitted(self)
        rs = self.random_state if random_state is None else random_state
        n = self.n_reference_samples if n_samples is None else int(n_samples)
        with torch_seeded(draw_seed(rs)):
            _, f = draw_base(self.base_, self.criterion, n, torch.device(self.device))
        refs = [tilted_moments(f, float(b)) for b in np.atleast_1d(betas)]
        return {key: np.array([getattr(r, attr) for r in refs]) for key, attr in
                [("beta", "beta"), ("criterion_mean", "criterion_mean"), ("kl", "kl"),
                 ("ess", "ess")]}

    def _select_state(self, states, budget, diverged):
        # states[k + 1] holds the flow of history_[k]; states[0] is the start.
        fitted = range(1, len(states))
        if not fitted:
            idx = 0
        elif diverged:
            idx = len(states) - 1
        else:
            idx = min(fitted, key=lambda k: states[k][1])
        self.net_.module_.load_state_dict(states[idx][2])
        stats = (self.history_[idx - 1] if idx
                 else flow_statistics(*self._draw_q(self.n_eval_samples)[:2], 0.0))
        self.beta_ = float(stats["beta"])
        self.kl_, self.kl_se_ = stats["kl"], stats["kl_se"]
        self.criterion_mean_ = stats["criterion_mean"]
        self.criterion_mean_se_ = stats["criterion_mean_se"]
        self.criterion_std_ = math.sqrt(max(stats["criterion_var"], 0.0))
        if not self.converged_ and not diverged:
            reached = max(h["kl"] for h in self.history_)
            warnings.warn(
                f"kl_budget={budget:.4g} was not met within max_beta_iter="
                f"{self.max_beta_iter} (largest KL reached {reached:.4g}); keeping the "
                f"closest fit, beta={self.beta_:.4g}, KL={self.kl_:.4g}. The budget may be "
                "unreachable for this criterion (f bounded above), or raise max_beta_iter "
                "/ n_steps.",
                ConvergenceWarning, stacklevel=4,
            )

    def _detect_gradient(self, base, device) -> str:
        z = base.sample(8, device=device).requires_grad_(True)
        out = self.criterion(base.to_instance(z))
        evaluate_criterion(lambda _: out, z, check=True)
        differentiable = (isinstance(out, torch.Tensor) and out.requires_grad)
        if self.gradient == "pathwise" and not differentiable:
            raise ValueError(
                "gradient='pathwise' needs a differentiable criterion returning a torch "
                "tensor with a gradient path to its input; use gradient='auto' or 'score'."
            )
        if self.gradient == "score" or not differentiable:
            return "score"
        return "pathwise"

    # --------------------------------------------------------------- sample
    def _draw(self, n_samples, random_state, latent, chunk=65536):
        check_is_fitted(self)
        self._check_n(n_samples, "n_samples")
        seed = self._seed(random_state)
        device = torch.device(self.device)
        out = None
        with torch_seeded(seed), torch.no_grad():
            for start in range(0, n_samples, chunk):
                eps = self.base_.sample(min(chunk, n_samples - start), device=device)
                z, _ = self.net_.module_(eps)
                x = (z if latent else self.base_.to_instance(z)).cpu().numpy()
                if out is None:  # allocate once: bounded extra memory per chunk
                    out = np.empty((n_samples,) + x.shape[1:], dtype=x.dtype)
                out[start:start + len(x)] = x
        return out

    def sample(self, n_samples=1, *, random_state=None):
        """Draw samples of the tuned model ``q_beta`` in instance space (decoded).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state`` (so an int gives the same
            samples at every call, as in :meth:`sklearn.mixture.GaussianMixture.sample`).

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
            Generated in chunks, so memory beyond the output stays bounded.
        """
        return self._draw(n_samples, random_state, latent=False)

    @available_if(_latent_base)
    def sample_latent(self, n_samples=1, *, random_state=None):
        """Draw latent samples ``z ~ q_beta(z)`` (only for :class:`LatentSampler` bases).

        Parameters
        ----------
        n_samples : int, default=1
            Number of samples.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state``.

        Returns
        -------
        Z : ndarray of shape (n_samples, latent_dim)
        """
        return self._draw(n_samples, random_state, latent=True)

    # ----------------------------------------------------------- rare events
    def tail_probability(self, threshold, *, n_samples=100_000, defensive=0.3,
                         random_state=None):
        """Estimate ``P_p(f(x) > threshold)`` by importance sampling from ``q_beta``.

        Unbiased: ``mean_i w_i 1{f(x_i) > t}`` with ``w = p / r`` (latent densities for
        latent bases, where the event is the same) and ``r`` the defensive mixture
        ``(1 - defensive) q_beta + defensive q_start``. Most efficient when the budget
        was ``quantile_budget(rho)`` with ``rho`` near the probability sought.

        ``q_start`` is the flow fitted at the start of ``fit`` (``start_flow_``): with
        ``init="likelihood"`` it covers every tail mode that the reference base
        samples contain. ``q_beta`` seeks modes and can miss small ones; alone, it then
        underestimates the probability and its standard error (seen: -12 % on average
        at a claimed 3 % on the benchmark decoder, whose tail has several modes). The mixture
        bounds the weights there: the estimate is right on average and its standard
        error honest, at the price of a larger standard error.

        Parameters
        ----------
        threshold : float
            The threshold ``t`` on the criterion.
        n_samples : int, default=100_000
            Samples of the proposal to draw.
        defensive : float in [0, 1), default=0.3
            Fraction of the samples drawn from ``q_start``; 0 uses ``q_beta`` alone.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state``.

        Returns
        -------
        estimate : TailEstimate
            ``probability``, ``std_error`` (unpacks as ``p, se = ...``),
            ``relative_error``, ``n_hits``, ``ess`` (effective sample size of the hits).
        """
        check_is_fitted(self)
        self._check_n(n_samples, "n_samples")
        with torch_seeded(self._seed(random_state)):
            log_w, f, _ = self._draw_proposal(n_samples, defensive)
        return importance_tail_probability(f, log_w, float(threshold))

    def _draw_proposal(self, n, defensive, keep_x=False):
        """``log p/r``, ``f`` (and ``x``) at ``n`` draws of the defensive mixture ``r``."""
        defensive = float(defensive)
        if not 0.0 <= defensive < 1.0:
            raise ValueError(f"defensive must be in [0, 1), got {defensive!r}.")
        if defensive == 0.0:
            log_ratio, f, x = self._draw_q(n, keep_x=keep_x)
            return -log_ratio, f, x
        return draw_defensive(self.net_.module_, self.start_flow_, defensive, self.base_,
                              self.criterion, n, torch.device(self.device), keep_x=keep_x)

    def sample_tail(self, n_samples, threshold, *, oversample=10, defensive=0.3,
                    random_state=None):
        """Draw from ``p`` restricted to ``f(x) > threshold`` (sampling-importance-resampling).

        ``n_samples * oversample`` candidates are drawn from the proposal of
        :meth:`tail_probability`; those above the threshold are resampled with
        replacement in proportion to ``p / r``. The draws are approximate (exact as
        ``oversample`` grows); a warning is raised when the effective number of distinct
        candidates is below ``n_samples``.

        Parameters
        ----------
        n_samples : int
            Number of samples to return.
        threshold : float
            The threshold ``t`` on the criterion.
        oversample : int, default=10
            Candidates drawn per returned sample.
        defensive : float in [0, 1), default=0.3
            Fraction of the candidates drawn from ``q_start``, see
            :meth:`tail_probability`; it keeps the modes that ``q_beta`` misses.
        random_state : int, RandomState instance or None, default=None
            ``None`` uses the estimator's ``random_state``.

        Returns
        -------
        X : ndarray of shape (n_samples, ...)
        """
        check_is_fitted(self)
        self._check_n(n_samples, "n_samples")
        self._check_n(oversample, "oversample")
        seed = self._seed(random_state)
        with torch_seeded(seed):
            log_w, f, x = self._draw_proposal(n_samples * oversample, defensive, keep_x=True)
        return sir_tail_sample(x, f, log_w, float(threshold), n_samples,
                               np.random.default_rng(seed))

    @staticmethod
    def _check_n(n, name):
        if isinstance(n, bool) or not isinstance(n, Integral) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}.")

    def _seed(self, random_state) -> int:
        rs = self.random_state if random_state is None else random_state
        return draw_seed(rs)

    # ---------------------------------------------------------------- score
    def score_samples(self, X):
        """Log density ratio ``log q_beta(x) / p(x) = beta f(x) - log Z(beta)``.

        It is exact for the target tilt, in instance space, for every kind of base
        (with a deterministic decoder the latent tilt induces exactly this ratio),
        using the importance-sampling estimate of ``log Z`` (BTGM Eq. 29). Positive
        values mark points that the tuned model favours over the base model.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Points in instance space.

        Returns
        -------
        log_ratio : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        if hasattr(self, "n_features_in_"):
            X = validate_data(self, X, reset=False, allow_nd=True, dtype=np.float32)
        else:  # a latent base fitted without X: any instance shape the decoder makes
            X = check_array(X, allow_nd=True, dtype=np.float32)
        with torch.no_grad():
            x = torch.as_tensor(X, device=torch.device(self.device))
            f = evaluate_criterion(self.criterion, x).double().cpu().numpy()
        return self.beta_ * f - self.log_partition_

    def score(self, X, y=None):
        """Mean of :meth:`score_samples`: average log ``q_beta / p`` over ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Points in instance space.
        y : None
            Ignored.

        Returns
        -------
        score : float
        """
        return float(np.mean(self.score_samples(X)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.non_deterministic = False
        return tags
