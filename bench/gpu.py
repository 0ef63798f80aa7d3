"""The GPU measurements in one command: extraction, scoring, dissection and ablation on a card.

Meant for the few minutes a machine with a GPU is at hand (its default sizes are chosen
to take under 8 minutes on one H100-class card; not yet measured on one); with
``--tiny --device cpu`` it runs in
seconds on any machine, so it is known to work before a GPU is ever lent. Every
network has seeded random weights (nothing is downloaded); every input is generated.
Each figure is set against a baseline measured in the same run:

1. **Extraction, AlexNet and ResNet-50 at 224², from JPEG files on disk.** The files
   (``--images`` of ``--jpeg-size``, ImageNet-like photographs' size) are written to a
   temporary folder first. Measured: `catalogue.extraction.extract_activations` (the
   paper's four AlexNet layers; ResNet-50's default layers; the HDF5 store written) with
   CPU decoding in ``--workers`` DataLoader processes; the same images decoded on the GPU
   with ``torchvision.io.decode_jpeg(device="cuda")`` (files read by the workers,
   resized and normalised on the card) through the same feature extractor, store not
   written (only where CUDA is present); and, as the baseline, a bare forward loop on
   tensors preloaded on the device.
2. **Scoring at the paper's shape** (721,536 images × 9,448 units × 1,000 classes):
   `score_units` on blocks of units generated on the device (ReLU-like, 80 % zeros),
   against one ``torch.sort`` of the same block along the images; the sum over the
   blocks is the paper's whole layer set.
3. **Network dissection of ResNet-18's layer4** on a generated probe set of Broden's
   shape (224² images, 112² masks, colour and object concepts;
   `catalogue.probe.make_probe`): images/s of `catalogue.dissection.dissect` (both
   passes), extrapolated to Broden's 63,305 images; baseline: the plain forward of the
   same images through layer4.
4. **Ablation of AlexNet fc6**: every unit (or ``--ablate-units``) replaced by 0 alone,
   over ``--ablate-images`` images (`catalogue.ablation.count_correct`, the rest of the
   network on the batch repeated per unit), extrapolated to all 4,096 units; baseline:
   one forward of the same images through the whole network.

Prints a markdown table (for bench/README.md, with the card's name) and writes JSON.

    python bench/gpu.py --json gpu.json                    # on a machine with a GPU
    python bench/gpu.py --tiny --device cpu                # anywhere, in seconds
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

PAPER_IMAGES, PAPER_CLASSES = 721_536, 1_000
PAPER_UNITS = {"conv5": 256, "fc6": 4096, "fc7": 4096, "fc8": 1000}
ALEXNET_LAYERS = ["features.11", "classifier.2", "classifier.5", "classifier.6"]
BRODEN_IMAGES = 63_305
#: each generated probe scene is read this many times (see `repeat_probe`)
PROBE_REPEATS = 4


@dataclass
class Row:
    section: str
    measurement: str
    figure: str
    baseline: str = ""
    ratio: str = ""
    note: str = ""
    value: float | None = None
    baseline_value: float | None = None


@dataclass(frozen=True)
class Sizes:
    images: int
    jpeg_size: tuple[int, int]
    batch: int
    workers: int
    score_images: int
    score_units: int
    score_block: int
    probe_images: int
    ablate_images: int
    ablate_units: int

    @classmethod
    def choose(cls, args: argparse.Namespace) -> Sizes:
        tiny = args.tiny
        workers = args.workers if args.workers is not None else (0 if tiny else _cpus())
        return cls(
            images=args.images or (16 if tiny else 8192),
            jpeg_size=(96, 72) if tiny else (500, 375),
            batch=args.batch_size or (8 if tiny else 256),
            workers=workers,
            score_images=4096 if tiny else PAPER_IMAGES,
            score_units=48 if tiny else sum(PAPER_UNITS.values()),
            score_block=16 if tiny else 1024,
            probe_images=8 if tiny else 1024,
            ablate_images=8 if tiny else 512,
            ablate_units=32 if tiny else args.ablate_units,
        )


def _cpus() -> int:
    return max(1, min(16, len(os.sched_getaffinity(0)) - 1))


def rate(x: float) -> str:
    """A rate with three significant digits below 100, whole numbers above."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    sync(device)
    started = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - started, result


