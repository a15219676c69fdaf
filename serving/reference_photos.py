"""Real sample images from installed packages (scikit-image, scikit-learn) and production-like variants."""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

SKIMAGE_PHOTOS = (
    "chelsea.png",  # a tabby cat: the demo model must call it a cat
    "astronaut.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "camera.png",  # greyscale
    "hubble_deep_field.jpg",
    "retina.jpg",
    "page.png",
    "coins.png",
    "moon.png",
    "brick.png",
    "grass.png",
    "gravel.png",
    "logo.png",  # RGBA
    "color.png",
)
SKLEARN_PHOTOS = ("china.jpg", "flower.jpg")


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    scenario: str  # normal, dark, bright, blurry, new-shapes, grayscale, odd-format


def _skimage_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def _sklearn_dir() -> Path:
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "images"


def base_photos() -> dict[str, Image.Image]:
    photos = {}
    for folder, names in ((_skimage_dir(), SKIMAGE_PHOTOS), (_sklearn_dir(), SKLEARN_PHOTOS)):
        for name in names:
            path = folder / name
            if path.exists():
                with Image.open(path) as image:
                    image.load()
                    photos[Path(name).stem] = image.copy()
    if "chelsea" not in photos:
        raise RuntimeError("scikit-image's bundled photos are missing; install scikit-image")
    return photos


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = image.convert("RGB")
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _rotated_with_exif(image: Image.Image) -> bytes:
    """Pixels stored sideways with EXIF orientation 6, as phone cameras do."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(image.convert("RGB").transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif)


def variants(name: str, image: Image.Image) -> list[Sample]:
    rgb = image.convert("RGB")
    w, h = rgb.size
    out = [
        Sample(f"{name}", encode(rgb, "JPEG", quality=92), "normal"),
        Sample(f"{name}-q30", encode(rgb, "JPEG", quality=30), "normal"),
        Sample(f"{name}-exif-rotated", _rotated_with_exif(rgb), "normal"),
        Sample(f"{name}-png", encode(image, "PNG"), "normal"),
        Sample(f"{name}-gray", encode(rgb.convert("L"), "PNG"), "grayscale"),
        Sample(f"{name}-cmyk", encode(rgb.convert("CMYK"), "JPEG", quality=90), "odd-format"),
        Sample(f"{name}-alpha", encode(rgb.convert("RGBA"), "PNG"), "odd-format"),
        Sample(
            f"{name}-dark", encode(ImageEnhance.Brightness(rgb).enhance(0.25), "JPEG", quality=90), "dark"
        ),
        Sample(
            f"{name}-bright", encode(ImageEnhance.Brightness(rgb).enhance(1.8), "JPEG", quality=90), "bright"
        ),
        Sample(
            f"{name}-blur",
            encode(rgb.filter(ImageFilter.GaussianBlur(radius=6)), "JPEG", quality=90),
            "blurry",
        ),
        Sample(f"{name}-wide", encode(rgb.resize((w * 2, max(8, h // 2))), "JPEG", quality=90), "new-shapes"),
        Sample(f"{name}-tall", encode(rgb.resize((max(8, w // 3), h)), "JPEG", quality=90), "new-shapes"),
        Sample(f"{name}-tiny", encode(rgb.resize((max(8, w // 12), max(8, h // 12))), "PNG"), "new-shapes"),
    ]
    sixteen = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    out.append(Sample(f"{name}-16bit", encode(Image.fromarray(sixteen), "PNG"), "odd-format"))
    return out


@functools.cache
def _all_samples() -> tuple[Sample, ...]:
    return tuple(s for name, image in base_photos().items() for s in variants(name, image))


def sample_set(scenario: str | None = None) -> list[Sample]:
    """Every photo in every variant (a few hundred images, built once per process); filter by scenario."""
    return [s for s in _all_samples() if scenario in (None, s.scenario)]


def reference_set() -> list[Sample]:
    """The images a version's baseline is built from: each photo as it normally arrives."""
    return sample_set("normal")


@functools.cache
def _face_samples() -> tuple[Sample, ...]:
    """The astronaut's face as cameras would frame it (scikit-image has one portrait), and the other photos
    as they are: a face detector's traffic, about half with a face."""
    photos = base_photos()
    face = photos["astronaut"].convert("RGB")
    framings = {
        "astronaut": face,
        "astronaut-mirrored": face.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "astronaut-head": face.crop((120, 20, 330, 230)),
        "astronaut-shoulders": face.crop((100, 0, 400, 300)),
        "astronaut-wide": face.crop((0, 0, 512, 300)),
        "astronaut-small": face.resize((128, 128)),
        "astronaut-dim": ImageEnhance.Brightness(face).enhance(0.4),
        "astronaut-blurred": face.filter(ImageFilter.GaussianBlur(radius=2)),
        "camera": photos["camera"].convert("RGB"),  # the cameraman
    }
    with_face = [Sample(name, encode(image, "JPEG", quality=90), "faces") for name, image in framings.items()]
    without = [
        Sample(name, encode(image, "JPEG", quality=90), "no-face")
        for name, image in photos.items()
        if name not in ("astronaut", "camera")
    ]
    return (*with_face, *without)


def face_set() -> list[Sample]:
    """A face detector's traffic: the astronaut framed eight ways and the cameraman (scenario "faces"),
    and every other photo (scenario "no-face")."""
    return list(_face_samples())
