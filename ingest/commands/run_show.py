"""`unitcat runs show N`: one run with its parameters, results and provenance."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.table import Table

from catalogue.query.runs import origin_line
from ingest.console import console


def _versions(p: Mapping[str, Any]) -> str:
    versions = p.get("versions") or {}
    order = ("python", "torch", "torchvision", "numpy", "h5py", "postgresql")
    return " · ".join(f"{k} {versions[k]}" for k in order if versions.get(k))


def _threads(t: Mapping[str, Any]) -> str:
    if not t:
        return "torch not loaded by this run"
    on = {True: "on", False: "off"}
    return (
        f"torch {t.get('threads')} (inter-op {t.get('interop_threads')}) · deterministic "
        f"algorithms {on.get(t.get('deterministic_algorithms'), '?')} · cuDNN deterministic "
        f"{on.get(t.get('cudnn_deterministic'), '?')}, benchmark "
        f"{on.get(t.get('cudnn_benchmark'), '?')} · float32 matmul "
        f"{t.get('float32_matmul_precision')}"
    )


def _dataset(d: Mapping[str, Any] | None) -> str:
    if not d:
        return ""
    images = f"{d['n_images']:,} images · " if d.get("n_images") is not None else ""
    return f"{images}{d.get('n_classes')} classes · class keys sha256 {str(d.get('class_keys_sha256'))[:16]}…"


def provenance_lines(p: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, text) lines of a run's provenance (empty for a run made before it was kept)."""
    if not p:
        return [("provenance", "not recorded (the run is older than provenance records)")]
    versions = p.get("versions") or {}
    machine = p.get("machine") or {}
    torch = p.get("torch") or {}
    commit = (
        f" (commit {p['commit'][:12]}{'-dirty' if str(p['commit']).endswith('-dirty') else ''})"
        if p.get("commit")
        else ""
    )
    lines = [
        ("unitcat", f"{versions.get('unitcat')}{commit}"),
        ("versions", _versions(p)),
        (
            "cpu",
            f"{machine.get('cpu')} · {machine.get('cpu_count')} CPUs ({machine.get('usable_cpus')} usable)",
        ),
        ("os", str(machine.get("os"))),
        ("device", str(p.get("device") or "—")),
        ("gpus", ", ".join(torch.get("gpus") or []) or "none used"),
        ("threads", _threads(torch)),
        ("seed", "—" if p.get("seed") is None else str(p["seed"])),
    ]
    if p.get("dataset"):
        lines.append(("dataset", _dataset(p["dataset"])))
    env = p.get("environment") or {}
    if env:
        lines.append(("environment", " ".join(f"{k}={v}" for k, v in sorted(env.items()))))
    return lines


def show_run(run: str) -> None:
    """Print one run: parameters, status, timings, results and provenance."""
    from catalogue.db.engine import get_engine
    from catalogue.db.migrate import ensure_readable
    from catalogue.query.run_details import run_details

    engine = get_engine()
    ensure_readable(engine)
    r = run_details(engine, run)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    model = f"{r['model']} (checksum {str(r['model_checksum'])[:12]})" if r["model"] else "—"
    rows: list[tuple[str, str]] = [
        ("run", f"{r['id']} · {r['kind']} · {r['state']}"),
        ("label", r["label"] or ""),
        ("model", model),
        ("dataset", r["dataset"] or "—"),
        ("from run", f"{r['parent_id']} ({r['parent_kind']})" if r["parent_id"] else "—"),
        ("baseline of", str(r["baseline_of"]) if r["baseline_of"] else "—"),
        ("started", f"{r['started_at']:%Y-%m-%d %H:%M:%S %Z}"),
        ("took", f"{r['duration_s']:.1f} s" if r["duration_s"] is not None else "—"),
        ("owner", f"pid {r['owner_pid']} on {r['owner_host']}" if r["owner_pid"] else "—"),
        ("file", r["h5_path"] or "—"),
        ("params", json.dumps(r["params"], sort_keys=True)),
        ("results", ", ".join(f"{t} {n:,}" for t, n in r["rows"].items()) or "no rows"),
    ]
    if r["error"]:
        rows.append(("error", r["error"]))
    origin = origin_line(r["imported_from"])
    if origin:
        rows.append(("origin", origin))
    for label, value in rows + provenance_lines(r["provenance"]):
        grid.add_row(label, value)
    console.print(grid, highlight=False)
