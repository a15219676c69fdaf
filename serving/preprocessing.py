"""Image bytes → model input, driven only by the version's metadata; plus the image statistics we monitor."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.exceptions import ApplicationError
from modelspec.choices import ColorOrder, Layout, ResizePolicy
from modelspec.metadata import ModelMetadata

ALPHA_BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white, as browsers do
STATS_SIDE = 128  # statistics are computed on a thumbnail: cheap and scale-independent


class ImageRejected(ApplicationError):
    """Bad input image; `code` is also the error type in the metrics."""

    http_status = 400


class NotAnImage(ImageRejected):
    code = "decode"


class ImageTooLarge(ImageRejected):
    code = "too_large"
    http_status = 413


class UnsupportedMode(ImageRejected):
    code = "unsupported_mode"
    http_status = 415


@dataclass(frozen=True)
class ImageStats:
    width: int
    height: int
    mode: str
    brightness: float  # mean luma, 0..1
    contrast: float  # std of luma, 0..1
    sharpness: float  # variance of the Laplacian of the luma thumbnail (0..1 scale)

    @property
    def aspect_ratio(self) -> float:
        return self.width / self.height


def image_decode(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decode fully (so truncation shows now), refusing bombs before the pixels are allocated."""
    if not data:
        raise NotAnImage("the body is empty; send an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageTooLarge(
                    f"the image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}"
                )
            image.load()
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(f"the image is too large to decode safely: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise NotAnImage(
            "not an image: the file is not in a format we can read (JPEG, PNG, WebP, GIF, TIFF, BMP)"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise NotAnImage(f"the image could not be decoded (truncated or corrupt): {exc}") from exc
    return image


def _sixteen_bit_to_8(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.int64)
    return Image.fromarray((np.clip(values, 0, 65535) >> 8).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image) -> Image.Image:
    """Every mode explicitly to 8-bit RGB; alpha is composited on white, 16-bit greys keep their top byte."""
    image = ImageOps.exif_transpose(image)
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        return _sixteen_bit_to_8(image).convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, ALPHA_BACKGROUND + (255,))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("L", "1", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        return image.convert("RGB")
    raise UnsupportedMode(
        f"image mode {mode!r} is not supported; send 8/16-bit greyscale, RGB(A), palette or CMYK"
    )


def resize(image: Image.Image, metadata: ModelMetadata) -> Image.Image:
    height, width = metadata.input_size
    if metadata.resize == ResizePolicy.STRETCH:
        return image.resize((width, height), Image.Resampling.BILINEAR)
    if metadata.resize == ResizePolicy.CENTER_CROP:
        scale = max(width, height) / metadata.crop_ratio / min(image.size)
        new_size = (max(width, round(image.width * scale)), max(height, round(image.height * scale)))
        resized = image.resize(new_size, Image.Resampling.BILINEAR)
        left, top = (resized.width - width) // 2, (resized.height - height) // 2
        return resized.crop((left, top, left + width, top + height))
    # letterbox: fit inside, pad with the mean colour so padding normalizes to zero
    scale = min(width / image.width, height / image.height)
    new_size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    fill = tuple(int(round(m / metadata.scale)) for m in metadata.mean) if metadata.scale else (0, 0, 0)
    canvas = Image.new("RGB", (width, height), fill)
    canvas.paste(
        image.resize(new_size, Image.Resampling.BILINEAR),
        ((width - new_size[0]) // 2, (height - new_size[1]) // 2),
    )
    return canvas


def to_tensor(image: Image.Image, metadata: ModelMetadata) -> np.ndarray:
    """RGB image of the input size → (1, C, H, W) or (1, H, W, C) float32, normalized as the metadata says:
    (pixel × scale − mean) / std per channel, in float32. One channel at a time, straight into the
    output: broadcasting over the 3-long channel axis is several times slower (bench/README.md)."""
    pixels = np.asarray(image)  # H x W x 3, uint8
    if metadata.color_order == ColorOrder.BGR:
        pixels = pixels[..., ::-1]
    height, width, channels = pixels.shape
    if metadata.layout == Layout.NCHW:
        tensor = np.empty((1, channels, height, width), np.float32)
        planes = [tensor[0, c] for c in range(channels)]
    else:
        tensor = np.empty((1, height, width, channels), np.float32)
        planes = [tensor[0, ..., c] for c in range(channels)]
    scale = np.float32(metadata.scale)
    for c, plane in enumerate(planes):
        np.multiply(pixels[..., c], scale, out=plane, dtype=np.float32)
        plane -= np.float32(metadata.mean[c])
        plane /= np.float32(metadata.std[c])
    return tensor


def image_stats(image: Image.Image, *, original_mode: str) -> ImageStats:
    thumb = image.copy()
    thumb.thumbnail((STATS_SIDE, STATS_SIDE))
    luma = np.asarray(thumb.convert("L"), dtype=np.float32) / 255.0
    if luma.shape[0] >= 3 and luma.shape[1] >= 3:
        lap = luma[:-2, 1:-1] + luma[2:, 1:-1] + luma[1:-1, :-2] + luma[1:-1, 2:] - 4 * luma[1:-1, 1:-1]
        sharpness = float(lap.var())
    else:
        sharpness = 0.0
    return ImageStats(
        width=image.width,
        height=image.height,
        mode=original_mode,
        brightness=float(luma.mean()),
        contrast=float(luma.std()),
        sharpness=sharpness,
    )


@dataclass(frozen=True)
class Prepared:
    tensor: np.ndarray
    stats: ImageStats


def prepare(data: bytes, metadata: ModelMetadata, *, max_pixels: int) -> Prepared:
    image = image_decode(data, max_pixels=max_pixels)
    original_mode = image.mode
    rgb = to_rgb(image)
    model_input = resize(rgb, metadata)
    # Brightness, contrast and sharpness are measured on what the model sees (cheap: it is small);
    # size, aspect ratio and mode describe the upload.
    seen = image_stats(model_input, original_mode=original_mode)
    stats = ImageStats(
        width=rgb.width,
        height=rgb.height,
        mode=original_mode,
        brightness=seen.brightness,
        contrast=seen.contrast,
        sharpness=seen.sharpness,
    )
    return Prepared(tensor=to_tensor(model_input, metadata), stats=stats)
