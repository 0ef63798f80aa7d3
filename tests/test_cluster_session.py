"""`--cluster` values, unit blocks and resources: the parts of the Ray path that need no cluster."""

from __future__ import annotations

import socket

import pytest

from catalogue.cluster import Cluster, UnitBlock, by_layer, check_spec, connect, unit_blocks
from catalogue.errors import ClusterError, ConfigError, InputError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (" local:2 ", "local:2"),
        ("auto", "auto"),
        ("10.0.0.5:6379", "10.0.0.5:6379"),
        ("ray://head.example:10001", "ray://head.example:10001"),
    ],
)
def test_cluster_specs_that_are_accepted(spec: str, expected: str) -> None:
    assert check_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("local:0", "N ≥ 1"),
        ("local", "N ≥ 1"),
        ("local:-1", "N ≥ 1"),
        ("", "needs local:N"),
        ("head", "not a Ray head address"),
        ("head:port", "not a Ray head address"),
        ("ray://head", "not a Ray head address"),
    ],
)
def test_cluster_specs_that_are_refused(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        check_spec(spec)


def test_an_address_where_nothing_listens_fails_at_once() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with (
        pytest.raises(ClusterError, match=f"nothing answers at 127.0.0.1:{port}"),
        connect(f"127.0.0.1:{port}"),
    ):
        pass


def test_no_cluster_means_the_one_process_path() -> None:
    with connect(None) as cluster:
        assert cluster is None


def test_work_is_cut_per_gpu_or_per_cpu() -> None:
    cpus = Cluster("local:4", "h:1", n_cpus=4, n_gpus=0, started_here=True)
    gpus = Cluster("auto", "h:1", n_cpus=32, n_gpus=2, started_here=False)
    assert (cpus.slots, gpus.slots) == (4, 2)
    assert cpus.worker_resources() == {"num_cpus": 1}
    assert gpus.worker_resources() == {"num_cpus": 1, "num_gpus": 1}
    assert not cpus.uses_gpus("auto") and gpus.uses_gpus("auto") and not gpus.uses_gpus("cpu")
    with pytest.raises(ConfigError, match="has no GPUs"):
        cpus.uses_gpus("cuda")
    assert cpus.describe() == {"cluster": "local:4", "cluster_cpus": 4, "cluster_gpus": 0}


def test_unit_blocks_cover_every_unit_once_in_order() -> None:
    blocks = unit_blocks({"conv5": 5, "fc6": 4, "fc8": 1}, 2)
    assert blocks == [
        UnitBlock("conv5", 0, 2),
        UnitBlock("conv5", 2, 4),
        UnitBlock("conv5", 4, 5),
        UnitBlock("fc6", 0, 2),
        UnitBlock("fc6", 2, 4),
        UnitBlock("fc8", 0, 1),
    ]
    grouped = by_layer(blocks, [b.n_units for b in blocks])
    assert grouped == {"conv5": [2, 2, 1], "fc6": [2, 2], "fc8": [1]}
    assert unit_blocks({}, 3) == []


def test_a_device_for_cluster_workers_is_checked_here_but_resolved_there() -> None:
    """`resolve_device(…, here=False)`: the driver refuses a bad choice before any run is
    recorded, but leaves `auto` and `cuda` to each worker (this machine's GPUs say nothing
    about the cluster's)."""
    from catalogue.config import resolve_device

    assert resolve_device("AUTO", here=False) == "auto"
    assert resolve_device("cuda", here=False) == "cuda"  # even on a machine without CUDA
    assert resolve_device("cpu", here=False) == "cpu"
    with pytest.raises(ConfigError, match="'tpu' is not one of auto, cpu, cuda"):
        resolve_device("tpu", here=False)
    assert resolve_device("auto") in {"cpu", "cuda"}
