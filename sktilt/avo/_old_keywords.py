"""The constructor keywords of ``AVOSimulatorFitter`` before it was made of parts.

sktilt 0.2 moved 18 keywords into the fitter's parts (:class:`~sktilt.simulation.Simulator`,
the proposal spec, :class:`~sktilt.avo.Critic`, :class:`~sktilt.avo.MomentRefinement`)
and into ``fit`` (``X_val``). For one release the old keywords still work, in the
constructor and in ``set_params``: :func:`translate` moves each to its new place with a
``FutureWarning`` that names the new spelling.
"""

from __future__ import annotations

__all__ = ["OLD_KEYWORDS", "translate"]

from sklearn.base import clone

from .._deprecation import REMOVED_IN
from .._utils import warn_at_caller

_SIMULATOR = ("vectorized", "timeout", "on_failure", "max_failure_fraction",
              "common_random_numbers")
_CRITIC = {"n_critic": "n_steps", "critic_lr": "lr", "hidden_layer_sizes":
           "hidden_layer_sizes", "penalty": "penalty", "gradient_penalty": "penalty_weight",
           "device": "device"}
_PROPOSAL = ("lr", "baseline", "averaging", "callbacks", "min_scale")
_REFINEMENT = ("moment_step", "polish_simulations")
_DROPPED = ("final_batch_size", "validation_fraction")

#: Every old keyword, in the old signature's order.
OLD_KEYWORDS = ("vectorized", "n_critic", "final_batch_size", "lr", "critic_lr",
                "hidden_layer_sizes", "penalty", "gradient_penalty", "baseline", "min_scale",
                "moment_step", "polish_simulations", "averaging", "on_failure",
                "max_failure_fraction", "common_random_numbers", "validation_fraction",
                "timeout", "callbacks", "device")
assert set(OLD_KEYWORDS) == {*_SIMULATOR, *_CRITIC, *_PROPOSAL, *_REFINEMENT, *_DROPPED}

#: ``translate``'s second result when ``validation_fraction`` was not given.
UNSET = object()


def _warn(old: str, value, instead: str) -> None:
    warn_at_caller(f"{old}={value!r} is deprecated and will be removed in sktilt "
                   f"{REMOVED_IN}; {instead}.", FutureWarning)


def translate(params: dict, old: dict, owner: str = "AVOSimulatorFitter"):
    """Move the old keywords ``old`` into the new parameters ``params``.

    Parameters
    ----------
    params : dict
        The fitter's new parameters (at least ``simulator``, ``proposal``, ``gamma``,
        ``critic`` and ``refinement``); not modified.
    old : dict
        Old keyword -> value.
    owner : str
        Named in the ``TypeError`` of an unknown keyword.

    Returns
    -------
    changes : dict
        The new parameters that change (fresh part objects; the given ones are cloned).
    validation_fraction : float, None or UNSET
        The deprecated ``validation_fraction`` where given.
    """
    from .._simulator import Simulator
    from ._parts import Critic, MomentRefinement
    from ._proposals import GaussianProposal

    unknown = [key for key in old if key not in OLD_KEYWORDS]
    if unknown:
        raise TypeError(f"{owner}.__init__() got an unexpected keyword argument "
                        f"{unknown[0]!r}")
    changes: dict = {}
    validation_fraction = UNSET

    sim = {k: old[k] for k in _SIMULATOR if k in old}
    if sim:
        simulator = params["simulator"]
        simulator = (clone(simulator) if isinstance(simulator, Simulator)
                     else Simulator(simulator))
        changes["simulator"] = simulator.set_params(**sim)
        for key, value in sim.items():
            _warn(key, value, f"use simulator=Simulator(function, {key}={value!r})")

    crit = {k: old[k] for k in _CRITIC if k in old}
    if crit:
        critic = params["critic"]
        critic = Critic() if critic is None else clone(critic)
        changes["critic"] = critic.set_params(**{_CRITIC[k]: v for k, v in crit.items()})
        for key, value in crit.items():
            _warn(key, value, f"use critic=Critic({_CRITIC[key]}={value!r})")

    prop = {k: old[k] for k in _PROPOSAL if k in old}
    if prop:
        proposal = clone(params["proposal"])
        name = type(proposal).__name__
        accepted = proposal.get_params(deep=False)
        for key, value in prop.items():
            if key in accepted:
                proposal.set_params(**{key: value})
                _warn(key, value, f"use proposal={name}(..., {key}={value!r})")
            else:  # min_scale of a FlowProposal: it was ignored
                _warn(key, value, f"a {name} has no {key} (it was ignored); drop it")
        changes["proposal"] = proposal

    ref = {k: old[k] for k in _REFINEMENT if k in old}
    if ref:
        refinement = params["refinement"]
        refinement = (clone(refinement) if isinstance(refinement, MomentRefinement)
                      else MomentRefinement()).set_params(**ref)
        for key, value in ref.items():
            _warn(key, value, f"use refinement=MomentRefinement({key}={value!r})"
                  + (" or refinement=None" if key == "moment_step" and value == 0 else ""))
        point_fit = params["gamma"] > 0 and isinstance(params["proposal"], GaussianProposal)
        explicit_polish = refinement.polish_simulations not in ("auto", 0)
        if refinement.moment_step == 0 and not explicit_polish:
            changes["refinement"] = None  # no moment step, no polish: Algorithm 1
        elif point_fit or explicit_polish:  # the latter raises at fit, as it did
            changes["refinement"] = refinement
        else:  # outside a point fit: no refinement now ("auto" resolves to none)
            changes["refinement"] = "auto"

    if "final_batch_size" in old:
        _warn("final_batch_size", old["final_batch_size"],
              "it is ignored: the batch grows from batch_size on its own")
    if "validation_fraction" in old:
        validation_fraction = old["validation_fraction"]
        _warn("validation_fraction", validation_fraction,
              "pass the held-out observations to fit(X, X_val=...)")
    return changes, validation_fraction
