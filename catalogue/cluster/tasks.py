"""Work on the cluster's workers: a function over items, retried when a worker dies, results in order.

`run_tasks` is the one loop every cluster computation goes through
(extraction's image shards, scoring's and ablation's unit blocks through
`map_blocks`, dissection's probe shards through `map_items`, which runs the
same function here, item after item, without a cluster):

- the items go to the cluster's pool of `Worker` actors (`Cluster.pool`), one
  item per worker at a time; the shared inputs (``context``: labels, row
  masks, a `ModelHandle` …) go into Ray's object store once per call, not
  once per item;
- a worker process that dies (killed, out of memory, its node lost) is
  restarted by Ray and the item it was working on is run again
  (``max_restarts`` / ``max_task_retries``). An item's function returns its
  whole result or nothing, so a retried item leaves no part of a result
  behind; the driver writes the run only when every item is back, in the
  run's one transaction, as the one-process path does;
- a function reports progress (``progress(n_done)``) to a small actor, the
  `ProgressBoard`, that the driver polls, so the CLI's progress bars move
  while the work runs;
- a `UnitcatError` raised on a worker (a file it cannot read, bad input)
  reaches the caller as itself, one line, not as Ray's wrapped traceback.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from catalogue.cluster.session import Cluster
from catalogue.errors import ClusterError, UnitcatError

C = TypeVar("C")
R = TypeVar("R")

#: times an item is run again after its worker died (and a worker is restarted, per item)
DEFAULT_RETRIES = 3
#: seconds between the driver's looks at finished items and progress
POLL_SECONDS = 0.2

#: a function reports how much of its item is done
Report = Callable[[int], None]
TaskFunction = Callable[[Any, Any, Report], Any]


class ProgressBoard:
    """A Ray actor holding, per item, the amount done its function last reported.

    The latest report wins, so an item that is run again counts from where
    its new attempt stands (a shard resumed from its last band, or zero).
    Each `run_tasks` call starts a new round, so late reports of an earlier
    round are dropped.
    """

    def __init__(self) -> None:
        self._round = 0
        self._done: dict[int, int] = {}

    def start(self, round_: int) -> None:
        self._round, self._done = round_, {}

    def report(self, round_: int, key: int, done: int) -> None:
        if round_ == self._round:
            self._done[key] = done

    def snapshot(self) -> dict[int, int]:
        return dict(self._done)


class Worker:
    """A Ray actor that runs item functions; it stays up for the cluster session.

    Model handles keep the loaded model per process (`ModelHandle.load`), so
    consecutive items and steps on a worker share one model.
    """

    def run(
        self, function: TaskFunction, context: Any, item: Any, board: Any, round_: int, key: int
    ) -> Any:
        def progress(done: int) -> None:
            board.report.remote(round_, key, int(done))

        return function(context, item, progress)


def start_pool(cluster: Cluster) -> tuple[list[Any], Any]:
    """`Cluster.slots` `Worker` actors (restarted when their process dies) and a progress board."""
    import ray

    board = ray.remote(num_cpus=0)(ProgressBoard).remote()
    worker_class = ray.remote(Worker).options(
        max_restarts=-1, max_task_retries=DEFAULT_RETRIES, **cluster.worker_resources()
    )
    return [worker_class.remote() for _ in range(cluster.slots)], board


_rounds = iter(range(1, 1 << 62))


def run_tasks(
    cluster: Cluster,
    function: TaskFunction,
    context: Any,
    items: Sequence[Any],
    *,
    on_result: Callable[[int, Any], None] | None = None,
    on_progress: Callable[[Mapping[int, int]], None] | None = None,
) -> list[Any]:
    """``function(context, item, progress)`` for every item on the cluster's workers; results in item order.

    ``function`` must be importable by the workers (a module-level function
    of an installed package). ``on_result(i, result)`` runs in this process
    as each item finishes; ``on_progress({item index: amount done})`` with
    the latest reports, a few times a second.
    """
    import ray

    workers, board = cluster.pool()
    round_ = next(_rounds)
    ray.get(board.start.remote(round_))
    shared = ray.put(context)
    queue = deque(enumerate(items))
    running: dict[Any, tuple[Any, int]] = {}
    results: list[Any] = [None] * len(items)

    def give(worker: Any) -> None:
        if queue:
            i, item = queue.popleft()
            running[worker.run.remote(function, shared, item, board, round_, i)] = (worker, i)

    try:
        for worker in workers:
            give(worker)
        while running:
            ready, _ = ray.wait(list(running), num_returns=len(running), timeout=POLL_SECONDS)
            for ref in ready:
                worker, i = running.pop(ref)
                results[i] = result_of(ref, f"item {i + 1} of {len(items)}")
                if on_result is not None:
                    on_result(i, results[i])
                give(worker)
            if on_progress is not None:
                on_progress(ray.get(board.snapshot.remote()))
    except BaseException:
        cluster.close()  # stops the other items' work; the pool restarts on the next use
        raise
    return results


def result_of(ref: Any, what: str) -> Any:
    """``ray.get(ref)``, with a worker's `UnitcatError` raised as itself and dead workers as one line."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, UnitcatError):
            raise exc.cause from None
        raise
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError) as exc:
        reason = " ".join(str(exc).split())[:160]
        raise ClusterError(
            f"a Ray worker died or could not start on {what} ({reason} …); every node needs the "
            f"same unitcat, torch and Ray, and the work is tried {DEFAULT_RETRIES + 1} times; "
            "see the workers' logs (/tmp/ray/session_latest/logs on each node)."
        ) from exc


