"""Beyond one machine: extraction, scoring and dissection on a Ray cluster.

A cluster spec ``local:N | auto | ADDRESS`` (`connect`; the commands'
``--cluster``) hands the work to Ray (https://docs.ray.io); without one
everything runs in one process. The cluster is a strategy of each
computation's one driver, which takes ``cluster=None`` to run here, with one
signature and one set of checks for both. What is distributed, and how the
results stay identical to the one-process path:

- extraction (`catalogue.extraction`, `extract_activations`): the images in
  shards, one HDF5 file per shard written by actors that load the model once
  each from its recipe (`ModelHandle`), one GPU each where the cluster has
  GPUs; the shards read as one store (`catalogue.store.shards`); a re-run
  redoes only the missing or partial shards;
- scoring and ablation (`map_blocks`): blocks of a layer's units as tasks,
  each reading its columns from the store and returning arrays;
- dissection (`catalogue.dissection.dissect`): probe-image shards as tasks
  (`map_items`), in two rounds — each shard's top activations, merged into
  the exact thresholds, then each shard's IoU tallies, summed;
- the driver (the command's process) gets every result back, writes the
  run in its one transaction as before, and shows the same progress bars
  (tasks report to a `ProgressBoard` actor the driver polls). A worker
  process that dies is replaced and its task run again (Ray's
  ``max_retries`` / ``max_restarts``); a task returns all of its result or
  nothing, and a shard resumes from its last complete band.

Modules: `session` (connect, `Cluster`, `resolve_device_for`), `tasks`
(`run_tasks`, `map_items`, `map_blocks`, unit blocks, progress), `handles`
(`ModelHandle`). The block computations live with their computations
(`catalogue.scoring`, `catalogue.ablation.blocks`), below which this package sits.
"""

from catalogue.cluster.session import Cluster, check_spec, connect, resolve_device_for
from catalogue.cluster.tasks import (
    UnitBlock,
    by_layer,
    map_blocks,
    map_items,
    run_tasks,
    unit_blocks,
)

__all__ = [
    "Cluster",
    "UnitBlock",
    "by_layer",
    "check_spec",
    "connect",
    "map_blocks",
    "map_items",
    "resolve_device_for",
    "run_tasks",
    "unit_blocks",
]
