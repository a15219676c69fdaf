"""Image bytes → model input, driven only by the version's metadata; plus the image statistics we monitor."""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from core.exceptions import ApplicationError
from modelspec.boxes import Placement
from modelspec.choices import ColorOrder, Layout, ResizePolicy
from modelspec.metadata import ModelMetadata

ALPHA_BACKGROUND = (255, 255, 255)  # transparent pixels are shown on white, as browsers do
STATS_SIDE = 128  # statistics are computed on a thumbnail: cheap and scale-independent
REDUCING_GAP = 3.0  # box-shrink large inputs by a whole factor while ≥ 3× the target remains
DECODE_MARGIN = 2.5  # decode JPEGs (DCT scaling) down to no less than 2.5× the size the model needs
SIDEWAYS = {5, 6, 7, 8}  # EXIF orientations whose stored pixels are turned a quarter
UPRIGHT = {  # EXIF orientation → what turns the stored pixels upright (the EXIF 2.3 table)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Which measurement the image statistics are: baselines and windows of different versions are never
# compared. 1: every pixel decoded; 2: JPEGs decoded at the size the model needs (prepare), which moves
# the statistics of large JPEGs slightly (bench/serving/decode_agreement.py).
STATS_VERSION = 2


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


@contextlib.contextmanager
def _decoding() -> Iterator[None]:
    """Pillow's failures while opening or decoding, as the errors a caller gets."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
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


def _open(data: bytes, *, max_pixels: int) -> Image.Image:
    """The image's header read, refusing bombs before any pixel is allocated."""
    if not data:
        raise NotAnImage("the body is empty; send an image file")
    with _decoding():
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"the image is {width}x{height} = {width * height:,} pixels; the limit is {max_pixels:,}"
            )
    return image


def _load(image: Image.Image) -> Image.Image:
    with _decoding():
        image.load()  # decode fully now, so truncation shows here
    return image


def image_decode(data: bytes, *, max_pixels: int) -> Image.Image:
    """Every pixel decoded (so truncation shows now), refusing bombs before the pixels are allocated."""
    return _load(_open(data, max_pixels=max_pixels))


def _orientation(image: Image.Image) -> int:
    with contextlib.suppress(Exception):  # a broken EXIF block is ignored, as exif_transpose does
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    return 1


def _sixteen_bit_to_8(image: Image.Image) -> Image.Image:
    values = np.asarray(image).astype(np.int64)
    return Image.fromarray((np.clip(values, 0, 65535) >> 8).astype(np.uint8), mode="L")


def to_rgb(image: Image.Image, *, upright: bool = True) -> Image.Image:
    """Every mode explicitly to 8-bit RGB; alpha is composited on white, 16-bit greys keep their top byte.
    `upright`: turned as its EXIF orientation says (else left as stored, for prepare to turn once small)."""
    if upright:
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


def fitted_size(size: tuple[int, int], metadata: ModelMetadata) -> tuple[int, int]:
    """What an upright image of `size` is scaled to before it is cropped or padded to the input size."""
    height, width = metadata.input_size
    if metadata.resize == ResizePolicy.STRETCH:
        return width, height
    if metadata.resize == ResizePolicy.CENTER_CROP:
        scale = max(width, height) / metadata.crop_ratio / min(size)
        return max(width, round(size[0] * scale)), max(height, round(size[1] * scale))
    scale = min(width / size[0], height / size[1])  # letterbox: fit inside
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resize(image: Image.Image, metadata: ModelMetadata, *, exact: bool = False) -> Image.Image:
    """An upright image to the input size. Large reductions first shrink by a whole factor with a box
    filter while REDUCING_GAP × the target remains, then resample the rest with the bilinear filter;
    `exact` resamples in one pass."""
    gap = None if exact else REDUCING_GAP
    return place(
        image.resize(fitted_size(image.size, metadata), Image.Resampling.BILINEAR, reducing_gap=gap), metadata
    )


