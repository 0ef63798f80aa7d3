"""The trials of a 2-AFC study of natural exemplars, from each unit's ranked exemplars (pure).

The task (Borowski et al. ICLR 2021; Zimmermann et al. NeurIPS 2021; the IMI data set,
Zimmermann, Klein & Brendel NeurIPS 2023): a participant sees a unit's minimally
activating reference images on one side and its maximally activating ones on the
other, and chooses which of two query images — one strongly, one weakly activating —
fits the maximal side. Choosing the strongly activating query is correct; the share of
correct answers is the unit's human 2-AFC accuracy.

How the images are chosen (IMI's "fair batches", with the queries taken from the
bucket after the references): for `batches` = B, the (references + 1) · B most
extreme images of each end are cut into references + 1 buckets of B consecutive ranks
(bucket 0 the most extreme); each bucket is shuffled, and batch b takes the b-th image
of every bucket. Its references are the images of buckets 0 … references − 1 and its
query the image of the last bucket, so every reference activates the unit more (the
maximal side) or less (the minimal side) than the query of its end, and no query is
among any batch's references. The references are listed in the order shown: the most
extreme first (IMI shows it first too), the others shuffled.

Tasks: the batch-b trials of all units are shuffled and cut into near-equal tasks of
at most `task_size` trials (IMI: 40), so a task never shows a unit twice; each task
gets `catch_trials` catch trials (IMI: 5 per 40; by default one per 8 trials, at least
one), of units outside the task where there are enough. A catch trial is a normal
trial of its unit whose queries are its most extreme references themselves (IMI uses
max_8 / min_8, which stay among the references), so its answer is obvious. Within a
task the trials are shuffled, and the strongly activating query is shown first in
half of them (the other half rounded down), in shuffled order.

Every random choice comes from `numpy.random.default_rng` seeded with the study's seed
and the unit id or task number, so the same seed gives the same trials, and a unit's
images do not depend on which other units are in the study.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from catalogue.errors import InputError

#: Reference images per side (IMI's n_reference_images).
N_REFERENCES = 9
#: Main trials per task (IMI: 40 per HIT).
TASK_SIZE = 40
#: IMI's share of catch trials: 5 in a task of 40.
CATCH_EVERY = 8


@dataclass(frozen=True)
class Exemplar:
    """An image of the scored set: its index into the extraction run's images, its key
    (file or array key), and the unit's activation on it."""

    image_index: int
    image_key: str | None
    activation: float


@dataclass(frozen=True)
class UnitExemplars:
    """A unit's ranked exemplars: `top` most active first, `bottom` least active first."""

    unit_id: int
    label: str  # how messages name it, e.g. "fc6:3"
    top: Sequence[Exemplar]
    bottom: Sequence[Exemplar]


@dataclass(frozen=True)
class DesignOptions:
    n_references: int = N_REFERENCES
    batches: int = 1
    task_size: int = TASK_SIZE
    catch_trials: int | None = None  # per task; None: one per CATCH_EVERY trials, at least 1
    seed: int = 0

    def check(self) -> None:
        for name, value, low in (
            ("references", self.n_references, 1),
            ("batches", self.batches, 1),
            ("task size", self.task_size, 1),
            ("catch trials", self.catch_trials, 0),
            ("seed", self.seed, 0),
        ):
            if value is not None and (not isinstance(value, int) or value < low):
                raise InputError(
                    f"the number of {name} must be a whole number ≥ {low}; got {value!r}."
                )

    def per_end(self) -> int:
        """Exemplars a unit needs from each end."""
        return (self.n_references + 1) * self.batches

    def catch_for(self, n_main: int) -> int:
        if self.catch_trials is not None:
            return self.catch_trials
        return max(1, math.ceil(n_main / CATCH_EVERY))


@dataclass(frozen=True)
class TrialPlan:
    """One trial at its place: task and position count from 1."""

    task: int
    position: int
    unit_id: int
    catch: bool
    batch: int
    max_query_first: bool
    max_query: Exemplar
    min_query: Exemplar
    max_references: tuple[Exemplar, ...]
    min_references: tuple[Exemplar, ...]


@dataclass(frozen=True)
class _Batch:
    references: tuple[Exemplar, ...]  # in the order shown
    query: Exemplar


def _batches(
    ranked: Sequence[Exemplar], options: DesignOptions, rng: np.random.Generator
) -> list[_Batch]:
    """IMI's fair batches of one end (`ranked` most extreme first)."""
    n_ref, n_batches = options.n_references, options.batches
    buckets = [list(ranked[i * n_batches : (i + 1) * n_batches]) for i in range(n_ref + 1)]
    for bucket in buckets:
        rng.shuffle(bucket)  # type: ignore[arg-type]
    out = []
    for b in range(n_batches):
        refs = [buckets[i][b] for i in range(n_ref)]
        rest = refs[1:]
        rng.shuffle(rest)  # type: ignore[arg-type]
        out.append(_Batch((refs[0], *rest), buckets[n_ref][b]))
    return out


