"""Decoding at the size the model needs, against decoding every pixel: top-1 agreement and time.

Every sample image (serving.reference_photos: 18 photos × 14 variants) is rendered at camera sizes — 1920 × 1080
and 4032 × 3024, in its own orientation — and stored as a JPEG whose pixels are turned by one of the
EXIF orientations 1, 3, 6, 8 in turn (the tag set so that it displays upright, as phone cameras do).
Each one goes through `prepare` with `exact=True` (every pixel decoded, one bilinear pass) and through
the fast path at each SERVING_DECODE_MARGIN asked for (DCT-scaled decode to no less than that multiple of
the size the model needs); the fp32 demo model answers each.

    python bench/serving/decode_agreement.py --var var       # after ./dev demo; about 3 minutes

Writes bench/serving/decode_agreement.json and prints a Markdown table."""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
SIZES = {"1080p": (1920, 1080), "12mp": (4032, 3024)}
ORIENTATIONS = (1, 3, 6, 8)
# What to do to upright pixels so that a viewer applying the orientation tag shows them upright again.
STORE = {1: None, 3: "ROTATE_180", 6: "ROTATE_90", 8: "ROTATE_270"}


def camera_jpeg(image, size: tuple[int, int], orientation: int) -> bytes:
    from PIL import Image

    width, height = size if image.width >= image.height else size[::-1]
    upright = image.convert("RGB").resize((width, height), Image.Resampling.LANCZOS)
    stored = upright if STORE[orientation] is None else upright.transpose(Image.Transpose[STORE[orientation]])
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    stored.save(buffer, format="JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def measure(var: Path, margins: tuple[float, ...]) -> dict:
    from PIL import Image

    from modelspec import onnx_runtime
    from serving import demo_model, preprocessing
    from serving import reference_photos as samples

    metadata = demo_model.demo_metadata()
    model = onnx_runtime.LoadedModel((var / "demo-model" / "v1-fp32.onnx").read_bytes())
    items = samples.sample_set()
    out: dict = {}
    for size_name, size in SIZES.items():
        exact_ms, exact_top, exact_scores, fast = (
            [],
            [],
            [],
            {m: {"ms": [], "top": [], "stats": []} for m in margins},
        )
        exact_stats = []
        for i, sample in enumerate(items):
            with Image.open(io.BytesIO(sample.data)) as opened:
                opened.load()
                source = preprocessing.to_rgb(opened)
            data = camera_jpeg(source, size, ORIENTATIONS[i % len(ORIENTATIONS)])
            t0 = time.perf_counter()
            exact = preprocessing.prepare(data, metadata, max_pixels=40_000_000, exact=True)
            exact_ms.append((time.perf_counter() - t0) * 1000)
            scores = model.run(exact.tensor)[0]
            exact_scores.append(scores)
            exact_top.append(int(np.argmax(scores)))
            exact_stats.append(exact.stats)
            for margin, into in fast.items():
                t0 = time.perf_counter()
                prepared = preprocessing.prepare(data, metadata, max_pixels=40_000_000, margin=margin)
                into["ms"].append((time.perf_counter() - t0) * 1000)
                into["top"].append(int(np.argmax(model.run(prepared.tensor)[0])))
                into["stats"].append(prepared.stats)
                assert (prepared.stats.width, prepared.stats.height) == (
                    exact.stats.width,
                    exact.stats.height,
                )
        confident = np.array([float(np.max(s)) > 0.5 for s in exact_scores])
        result: dict = {"images": len(items), "confident_images": int(confident.sum()),
                        "exact_prepare_p50_ms": float(np.median(exact_ms)), "margins": {}}  # fmt: skip
        for margin, got in fast.items():
            same = np.array(got["top"]) == np.array(exact_top)
            flips = []
            for i in np.flatnonzero(~same):
                top2 = np.sort(exact_scores[i])[-2:]
                flips.append({"image": items[i].name, "orientation": ORIENTATIONS[i % len(ORIENTATIONS)],
                              "exact_top1": round(float(top2[1]), 4),
                              "lead_over_second": round(float(top2[1] - top2[0]), 4)})  # fmt: skip
            result["margins"][str(margin)] = {
                "top1_agreement": float(same.mean()),
                "top1_agreement_confident": float(same[confident].mean()) if confident.any() else None,
                "prepare_p50_ms": float(np.median(got["ms"])),
                "disagreements": flips,
                "stat_shift_mean_abs": {
                    key: float(
                        np.mean(
                            [
                                abs(getattr(a, key) - getattr(b, key))
                                for a, b in zip(got["stats"], exact_stats, strict=True)
                            ]
                        )
                    )
                    for key in ("brightness", "contrast", "sharpness")
                },  # fmt: skip
            }
        out[size_name] = result
        print(size_name, json.dumps(result), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--var", default=str(ROOT / "var"))
    parser.add_argument("--margins", type=float, nargs="+", default=[3.0, 1.0])
    args = parser.parse_args()
    var = Path(args.var).resolve()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    os.environ["CONTROLPLANE_VAR_DIR"] = str(var)
    import django

    django.setup()
    results = measure(var, tuple(args.margins))
    (HERE / "decode_agreement.json").write_text(json.dumps(results, indent=2))
    print(
        "| size | SERVING_DECODE_MARGIN | top-1 agreement | confident (fp32 > 0.5) | prepare P50 ms | full decode |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        for margin, m in r["margins"].items():
            print(
                f"| {name} | {margin} | {m['top1_agreement']:.1%} of {r['images']} | "
                f"{m['top1_agreement_confident']:.1%} of {r['confident_images']} | {m['prepare_p50_ms']:.1f} | "
                f"{r['exact_prepare_p50_ms']:.1f} |"
            )


if __name__ == "__main__":
    main()