# ------------------------------------------------------------------------ 1. extraction


def _write_jpegs(task: tuple[Path, int, int, tuple[int, int]]) -> int:
    """Photographs' stand-ins: smooth colour fields with texture, JPEG quality 90."""
    from PIL import Image

    folder, start, stop, (w, h) = task
    rng = np.random.default_rng(start)
    for i in range(start, stop):
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        base = np.asarray(Image.fromarray(coarse).resize((w, h), Image.Resampling.BICUBIC))
        noise = rng.normal(0, 12, (h, w, 3))
        pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
        cls = folder / f"c{i % 10:04d}"
        cls.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(cls / f"img_{i:06d}.jpg", quality=90)
    return stop - start


def write_jpegs(folder: Path, sizes: Sizes) -> float:
    """The image folder (10 class folders); seconds spent."""
    started = time.perf_counter()
    parts = max(1, min(sizes.workers or 1, 16))
    edges = np.linspace(0, sizes.images, parts + 1).astype(int)
    tasks = [
        (folder, int(a), int(b), sizes.jpeg_size) for a, b in itertools.pairwise(edges) if b > a
    ]
    if parts == 1:
        for task in tasks:
            _write_jpegs(task)
    else:
        with ProcessPoolExecutor(parts) as pool:
            list(pool.map(_write_jpegs, tasks))
    return time.perf_counter() - started


