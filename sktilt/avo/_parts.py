"""The parts of :class:`~sktilt.AVOSimulatorFitter` besides the simulator and the proposal.

* :class:`Critic` -- the adversarial critic: its network, loss and optimiser;
* :class:`MomentRefinement` -- the moment step of a point fit's second half and the
  final polish, one component.

Both are scikit-learn-style specs (``get_params``, ``clone``, nested parameters such as
``critic__lr`` in a grid search); the fitter builds what it trains from them and never
modifies them.
"""

from __future__ import annotations

__all__ = ["Critic", "MomentRefinement"]

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Literal

import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions

from .._training import StepNet
from .._typing import Device
from .._utils import check_device, check_hidden_units
from ._critics import PENALTIES, CriticObjective, critic_net


class Critic(BaseEstimator):
    """The adversarial critic ``d(x)`` of :class:`~sktilt.AVOSimulatorFitter`.

    An MLP that learns to tell the observations from
    data simulated with the current proposal, trained with Adam; its values drive the
    proposal's updates. Inputs are standardised with the observations' mean and scale,
    so the penalty is measured in units of the data's spread.

    Parameters
    ----------
    penalty : {"wgan-lp", "wgan-gp", "r1"}, default="wgan-lp"
        Critic loss and penalty. ``"wgan-gp"`` is
        Algorithm 1's two-sided penalty; the default one-sided ``"wgan-lp"`` avoids a
        critic stuck with the wrong slope on 1-D data (the two-sided penalty makes slope
        0 a barrier between slopes -1 and +1). ``"r1"`` is the logistic GAN loss with a
        penalty on the observations.
    penalty_weight : float, default=10.0
        Penalty weight ``lambda`` (on standardised inputs).
    hidden_layer_sizes : tuple of int, default=(64, 64)
        Widths of the MLP's hidden layers.
    lr : float, default=3e-3
        Adam step size.
    n_steps : int, default=10
        Number of critic steps per proposal update (Algorithm 1, line 2), not a
        budget for the whole fit (that is the fitter's ``max_iter`` updates,
        :class:`~sktilt.AVOSimulatorFitter`).
    batch_size : int or None, default=None
        Mini-batch size of each critic step (as many observations as simulations);
        ``None``: the fitter's ``batch_size``.
    device : str or torch.device, default="cpu"
        Torch device of the critic and of the features it reads.

    Examples
    --------
    >>> from sktilt import Critic
    >>> Critic(lr=1e-3, n_steps=5)
    Critic(lr=0.001, n_steps=5)
    """

    _parameter_constraints: dict = {
        "penalty": [StrOptions(set(PENALTIES))],
        "penalty_weight": [Interval(Real, 0, None, closed="left")],
        "hidden_layer_sizes": [tuple, list],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "n_steps": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left"), None],
        "device": [str, torch.device],
    }

    def __init__(self, *, penalty: Literal["wgan-lp", "wgan-gp", "r1"] = "wgan-lp",
                 penalty_weight: float = 10.0,
                 hidden_layer_sizes: Sequence[int] = (64, 64), lr: float = 3e-3,
                 n_steps: int = 10, batch_size: int | None = None,
                 device: Device = "cpu") -> None:
        self.penalty = penalty
        self.penalty_weight = penalty_weight
        self.hidden_layer_sizes = hidden_layer_sizes
        self.lr = lr
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.device = device

    def check(self) -> Critic:
        """Validate the parameters (the device is available); return ``self``."""
        self._validate_params()
        check_hidden_units(self.hidden_layer_sizes, "hidden_layer_sizes")
        check_device(self.device)
        return self

    def build(self, X_obs: torch.Tensor, *, default_batch_size: int) -> StepNet:
        """The initialised skorch net of a critic for the observed features ``X_obs``.

        Parameters
        ----------
        X_obs : tensor of shape (n_obs, n_features)
            The observations (their summaries), whose mean and scale standardise the
            critic's inputs.
        default_batch_size : int
            The mini-batch size when ``batch_size`` is None (the fitter's).

        Returns
        -------
        StepNet
            Call ``run(n_steps, X_obs=..., X_sim=..., generator=...)`` to train it.
        """
        self.check()
        batch_size = default_batch_size if self.batch_size is None else self.batch_size
        return critic_net(X_obs, tuple(self.hidden_layer_sizes),
                          CriticObjective(self.penalty, self.penalty_weight, batch_size),
                          lr=self.lr, device=self.device)


class MomentRefinement(BaseEstimator):
    """The moment step and the final polish of a point fit, one component.

    A point fit (a :class:`~sktilt.GaussianProposal` with ``gamma > 0``) becomes a
    method-of-moments fit in its second half and ends with a polish:

    * the **moment step**: after each update of the second half, the location takes
      ``moment_step`` of a second-order step
      (the update of ensemble Kalman inversion). The regression of
      distribution features (the empirical CDF at the observations' octiles, pairwise
      products) on the parameters, the one behind the proposal's ``min_scale="auto"``,
      says where the location should be for the simulated features to meet the
      observed ones; with the proposal as prior, the step moves only along directions
      the data pin (ensemble Kalman inversion). It travels ridges along which
      score-function steps, scaled by a tight proposal, stall.
    * the **polish** (:mod:`sktilt.avo._polish`): distribution features at up to 17
      cut points per column (deciles and tail levels out to 0.5 %, each with at least
      50 observations beyond it) are regressed on the
      parameters (a quadratic model, its curvature shrunk by its evidence) from the
      simulations of the last quarter of the updates and ``polish_simulations`` extra
      ones drawn around the fitted location, and the location moves to where the
      features' mean meets the observations' (the efficient method of moments).

    The moment step without the polish can lose precision on noisy features, so the
    two come together; ``AVOSimulatorFitter(refinement=None)`` runs the paper's
    Algorithm 1 without either. The moment step needs the proposal's
    ``min_scale="auto"`` (its regression).

    Parameters
    ----------
    moment_step : float in [0, 1], default=0.5
        Fraction of the second-order location step taken after each update of the
        second half of the fit; 0: no moment step.
    polish_simulations : int or "auto", default="auto"
        Extra simulations of the polish. ``"auto"``: when ``moment_step > 0``, top the
        pooled simulations up to ``max(n_terms, 0.3 p) n_obs`` (``n_terms = (k + 1)(k +
        2) / 2`` terms of the quadratic model in ``k`` parameters, ``p`` features: the
        model's noise is then about the data's), with at most 60 000 extra, and no
        polish below 2 000 in all. An integer polishes with that many extra simulations
        whatever ``moment_step``; 0: no polish. For an expensive simulator the extra
        simulations are a cost: set an integer, or 0.

    Examples
    --------
    >>> from sktilt import MomentRefinement
    >>> MomentRefinement(polish_simulations=5000)
    MomentRefinement(polish_simulations=5000)
    """

    _parameter_constraints: dict = {
        "moment_step": [Interval(Real, 0, 1, closed="both")],
        "polish_simulations": [StrOptions({"auto"}),
                               Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, moment_step: float = 0.5,
                 polish_simulations: int | Literal["auto"] = "auto") -> None:
        self.moment_step = moment_step
        self.polish_simulations = polish_simulations

    def check(self) -> MomentRefinement:
        """Validate the parameters; return ``self``."""
        self._validate_params()
        return self
