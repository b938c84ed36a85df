"""How a fit spends its simulations: the batch schedule under ``max_simulations``.

A fit simulates a warm-up batch, one batch per update, the polish's extra simulations
and the self-check's. :func:`plan_simulations` fixes the first two and the check's before
the fit starts; the polish takes what the updates left (:meth:`SimulationPlan.polish_room`).
Under a budget the automatic schedule first lowers its final batch, then every batch
(down to :data:`MIN_BATCH`), then the number of updates; a batch size the user chose is
kept and only the number of updates shrinks.
"""

from __future__ import annotations

__all__ = ["MIN_BATCH", "SimulationPlan", "growing_batches", "plan_simulations"]

from dataclasses import dataclass

import numpy as np

#: The automatic schedule starts at this batch and, from the middle of the fit, grows
#: geometrically over a quarter of the updates to ``n_obs // 10`` (at least
#: :data:`POLISHED_FINAL_BATCH` in a polished fit, whose polish regresses the last
#: quarter's simulations; at most :data:`MAX_FINAL_BATCH`).
AUTO_BATCH, POLISHED_FINAL_BATCH, MAX_FINAL_BATCH = 128, 1000, 1500
#: Under a budget, automatic batches shrink to no fewer simulations than this.
MIN_BATCH = 32
#: A polished fit keeps this share of a budget (after the check) for its polish.
POLISH_SHARE = 0.3
#: The self-check simulates at most a tenth of a budget, and at least this many.
MIN_CHECK = 100
#: A budget must leave room for this many updates.
MIN_UPDATES = 4


def growing_batches(n_updates: int, start: int, final: int) -> np.ndarray:
    """Batches (n_updates,): ``start`` until the middle, then geometric growth to
    ``final`` over a quarter of the updates, ``final`` to the end."""
    it = np.arange(n_updates)
    t = np.clip((it - n_updates / 2) / (n_updates / 4), 0.0, 1.0)
    return np.round(start * (final / start) ** t).astype(int)


@dataclass
class SimulationPlan:
    """Simulations per update (``batches``), of the warm-up and of the self-check;
    ``max_simulations`` the whole fit's budget (``None``: no budget)."""

    batches: np.ndarray
    warm_up: int
    n_check: int
    max_simulations: int | None

    @property
    def n_updates(self) -> int:
        return len(self.batches)

    def polish_room(self, spent: int) -> int | None:
        """Simulations the polish may still run after ``spent``; ``None``: no budget."""
        if self.max_simulations is None:
            return None
        return max(0, self.max_simulations - spent - self.n_check)


def _shrunk_schedule(max_iter: int, final: int, room: float) -> np.ndarray:
    """The automatic schedule within ``room`` (warm-up included): a lower final batch
    first, then smaller batches throughout, then fewer updates of :data:`MIN_BATCH`."""
    for f in np.geomspace(final, AUTO_BATCH, 24).astype(int):
        batches = growing_batches(max_iter, AUTO_BATCH, f)
        if batches.sum() + AUTO_BATCH <= room:
            return batches
    per_update = int(room // (max_iter + 1))
    if per_update >= MIN_BATCH:
        return np.full(max_iter, per_update)
    return np.full(max(0, min(max_iter, int(room) // MIN_BATCH - 1)), MIN_BATCH)


def plan_simulations(*, max_iter: int, batch_size: int | None, n_obs: int, n_check: int,
                     polished: bool, max_simulations: int | None) -> SimulationPlan:
    """The schedule of a fit of ``max_iter`` updates on ``n_obs`` observations.

    ``batch_size=None`` is the automatic schedule (:func:`growing_batches`); an integer
    is every update's batch. ``n_check`` is the check's wish (the observations it
    compares). Raises ``ValueError`` when ``max_simulations`` leaves room for fewer than
    :data:`MIN_UPDATES` updates.
    """
    if batch_size is None:
        final = int(np.clip(n_obs // 10, POLISHED_FINAL_BATCH if polished else AUTO_BATCH,
                            MAX_FINAL_BATCH))
        batches = growing_batches(max_iter, AUTO_BATCH, final)
    else:
        batches = np.full(max_iter, batch_size)
    warm_up = int(batches[0])
    if max_simulations is None:
        return SimulationPlan(batches, warm_up, n_check, None)
    n_check = min(n_check, max(MIN_CHECK, max_simulations // 10))
    room = (max_simulations - n_check) * (1 - POLISH_SHARE if polished else 1.0)
    if batches.sum() + warm_up > room:
        if batch_size is None:
            batches = _shrunk_schedule(max_iter, batches[-1], room)
            warm_up = int(batches[0]) if len(batches) else MIN_BATCH
        else:
            batches = batches[:max(0, int(room - warm_up) // batch_size)]
    if len(batches) < MIN_UPDATES:
        smallest = MIN_UPDATES * (batch_size or MIN_BATCH) + (batch_size or MIN_BATCH)
        raise ValueError(
            f"max_simulations={max_simulations} leaves room for {len(batches)} updates "
            f"(after {n_check} simulations for the self-check): a fit needs at least "
            f"{MIN_UPDATES}. Raise max_simulations (to at least about "
            f"{int(smallest / (1 - POLISH_SHARE if polished else 1)) + n_check}) or lower "
            "batch_size.")
    return SimulationPlan(batches, warm_up, n_check, max_simulations)