def _preloaded(model: Any, sizes: Sizes, device: str) -> torch.Tensor:
    """A batch of normalised 224² images on the device (the bare loop's input)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(sizes.batch, 3, 224, 224, generator=g)
    return x.to(device).contiguous(memory_format=torch.channels_last)


def bare_rate(model: Any, sizes: Sizes, device: str) -> float:
    """Images/s of the plain forward on preloaded tensors (as many images as the others)."""
    from catalogue.models import prepared

    x = _preloaded(model, sizes, device)
    batches = max(1, -(-sizes.images // sizes.batch))
    with prepared(model, device=device, channels_last=True) as ready, torch.inference_mode():
        ready.module(x).argmax(1).cpu()  # warm-up (cuDNN's algorithm search)
        seconds, _ = timed(
            lambda: [ready.module(x).argmax(1).cpu() for _ in range(batches)], device
        )
    return batches * sizes.batch / seconds


def extract_rate(
    model: Any, folder: Path, layers: list[str] | None, sizes: Sizes, device: str, out: Path
) -> float:
    """Images/s of the real extraction (CPU decoding in worker processes, store written)."""
    from catalogue.data import ImageFolderDataset
    from catalogue.extraction import extract_activations

    keys = [f"c{i:04d}" for i in range(model.n_outputs)]  # the 10 folders are some of them
    data = ImageFolderDataset(folder, transform=model.transform, class_keys=keys)
    started = time.perf_counter()
    summary = extract_activations(
        model, data, layers, out, device=device, batch_size=sizes.batch, workers=sizes.workers
    )
    seconds = time.perf_counter() - started
    out.unlink()
    return summary.n_images / seconds


class _Files(torch.utils.data.Dataset):
    def __init__(self, paths: list[Path]) -> None:
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        from torchvision.io import read_file

        return read_file(str(self.paths[i]))


def gpu_decode_rate(
    model: Any, folder: Path, layers: list[str], sizes: Sizes, device: str
) -> float:
    """Images/s with the JPEGs decoded on the GPU (files read by workers), resized to 256,
    centre-cropped to 224 and normalised there, through the same feature extractor."""
    from torch.nn import functional
    from torchvision.io import decode_jpeg

    from catalogue.models import IMAGENET_MEAN, IMAGENET_STD, prepared

    paths = sorted(folder.rglob("*.jpg"))
    loader = torch.utils.data.DataLoader(
        _Files(paths), batch_size=sizes.batch, num_workers=sizes.workers, collate_fn=list
    )
    mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)

    def prepare(raw: list[torch.Tensor]) -> torch.Tensor:
        images = torch.stack(decode_jpeg(raw, device=device)).float().div_(255)
        h, w = images.shape[-2:]
        scale = 256 / min(h, w)
        images = functional.interpolate(
            images, size=(round(h * scale), round(w * scale)), mode="bilinear", antialias=True
        )
        top, left = (images.shape[-2] - 224) // 2, (images.shape[-1] - 224) // 2
        images = images[..., top : top + 224, left : left + 224]
        return ((images - mean) / std).contiguous(memory_format=torch.channels_last)

    with prepared(model, device=device, channels_last=True) as ready, torch.inference_mode():
        extractor = ready.extractor(layers)
        extractor(prepare(next(iter(loader))))  # warm-up

        def run() -> int:
            n = 0
            for raw in loader:
                outputs = extractor(prepare(raw))
                for value in outputs.values():
                    (value.amax(dim=(2, 3)) if value.ndim == 4 else value).cpu()
                n += len(raw)
            return n

        seconds, n = timed(run, device)
    return n / seconds


def bench_extraction(sizes: Sizes, device: str, tmp: Path) -> list[Row]:
    from catalogue.models import default_layers, load_model

    folder = tmp / "jpegs"
    folder.mkdir()
    w, h = sizes.jpeg_size
    jpeg_s = write_jpegs(folder, sizes)
    mb = sum(p.stat().st_size for p in folder.rglob("*.jpg")) / 1e6
    rows = [
        Row(
            "extraction",
            "JPEG files written (setup)",
            f"{sizes.images:,} of {w}×{h}",
            note=f"{mb:.0f} MB in {jpeg_s:.1f} s",
        )
    ]
    for arch in ("alexnet", "resnet50"):
        model = load_model(arch)
        layers = ALEXNET_LAYERS if arch == "alexnet" else default_layers(model)
        bare = bare_rate(model, sizes, device)
        cpu = extract_rate(model, folder, layers, sizes, device, tmp / f"{arch}.h5")
        rows.append(
            Row("extraction", f"{arch}: extract_activations, CPU decoding ({sizes.workers} workers)",
                f"{rate(cpu)} images/s", f"bare forward, preloaded: {rate(bare)} images/s",
                f"{cpu / bare:.2f}", f"layers {', '.join(layers)}; store written", cpu, bare)
        )  # fmt: skip
        if device.startswith("cuda"):
            gpu = gpu_decode_rate(model, folder, layers, sizes, device)
            rows.append(
                Row("extraction", f"{arch}: decode_jpeg on the GPU + extractor", f"{rate(gpu)} images/s",
                    f"bare forward, preloaded: {rate(bare)} images/s", f"{gpu / bare:.2f}",
                    "files read by the workers; store not written", gpu, bare)
            )  # fmt: skip
        else:
            rows.append(
                Row("extraction", f"{arch}: decode_jpeg on the GPU", "skipped", note="no CUDA")
            )
    return rows


# ------------------------------------------------------------------------ 2. scoring


def bench_scoring(sizes: Sizes, device: str) -> list[Row]:
    """score_units over the paper's units in blocks generated on the device, against one
    torch.sort of each block (units × images, stable) — the floor of any exact scorer."""
    from catalogue.selectivity import score_units

    g = torch.Generator(device=device).manual_seed(0)
    n = sizes.score_images
    labels = torch.randint(0, PAPER_CLASSES, (n,), generator=g, device=device)
    labels_np = labels.cpu().numpy()
    score_s = sort_s = 0.0
    for start in range(0, sizes.score_units, sizes.score_block):
        units = min(sizes.score_block, sizes.score_units - start)
        prefers = torch.randint(0, PAPER_CLASSES, (units,), generator=g, device=device)
        z = torch.randn(n, units, generator=g, device=device)
        z += 1.5 * (labels[:, None] == prefers[None, :])
        block = torch.clamp_min_(z - 0.8416, 0)
        del z
        t, _ = timed(lambda b=block: torch.sort(b.t().contiguous(), dim=1, stable=True), device)
        sort_s += t
        t, _ = timed(
            lambda b=block: score_units(b, labels_np, PAPER_CLASSES, device=device), device
        )
        score_s += t
        del block
    shape = f"{n:,} images × {sizes.score_units:,} units × {PAPER_CLASSES:,} classes"
    return [
        Row("scoring", f"score_units, {shape}", f"{score_s:.1f} s", f"torch.sort of the same: {sort_s:.1f} s",
            f"{score_s / sort_s:.2f}", f"blocks of {sizes.score_block} units generated on {device}", score_s, sort_s)
    ]  # fmt: skip


# ------------------------------------------------------------------------ 3. dissection


def _digit_items() -> Any:
    from catalogue.data import load_digits

    data = load_digits("test")
    for i in range(len(data)):
        label = data.label(i)
        yield np.asarray(data.images[i]), data.class_keys[label], data.class_names[label]


def repeat_probe(folder: Path, n: int) -> Any:
    """The probe set's index rows repeated up to `n` images (building scenes costs CPU time
    the GPU run does not have; the dissection reads every row as its own image)."""
    from catalogue.probe import ProbeSet

    index = folder / "index.csv"
    header, *rows = index.read_text().splitlines()
    index.write_text("\n".join([header, *itertools.islice(itertools.cycle(rows), n)]) + "\n")
    return ProbeSet.open(folder)


def bench_dissection(sizes: Sizes, device: str, tmp: Path) -> list[Row]:
    from catalogue.dissection import dissect
    from catalogue.models import load_model, prepared
    from catalogue.probe.synthetic import make_probe

    started = time.perf_counter()
    unique = max(1, sizes.probe_images // PROBE_REPEATS)
    make_probe(_digit_items(), tmp / "probe", unique, 224, mask_size=112)
    probe = repeat_probe(tmp / "probe", sizes.probe_images)
    probe_s = time.perf_counter() - started
    model = load_model("resnet18")
    batch = min(sizes.batch, 128)
    seconds, result = timed(
        lambda: dissect(model, ["layer4"], probe, device=device, batch_size=batch,
                        num_workers=sizes.workers), device,
    )  # fmt: skip
    x = torch.randn(batch, 3, 224, 224).to(device)
    with prepared(model, device=device) as ready, torch.inference_mode():
        extractor = ready.extractor(["layer4"], with_logits=False)
        extractor(x)
        steps = -(-sizes.probe_images // batch)
        forward_s, _ = timed(lambda: [extractor(x) for _ in range(steps)], device)
    per_s = sizes.probe_images / seconds
    concepts = result["layer4"].iou.shape[1]
    return [
        Row("dissection", f"resnet18 layer4 on {sizes.probe_images:,} probe images 224² (masks 112²)",
            f"{rate(per_s)} images/s → {BRODEN_IMAGES / per_s / 60:,.1f} min for Broden's {BRODEN_IMAGES:,}",
            f"one forward to layer4: {rate(sizes.probe_images / forward_s)} images/s",
            f"{forward_s / seconds:.2f}", f"both passes; {concepts} concepts; {unique:,} scenes each read {PROBE_REPEATS}×, built in {probe_s:.0f} s",
            per_s, sizes.probe_images / forward_s)
    ]  # fmt: skip


# ------------------------------------------------------------------------ 4. ablation


def bench_ablation(sizes: Sizes, device: str) -> list[Row]:
    from catalogue.ablation import count_correct, single_unit_masks
    from catalogue.models import load_model, prepared

    model = load_model("alexnet")
    g = torch.Generator().manual_seed(0)
    images = torch.randn(sizes.ablate_images, 3, 224, 224, generator=g).to(device)
    node = "classifier.2"
    with prepared(model, device=device) as ready, torch.inference_mode():
        labels = ready.module(images).argmax(1)
        whole_s, _ = timed(lambda: ready.module(images).argmax(1), device)
        split = ready.split(node)
        value = ready.extractor(split.extract, with_logits=False)(images)
        units = min(sizes.ablate_units, value[node].shape[1])
        masks = single_unit_masks(value[node].shape[1], device)[: units + 1]

        def run() -> Any:
            return count_correct(
                split.tail, value[node], [value[i] for i in split.inputs], labels, masks,
                torch.zeros(value[node].shape[1], device=device), PAPER_CLASSES,
                max_rows=8192 if device.startswith("cuda") else 1024,
            )  # fmt: skip

        seconds, counts = timed(run, device)
    total = seconds * 4096 / units
    return [
        Row("ablation", f"alexnet fc6, {units:,} units one at a time over {sizes.ablate_images} images",
            f"{seconds:.2f} s → {total:.1f} s for all 4,096 units",
            f"one whole forward of the images: {whole_s * 1e3:.1f} ms",
            f"{seconds / units / whole_s:.3f} per unit", f"counts of {counts.shape[0] - 1} configurations",
            total, whole_s)
    ]  # fmt: skip


# ------------------------------------------------------------------------ report


def table(rows: list[Row]) -> str:
    lines = [
        "| section | measurement | figure | baseline (same run) | ratio | notes |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.section} | {r.measurement} | {r.figure} | {r.baseline} | {r.ratio} | {r.note} |"
        for r in rows
    ]
    return "\n".join(lines)


def describe_device(device: str) -> str:
    if device.startswith("cuda"):
        p = torch.cuda.get_device_properties(torch.device(device))
        return f"{p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs"
    return f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--tiny", action="store_true", help="seconds on a CPU (tests)")
    parser.add_argument("--images", type=int, help="JPEG files (default 8,192; tiny 16)")
    parser.add_argument("--batch-size", type=int, help="images per batch (default 256; tiny 8)")
    parser.add_argument("--workers", type=int, help="decoding processes (default: cores - 1)")
    parser.add_argument("--ablate-units", type=int, default=4096)
    parser.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: torch's; tiny: 1, for a shared box)",
    )
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device
    device = "cpu" if device == "auto" else device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is visible here; use --device cpu.")
    if device == "cpu" and not args.tiny:
        raise SystemExit(
            "no GPU here: the full sizes are for a GPU's few minutes (hours on a CPU); "
            "run `bench/gpu.py --tiny --device cpu` to check that it works."
        )
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    sizes = Sizes.choose(args)
    threads = args.threads or (1 if args.tiny else 0)
    if threads:
        torch.set_num_threads(threads)
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    started = time.perf_counter()
    header = (
        f"bench/gpu.py on {describe_device(device)}; torch {torch.__version__}; "
        f"load average {os.getloadavg()[0]:.2f}; {'tiny sizes' if args.tiny else 'full sizes'}"
    )
    print(header, flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="unitcat-bench-gpu-") as tmp:
        sections: dict[str, Callable[[], list[Row]]] = {
            "extraction": lambda: bench_extraction(sizes, device, Path(tmp)),
            "scoring": lambda: bench_scoring(sizes, device),
            "dissection": lambda: bench_dissection(sizes, device, Path(tmp)),
            "ablation": lambda: bench_ablation(sizes, device),
        }
        for name, section in sections.items():
            if name in skip:
                continue
            t = time.perf_counter()
            rows += section()
            print(f"  {name}: {time.perf_counter() - t:.1f} s", flush=True)
    total = time.perf_counter() - started
    print(f"\n{header}; {total:.0f} s in all\n\n{table(rows)}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {"header": header, "seconds": total, "sizes": asdict(sizes), "rows": [asdict(r) for r in rows]},
                indent=2,
            )
        )  # fmt: skip


if __name__ == "__main__":
    main()
