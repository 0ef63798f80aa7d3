"""Work as Ray tasks: a function over items, retried when a worker dies, results back in order.

`run_tasks` is the one loop every cluster computation goes through (scoring
and ablation through `map_blocks`, dissection's probe shards directly):

- each item is one task; the shared inputs (``context``: labels, row masks,
  a `ModelHandle` …) go into Ray's object store once, not once per task;
- a worker process that dies (killed, out of memory, its node lost) has its
  task run again elsewhere, up to ``max_retries`` times. A task returns its
  whole result or nothing, so a retried item never leaves part of a result
  behind; the driver writes the run only when every item is back, in the
  run's one transaction, as the one-process path does;
- a task reports progress (``progress(n_done)``) to a small actor that the
  driver polls, so the CLI's progress bars move while tasks run;
- a `UnitcatError` raised in a task (a missing file on a worker, bad input)
  reaches the caller as itself, one line, not as Ray's wrapped traceback.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from catalogue.cluster.session import Cluster
from catalogue.errors import ClusterError, UnitcatError

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

#: times a task is run again after its worker died
DEFAULT_RETRIES = 3
#: seconds between the driver's looks at finished tasks and progress
POLL_SECONDS = 0.2

#: a task reports how much of its item is done
Report = Callable[[int], None]
TaskFunction = Callable[[Any, Any, Report], Any]


class ProgressBoard:
    """A Ray actor holding, per item, the amount done its task last reported.

    The latest report wins, so an item whose task is retried counts from where
    its new attempt stands (a shard resumed from its last band, or zero).
    """

    def __init__(self) -> None:
        self._done: dict[int, int] = {}
        self._workers: dict[int, tuple[str, int]] = {}

    def report(self, key: int, done: int, host: str, pid: int) -> None:
        self._done[key] = done
        self._workers[key] = (host, pid)

    def snapshot(self) -> dict[int, int]:
        return dict(self._done)

    def workers(self) -> dict[int, tuple[str, int]]:
        """(host, pid) of the worker that last reported on each item."""
        return dict(self._workers)


def reporter(board: Any, key: int) -> Report:
    """A task's ``progress`` callable (a no-op without a board)."""
    if board is None:
        return lambda _done: None
    host, pid = socket.gethostname(), os.getpid()
    return lambda done: board.report.remote(key, int(done), host, pid)


def progress_board() -> Any:
    """A new `ProgressBoard` actor (it takes no CPU)."""
    import ray

    return ray.remote(num_cpus=0)(ProgressBoard).remote()


def _run_item(function: TaskFunction, context: Any, item: Any, board: Any, key: int) -> Any:
    return function(context, item, reporter(board, key))


def run_tasks(
    cluster: Cluster,
    function: TaskFunction,
    context: Any,
    items: Sequence[Any],
    *,
    device: str | None = None,
    on_result: Callable[[int, Any], None] | None = None,
    on_progress: Callable[[Mapping[int, int]], None] | None = None,
    max_retries: int = DEFAULT_RETRIES,
) -> list[Any]:
    """``function(context, item, progress)`` for every item as a Ray task; the results in item order.

    ``function`` must be importable by the workers (a module-level function of
    an installed package). ``device`` sets each task's resources (one GPU each
    on a cluster with GPUs unless it is ``cpu``). ``on_result(i, result)``
    runs in this process as each task finishes; ``on_progress({item index:
    amount done})`` with the tasks' latest reports, a few times a second.
    """
    import ray

    remote = ray.remote(_run_item).options(
        max_retries=max_retries, retry_exceptions=False, **cluster.resources(device)
    )
    board = progress_board() if on_progress is not None else None
    shared = ray.put(context)
    refs = [remote.remote(function, shared, item, board, i) for i, item in enumerate(items)]
    position = {ref: i for i, ref in enumerate(refs)}
    results: list[Any] = [None] * len(refs)
    pending = list(refs)
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=len(pending), timeout=POLL_SECONDS)
            for ref in ready:
                i = position[ref]
                results[i] = result_of(ref, f"item {i} of {len(refs)}", max_retries)
                if on_result is not None:
                    on_result(i, results[i])
            if board is not None:
                on_progress(ray.get(board.snapshot.remote()))
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if board is not None:
            ray.kill(board)
    return results


def result_of(ref: Any, what: str, max_retries: int) -> Any:
    """``ray.get(ref)``, with a task's `UnitcatError` raised as itself and dead workers as one line."""
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, UnitcatError):
            raise exc.cause from None
        raise
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.RayActorError) as exc:
        raise ClusterError(
            f"a Ray worker died on {what} {max_retries + 1} times; see the workers' logs "
            "(/tmp/ray/session_latest/logs on each node)."
        ) from exc


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
    device: str | None = None,
    on_block: Callable[[UnitBlock], None] | None = None,
) -> list[R]:
    """``compute(context, block)`` for every block, as Ray tasks on ``cluster`` or here without one.

    The unit-block runner of scoring and ablation: ``compute`` is a
    module-level function that reads what it needs (the store's columns, a
    model through a `ModelHandle` in ``context``) and returns the block's
    result as arrays; the caller joins the blocks (`by_layer`) and writes them.
    Results come back in block order, so both paths give the same rows.
    """
    if cluster is None:
        results = []
        for block in blocks:
            results.append(compute(context, block))
            if on_block is not None:
                on_block(block)
        return results
    return run_tasks(
        cluster,
        _BlockCall(compute),
        context,
        blocks,
        device=device,
        on_result=(lambda i, _r: on_block(blocks[i])) if on_block is not None else None,
    )
