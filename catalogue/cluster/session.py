"""Connecting to Ray: a cluster spec ``local:N | auto | ADDRESS``, and what the cluster offers.

- ``local:N`` starts a Ray instance on this machine with N CPUs (and the
  GPUs torch sees) for one command, and stops it afterwards;
- ``auto`` joins the cluster this machine belongs to (``ray start`` was run
  here, or ``RAY_ADDRESS`` is set);
- anything else is the head's address (``10.0.0.5:6379``, or a Ray Client
  ``ray://host:10001`` URL).

Workers get this process's ``UNITCAT_HOME`` (where the demo checkpoints and
run files are) and device settings through the job's runtime environment; the
files themselves must be where the workers can read them (a shared file
system, see the README's "Beyond one machine").
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from catalogue.config import get_settings, resolve_device
from catalogue.errors import ClusterError, ConfigError, InputError

_LOCAL = re.compile(r"local:(\d+)")
#: the worker pool of each connection of this process (by GCS address)
_pools: dict[str, tuple[list[Any], Any]] = {}
#: environment variables workers need to see as this process sees them
FORWARDED_ENV = ("UNITCAT_DEVICE", "TORCH_HOME", "HDF5_USE_FILE_LOCKING")


@dataclass
class Cluster:
    """A Ray cluster this process is connected to (from `connect`), and its pool of workers.

    ``n_cpus`` and ``n_gpus`` are the cluster's totals when it was joined;
    ``started_here``: this `connect` made the connection (and ends it).
    The work runs on `slots` worker actors (`catalogue.cluster.tasks.Worker`),
    one per GPU on a cluster with GPUs and one per CPU otherwise. They are
    started at the first use and kept until the connection ends (one pool
    per connection, shared by every `Cluster` of this process on it), so
    that extraction, scoring and dissection share them: each worker imports
    torch and loads a model once, not once per step.
    """

    spec: str
    address: str
    n_cpus: int
    n_gpus: int
    started_here: bool

    @property
    def slots(self) -> int:
        """How many pieces of work run at once: one per GPU where there are GPUs, else one per CPU."""
        return max(1, self.n_gpus or self.n_cpus)

    def worker_resources(self) -> dict[str, Any]:
        """Ray resources of one worker actor: a CPU, and a GPU where the cluster has GPUs."""
        return {"num_cpus": 1, "num_gpus": 1} if self.n_gpus else {"num_cpus": 1}

    def pool(self) -> tuple[list[Any], Any]:
        """The worker actors and the progress board, started on first use."""
        from catalogue.cluster.tasks import start_pool

        if self.address not in _pools:
            _pools[self.address] = start_pool(self)
        return _pools[self.address]

    def close(self) -> None:
        """Stop the worker actors (a later `pool` starts new ones; the connection is `connect`'s)."""
        workers, board = _pools.pop(self.address, ([], None))
        if workers:
            import ray

            for actor in [*workers, board]:
                ray.kill(actor, no_restart=True)

    def uses_gpus(self, device: str | None) -> bool:
        """Whether tasks for ``device`` (auto, cpu, cuda; None = UNITCAT_DEVICE) take one GPU each."""
        choice = (device or get_settings().device).lower()
        if choice == "cuda" and not self.n_gpus:
            raise ConfigError(
                f"device cuda was asked for, but the Ray cluster {self.spec} has no GPUs; "
                "use cpu or auto.",
                argument="device",
            )
        return choice != "cpu" and self.n_gpus > 0

    def describe(self) -> dict[str, Any]:
        """What a run records about where it ran."""
        return {"cluster": self.spec, "cluster_cpus": self.n_cpus, "cluster_gpus": self.n_gpus}


def resolve_device_for(cluster: Cluster | None, device: str | None) -> str:
    """The device of work that runs here (`resolve_device`: auto becomes cpu or cuda), or on
    ``cluster``: the choice, checked against the cluster's GPUs now, before a run is
    recorded, and resolved by each worker on its own machine."""
    if cluster is None:
        return resolve_device(device)
    choice = resolve_device(device, here=False)
    cluster.uses_gpus(choice)
    return choice


def check_spec(spec: str) -> str:
    """The spec, stripped; an InputError unless it is local:N (N ≥ 1), auto or HOST:PORT."""
    text = spec.strip()
    if not text:
        raise InputError("cluster needs local:N, auto or a Ray head address.", argument="cluster")
    if text.startswith("local"):
        match = _LOCAL.fullmatch(text)
        if match is None or int(match.group(1)) < 1:
            raise InputError(
                f"cluster {text!r}: write local:N with N ≥ 1 CPUs for a local Ray cluster.",
                argument="cluster",
            )
    elif text != "auto":
        host, _, port = text.split("://", 1)[-1].rpartition(":")
        if not host or not port.isdigit():
            raise InputError(
                f"cluster {text!r} is not a Ray head address; write HOST:PORT "
                "(e.g. 10.0.0.5:6379), ray://HOST:PORT, auto or local:N.",
                argument="cluster",
            )
    return text


def _worker_env() -> dict[str, str]:
    env = {"UNITCAT_HOME": str(get_settings().home)}
    env.update({k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)})
    return env


@contextlib.contextmanager
def connect(spec: str | None) -> Iterator[Cluster | None]:
    """Connect to the cluster ``spec`` names for the duration of a command (None: no cluster).

    A process already connected to Ray (a test's cluster, a notebook) keeps
    its connection and it is not shut down on leaving.
    """
    if spec is None:
        yield None
        return
    text = check_spec(spec)
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - ray is a dependency
        raise ConfigError(
            "a cluster needs the ray package: pip install ray.", argument="cluster"
        ) from exc
    if ray.is_initialized():  # the pool stays for the connection's owner to close
        yield _describe(ray, text, started_here=False)
        return
    local = _LOCAL.fullmatch(text)
    options: dict[str, Any] = {
        "runtime_env": {"env_vars": _worker_env()},
        "logging_level": logging.WARNING,
        "log_to_driver": False,
    }
    if not local and text != "auto":
        _check_reachable(text)
    try:
        if local:
            ray.init(
                address="local", num_cpus=int(local.group(1)), include_dashboard=False, **options
            )
        else:
            ray.init(address=text, **options)
    except ConnectionError as exc:
        hint = (
            "start one with `ray start --head`, or use a local one (local:N)"
            if text == "auto"
            else "check the address (`ray status` on the head prints it)"
        )
        raise ClusterError(f"cannot connect to a Ray cluster at {text!r}; {hint}.") from exc
    cluster = _describe(ray, text, started_here=True)
    try:
        yield cluster
    finally:
        cluster.close()
        ray.shutdown()


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """A ClusterError now if nothing listens at the head's address (Ray itself retries for minutes)."""
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(
            f"nothing answers at {address} ({exc.strerror or exc}); check the head's address "
            "(`ray status` on the head prints it) and that `ray start --head` runs there."
        ) from None


def _describe(ray: Any, spec: str, *, started_here: bool) -> Cluster:
    resources = ray.cluster_resources()
    return Cluster(
        spec=spec,
        address=ray.get_runtime_context().gcs_address,
        n_cpus=int(resources.get("CPU", 0)),
        n_gpus=int(resources.get("GPU", 0)),
        started_here=started_here,
    )