def placement(size: tuple[int, int], metadata: ModelMetadata) -> Placement:
    """Where an upright image of `size` lands in the model's input (what a detector's boxes are undone by)."""
    height, width = metadata.input_size
    scaled = fitted_size(size, metadata)
    if metadata.resize == ResizePolicy.STRETCH:
        return Placement(size[0], size[1], scaled[0], scaled[1])
    if metadata.resize == ResizePolicy.CENTER_CROP:  # a negative offset: the part cut off (as place crops)
        offset = (-((scaled[0] - width) // 2), -((scaled[1] - height) // 2))
    else:  # letterbox: a positive one, the padding
        offset = ((width - scaled[0]) // 2, (height - scaled[1]) // 2)
    return Placement(size[0], size[1], scaled[0], scaled[1], *offset)


def place(scaled: Image.Image, metadata: ModelMetadata) -> Image.Image:
    """A scaled image (fitted_size) cropped or padded to the input size."""
    height, width = metadata.input_size
    if metadata.resize == ResizePolicy.STRETCH:
        return scaled
    if metadata.resize == ResizePolicy.CENTER_CROP:
        left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
        return scaled.crop((left, top, left + width, top + height))
    # letterbox: pad with the metadata's pad value, else the mean colour (so padding normalizes to zero)
    fill: tuple[int, ...] = (metadata.pad,) * 3 if metadata.pad is not None else (0, 0, 0)
    if metadata.pad is None and metadata.scale:
        fill = tuple(int(round(m / metadata.scale)) for m in metadata.mean)
    canvas = Image.new("RGB", (width, height), fill)
    canvas.paste(scaled, ((width - scaled.width) // 2, (height - scaled.height) // 2))
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
    placement: Placement  # how the upright upload became the input


def prepare(
    data: bytes,
    metadata: ModelMetadata,
    *,
    max_pixels: int,
    margin: float = DECODE_MARGIN,
    exact: bool = False,
) -> Prepared:
    """Decode, orient, resize, normalize; plus the image statistics.

    A JPEG is decoded at the size the model needs: libjpeg's DCT scaling (1/2, 1/4 or 1/8) skips most of
    the work of a camera-sized photo, leaving at least `margin` × the size the model needs for the
    bilinear filter (SERVING_DECODE_MARGIN; closer, and the answers of uncertain images move:
    bench/README.md). The image is scaled as stored and turned upright once small. `exact` decodes every pixel, turns it and resamples in
    one pass: the reference the fast path is measured against (bench/serving/decode_agreement.py)."""
    image = _open(data, max_pixels=max_pixels)
    original_mode = image.mode
    orientation = _orientation(image)
    turned = orientation in SIDEWAYS
    upright = image.size[::-1] if turned else image.size
    if exact:
        model_input = resize(to_rgb(_load(image)), metadata, exact=True)
    else:
        needed = fitted_size(upright, metadata)
        decoded = (max(1, round(needed[0] * margin)), max(1, round(needed[1] * margin)))
        image.draft(None, decoded[::-1] if turned else decoded)  # a no-op for formats other than JPEG
        stored = to_rgb(_load(image), upright=False)
        size = needed[::-1] if turned else needed
        if turned:  # Pillow resamples across, then down: in the upright order, as the exact path does
            stored = stored.resize(
                (stored.width, size[1]), Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP
            )
        scaled = stored.resize(size, Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP)
        if orientation in UPRIGHT:  # turned once small: a quarter turn of 12 MP costs tens of ms
            scaled = scaled.transpose(UPRIGHT[orientation])
        model_input = place(scaled, metadata)
    # Brightness, contrast and sharpness are measured on what the model sees (cheap: it is small);
    # size, aspect ratio and mode describe the upload.
    seen = image_stats(model_input, original_mode=original_mode)
    stats = ImageStats(
        width=upright[0],
        height=upright[1],
        mode=original_mode,
        brightness=seen.brightness,
        contrast=seen.contrast,
        sharpness=seen.sharpness,
    )
    return Prepared(
        tensor=to_tensor(model_input, metadata), stats=stats, placement=placement(upright, metadata)
    )
