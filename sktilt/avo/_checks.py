"""Checks of a finished AVO fit: does it reproduce the data, has it stopped moving?

* the two-sample tests :func:`sktilt.metrics.energy_test`,
  :func:`~sktilt.metrics.marginal_ks_test` and (for several features)
  :func:`~sktilt.metrics.classifier_test` -- after a fit, observations and data
  simulated from the fitted proposal should be draws of one distribution; a small
  p-value means the fit is wrong (or the simulator cannot reproduce the data);
* :func:`location_drift` -- how far the proposal's location still travelled over the
  last quarter of the updates, in units of its final spread: a fit that is still on
  its way (a wide start, too few updates) has not converged.
"""

from __future__ import annotations

__all__ = ["FitConvergenceWarning", "FitQualityWarning", "FitVerdict", "location_drift",
           "two_sample_tests"]

from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from ..metrics import TwoSampleTest, classifier_test, energy_test, marginal_ks_test


class FitQualityWarning(UserWarning):
    """An AVO fit whose result should not be reported as it is: its simulated data can be
    told from the observations, or the data do not identify a parameter."""


class FitConvergenceWarning(FitQualityWarning, ConvergenceWarning):
    """An AVO fit that had not settled: its location was still moving, or its polish
    stopped short (also a scikit-learn :class:`~sklearn.exceptions.ConvergenceWarning`)."""

# Location drift over the last quarter, in final standard deviations, above which a fit
# is reported as not converged (a settled fit wanders by a fraction of its spread).
MAX_DRIFT = 1.0


def location_drift(locs: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Travel of the location over the last quarter of the updates, per coordinate.

    Parameters
    ----------
    locs : ndarray of shape (n_updates, k)
        The proposal's location (mean of the unconstrained variable) per update.
    spread : ndarray of shape (k,)
        The final proposal's standard deviations (same units).

    Returns
    -------
    drift : ndarray of shape (k,)
        ``|slope| * window / spread`` of a least-squares line through the last quarter
        (at least 4 updates); NaN with fewer than 8 updates.
    """
    locs = np.asarray(locs, dtype=float)
    if len(locs) < 8:
        return np.full(locs.shape[1], np.nan)
    window = locs[-max(4, len(locs) // 4):]
    t = np.arange(len(window), dtype=float)
    t -= t.mean()
    slope = t @ (window - window.mean(0)) / (t @ t)
    return np.abs(slope) * len(window) / np.maximum(spread, np.finfo(float).tiny)


def two_sample_tests(observed: np.ndarray, simulated: np.ndarray, rng: np.random.Generator
                     ) -> tuple[TwoSampleTest, TwoSampleTest, TwoSampleTest | None]:
    """The energy, marginal KS and (for two or more features and four rows a side)
    classifier tests of observed vs simulated features, in that order."""
    energy = energy_test(observed, simulated, rng)
    marginal = marginal_ks_test(observed, simulated, rng)
    several = observed.shape[1] > 1 and min(len(observed), len(simulated)) >= 4
    return energy, marginal, classifier_test(observed, simulated, rng) if several else None


@dataclass(frozen=True)
class FitVerdict:
    """What the checks of a finished fit found, and the warning text that says it.

    Attributes
    ----------
    two_sample : TwoSampleTest or None
        The energy test; ``None`` when no simulation of the check succeeded.
    marginal : TwoSampleTest or None
        The marginal KS test (``None`` as above).
    classifier : TwoSampleTest or None
        The classifier test (``None`` as above, and for one feature).
    drift : ndarray of shape (k,)
        :func:`location_drift` of the fit.
    unresolved : list of int
        Parameters whose resolution floor stayed infinite.
    """

    two_sample: TwoSampleTest | None
    marginal: TwoSampleTest | None
    classifier: TwoSampleTest | None
    drift: np.ndarray
    unresolved: list
    simulated_from: str = "from the fitted proposal"

    @property
    def moving(self) -> list:
        return np.flatnonzero(self.drift > MAX_DRIFT).tolist()

    @property
    def tests(self) -> list[TwoSampleTest]:
        return [t for t in (self.two_sample, self.marginal, self.classifier) if t is not None]

    @property
    def distinguishable(self) -> bool:
        return self.two_sample is None or any(t.distinguishable() for t in self.tests)

    @property
    def converged(self) -> bool:
        return not self.moving and not self.distinguishable

    def warnings(self) -> list[tuple[type[FitQualityWarning], str]]:
        """``(category, message)`` per kind of problem: a location still moving is a
        :class:`FitConvergenceWarning`, the other problems one :class:`FitQualityWarning`."""
        problems = self.problems()
        moving = [p for p in problems if "still moving" in p]
        others = [p for p in problems if p not in moving]
        return ([(FitConvergenceWarning, "AVO fit: " + "; ".join(moving) + ".")] * bool(moving)
                + [(FitQualityWarning, "AVO fit: " + "; ".join(others) + ".")] * bool(others))

    def problems(self) -> list[str]:
        """One sentence per failed check (empty when all passed)."""
        out = []
        if self.unresolved:
            out.append(
                f"the fit's resolution estimate saw no effect of parameter(s) "
                f"{self.unresolved} on the simulated features, so their spread was left "
                "as it started (scale_floor_ is inf there): the data may not identify "
                "them, or the starting proposal is too narrow to see their effect")
        if self.moving:
            out.append(
                f"the location of parameter(s) {self.moving} was still moving at the end "
                f"(drift {np.round(self.drift[self.moving], 1).tolist()} final standard "
                "deviations over the last quarter): raise max_iter or start closer")
        if self.distinguishable:
            p = "no valid simulation" if self.two_sample is None else ", ".join(
                f"{t.method} p-value {t.p_value:.3g}" for t in self.tests)
            out.append(
                f"observations and data simulated {self.simulated_from} can be told "
                f"apart ({p}): the fit is off, or the simulator cannot reproduce the data")
        return out
