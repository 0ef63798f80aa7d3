"""The provenance of a run: what made its numbers, recorded when the run is made.

The same command on two machines can give different figures (a CPU's floating-point
kernels, the thread count, a library version, a GPU's reduction order); the same machine
gives the same figures twice. To tell a bug from a platform difference, every run row
records (`run.provenance`, jsonb; `unitcat runs show N` prints it):

- software: unitcat's version and, run from a git checkout, its commit (with a `-dirty`
  mark when tracked files were changed); Python, torch, torchvision, numpy, h5py and the
  PostgreSQL server's versions;
- the machine: the CPU model, logical CPUs and the CPUs this process may use, the GPUs
  that the run's process used (when it initialised CUDA), the OS;
- the run time: torch's intra- and inter-op thread counts, deterministic algorithms,
  cuDNN's deterministic / benchmark flags, float32 matmul precision, and the seeds and
  environment settings that change results (`PYTHONHASHSEED`, `CUBLAS_WORKSPACE_CONFIG`,
  `OMP_NUM_THREADS`, `MKL_NUM_THREADS`);
- what a pipeline alone knows, passed to `recorded_run(..., provenance=…)`: its seed,
  the device it chose, and the dataset's fingerprint (`dataset_fingerprint`: the image
  count and a hash of the class keys, so two catalogues can tell whether they ran the
  same classes in the same order).

Everything here is cheap (a few milliseconds): versions come from the installed
distributions' metadata unless the module is already imported, and torch is never
imported by this module — a run made without torch (a scoring read from HDF5 in a
process that never loaded it) records torch's installed version and no torch state.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import catalogue

#: Distributions whose versions change numbers; (distribution, module) pairs.
LIBRARIES: tuple[tuple[str, str], ...] = (
    ("torch", "torch"),
    ("torchvision", "torchvision"),
    ("numpy", "numpy"),
    ("h5py", "h5py"),
)
#: Environment variables that change results or their speed.
ENVIRONMENT: tuple[str, ...] = (
    "PYTHONHASHSEED",
    "CUBLAS_WORKSPACE_CONFIG",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
)


def library_version(distribution: str, module: str) -> str | None:
    """The version of a library: its module's `__version__` if imported, else the installed
    distribution's; None if it is not installed."""
    loaded = sys.modules.get(module)
    version = getattr(loaded, "__version__", None) if loaded is not None else None
    if version is not None:
        return str(version)
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


@functools.cache
def code_commit() -> str | None:
    """The git commit of the checkout unitcat runs from (None when installed from a wheel or
    git is missing); `-dirty` when tracked files differ from it."""
    root = Path(catalogue.__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
        changed = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}-dirty" if changed else head or None


@functools.cache
def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _usable_cpus() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def machine() -> dict[str, Any]:
    """The machine: CPU model and counts, OS."""
    return {
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": _usable_cpus(),
        "os": platform.platform(),
        "arch": platform.machine(),
    }


def torch_state() -> dict[str, Any]:
    """torch's settings in this process; empty when the process never imported torch."""
    torch = sys.modules.get("torch")
    if torch is None or not hasattr(torch, "get_num_threads"):
        return {}
    state: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda": torch.version.cuda,
    }
    # only a process that used CUDA is asked about its GPUs (asking would initialise it)
    if torch.cuda.is_initialized():
        state["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return state


def server_version(conn: Any) -> str | None:
    """The PostgreSQL server's version (`SHOW server_version`) on a SQLAlchemy connection."""
    from sqlalchemy import text

    return str(conn.execute(text("SHOW server_version")).scalar_one())


def gather(postgres: str | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The provenance of a run made now in this process (see the module docstring);
    `extra` (seed, device, dataset …) is merged in last."""
    versions = {"unitcat": catalogue.__version__, "python": platform.python_version()}
    versions.update({module: library_version(dist, module) for dist, module in LIBRARIES})
    versions["postgresql"] = postgres
    out: dict[str, Any] = {
        "versions": versions,
        "commit": code_commit(),
        "machine": machine(),
        "torch": torch_state(),
        "environment": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ},
    }
    out.update(dict(extra or {}))
    return out


def dataset_fingerprint(class_keys: Sequence[str], n_images: int | None = None) -> dict[str, Any]:
    """What identifies the data a run read: how many images, how many classes, and a sha256
    of the class keys in their order (one key per line)."""
    digest = hashlib.sha256("\n".join(map(str, class_keys)).encode()).hexdigest()
    return {"n_images": n_images, "n_classes": len(class_keys), "class_keys_sha256": digest}