def map_items(
    cluster: Cluster | None,
    function: TaskFunction,
    context: Any,
    items: Sequence[Any],
    *,
    on_result: Callable[[int, Any], None] | None = None,
    on_progress: Callable[[Mapping[int, int]], None] | None = None,
) -> list[Any]:
    """``function(context, item, progress)`` for every item: `run_tasks` on ``cluster``, or here,
    one item after the other, without one — the same results, callbacks and progress reports
    ({item index: amount done}), so a computation is written once for both."""
    if cluster is not None:
        return run_tasks(
            cluster, function, context, items, on_result=on_result, on_progress=on_progress
        )
    done: dict[int, int] = {}
    results = []
    for i, item in enumerate(items):

        def progress(amount: int, i: int = i) -> None:
            done[i] = int(amount)
            if on_progress is not None:
                on_progress(dict(done))

        results.append(function(context, item, progress))
        if on_result is not None:
            on_result(i, results[-1])
    return results


# ---------------------------------------------------------------- unit blocks
@dataclass(frozen=True)
class UnitBlock:
    """Units ``start:stop`` of ``layer``: what one task scores (or ablates)."""

    layer: str
    start: int
    stop: int

    @property
    def n_units(self) -> int:
        return self.stop - self.start


def unit_blocks(layer_units: Mapping[str, int], block_units: int) -> list[UnitBlock]:
    """Every layer's units in consecutive blocks of ``block_units`` (the last may be shorter)."""
    return [
        UnitBlock(layer, start, min(units, start + block_units))
        for layer, units in layer_units.items()
        for start in range(0, units, block_units)
    ]


def by_layer(blocks: Sequence[UnitBlock], results: Sequence[R]) -> dict[str, list[R]]:
    """Results of `map_blocks` grouped per layer, in unit order."""
    grouped: dict[str, list[R]] = {}
    for block, result in zip(blocks, results, strict=True):
        grouped.setdefault(block.layer, []).append(result)
    return grouped


@dataclass(frozen=True)
class _BlockCall(Generic[C, R]):
    compute: Callable[[C, UnitBlock], R]

    def __call__(self, context: C, block: UnitBlock, _progress: Report) -> R:
        return self.compute(context, block)


def map_blocks(
    cluster: Cluster | None,
    compute: Callable[[C, UnitBlock], R],
    context: C,
    blocks: Sequence[UnitBlock],
    *,
    on_block: Callable[[UnitBlock], None] | None = None,
) -> list[R]:
    """``compute(context, block)`` for every block, as Ray tasks on ``cluster`` or here without one.

    The unit-block runner of scoring and ablation: ``compute`` is a
    module-level function that reads what it needs (the store's columns, a
    model through a `ModelHandle` in ``context``) and returns the block's
    result as arrays; the caller joins the blocks (`by_layer`) and writes them.
    Results come back in block order, so both paths give the same rows.
    """
    return map_items(
        cluster,
        _BlockCall(compute),
        context,
        blocks,
        on_result=(lambda i, _r: on_block(blocks[i])) if on_block is not None else None,
    )