def _check_units(units: Sequence[UnitExemplars], options: DesignOptions) -> None:
    need = options.per_end()
    short = [
        f"{u.label} ({len(u.top)} top, {len(u.bottom)} bottom)"
        for u in units
        if len(u.top) < need or len(u.bottom) < need
    ]
    if short:
        raise InputError(
            f"{options.batches} batch(es) of {options.n_references} references + 1 query need "
            f"{need} most and {need} least activating images per unit; "
            f"{_listed(short)} have fewer. Use fewer --batches or --references, or score "
            "the run again (scoring keeps 100 top and 20 bottom images)."
        )
    flat = []
    for u in units:
        top = {e.image_index for e in u.top[:need]}
        bottom = {e.image_index for e in u.bottom[:need]}
        if top & bottom or u.top[need - 1].activation <= u.bottom[need - 1].activation:
            flat.append(u.label)
    if flat:
        raise InputError(
            f"{_listed(flat)} activate(s) as much on their least as on their most activating "
            "images (a constant unit, or fewer scored images than the trials need): no query "
            "pair would have a right answer. Leave them out of --units."
        )


def _listed(items: Sequence[str], most: int = 8) -> str:
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more


def _main_trial(unit: UnitExemplars, top: _Batch, bottom: _Batch, batch: int) -> dict:
    return {
        "unit_id": unit.unit_id,
        "catch": False,
        "batch": batch,
        "max_query": top.query,
        "min_query": bottom.query,
        "max_references": top.references,
        "min_references": bottom.references,
    }


def _catch_trial(unit: UnitExemplars, top: _Batch, bottom: _Batch, batch: int) -> dict:
    """The queries are the most extreme references, shown among the references too."""
    return {
        **_main_trial(unit, top, bottom, batch),
        "catch": True,
        "max_query": top.references[0],
        "min_query": bottom.references[0],
    }


def _catch_units(
    in_task: Sequence[int], all_units: Sequence[int], n: int, rng: np.random.Generator
) -> list[int]:
    """`n` units for a task's catch trials: outside the task first, then any, then repeats."""
    outside = [u for u in all_units if u not in set(in_task)]
    order = list(rng.permutation(outside)) + list(rng.permutation(list(in_task)))
    chosen = [int(u) for u in order[:n]]
    while len(chosen) < n:
        chosen.append(int(rng.choice(all_units)))
    return chosen


def design_trials(units: Sequence[UnitExemplars], options: DesignOptions) -> list[TrialPlan]:
    """Every trial of the study, in task and position order (see the module docstring)."""
    options.check()
    if not units:
        raise InputError("no units to build trials for; name some with --units.")
    ids = [u.unit_id for u in units]
    if len(set(ids)) != len(ids):
        raise InputError("a unit is named twice; give each unit once.")
    _check_units(units, options)
    need = options.per_end()
    by_id: Mapping[int, UnitExemplars] = {u.unit_id: u for u in units}
    batches: dict[int, tuple[list[_Batch], list[_Batch]]] = {}
    for u in units:
        rng = np.random.default_rng([options.seed, u.unit_id, 1])
        batches[u.unit_id] = (
            _batches(u.top[:need], options, rng),
            _batches(u.bottom[:need], options, rng),
        )

    plans: list[TrialPlan] = []
    task = 0
    for b in range(options.batches):
        order = np.random.default_rng([options.seed, 2, b]).permutation(sorted(ids))
        n_tasks = math.ceil(len(ids) / options.task_size)
        for chunk in np.array_split(order, n_tasks):
            task += 1
            rng = np.random.default_rng([options.seed, 3, task])
            members = [int(u) for u in chunk]
            trials = [_main_trial(by_id[u], batches[u][0][b], batches[u][1][b], b) for u in members]
            for u in _catch_units(members, sorted(ids), options.catch_for(len(members)), rng):
                trials.append(_catch_trial(by_id[u], batches[u][0][b], batches[u][1][b], b))
            shuffled = [trials[i] for i in rng.permutation(len(trials))]
            sides = np.arange(len(shuffled)) < (len(shuffled) + 1) // 2
            sides = rng.permutation(sides)
            plans += [
                TrialPlan(task=task, position=i + 1, max_query_first=bool(side), **t)
                for i, (t, side) in enumerate(zip(shuffled, sides, strict=True))
            ]
    return plans


def n_tasks(plans: Sequence[TrialPlan]) -> int:
    return max((p.task for p in plans), default=0)
