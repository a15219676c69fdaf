"""Each preprocessing step pinned against arrays computed by hand."""

import io

import numpy as np
import pytest
from PIL import Image

from modelspec.metadata import metadata_parse
from serving.preprocessing import (
    ImageTooLarge,
    NotAnImage,
    UnsupportedMode,
    image_decode,
    image_stats,
    prepare,
    resize,
    to_rgb,
    to_tensor,
)

HALF = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5], "scale": 1 / 255}


def encode(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_to_tensor_normalizes_and_lays_out_nchw():
    image = Image.fromarray(np.array([[[255, 0, 0], [0, 255, 51]]], dtype=np.uint8))  # 1 x 2 pixels
    tensor = to_tensor(image, metadata_parse({**HALF, "input_height": 1, "input_width": 2}))
    assert tensor.shape == (1, 3, 1, 2) and tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0, :, 0, 0], [1.0, -1.0, -1.0], atol=1e-6)  # (255/255 - .5)/.5 = 1
    np.testing.assert_allclose(tensor[0, :, 0, 1], [-1.0, 1.0, -0.6], atol=1e-6)  # (51/255 - .5)/.5 = -0.6


def test_to_tensor_bgr_and_nhwc():
    image = Image.fromarray(np.array([[[10, 20, 30]]], dtype=np.uint8))
    metadata = metadata_parse(
        {
            "mean": [0, 0, 0],
            "std": [1, 2, 4],
            "scale": 1,
            "color_order": "BGR",
            "layout": "NHWC",
            "input_size": "1x1",
        }
    )
    tensor = to_tensor(image, metadata)
    assert tensor.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(
        tensor[0, 0, 0], [30 / 1, 20 / 2, 10 / 4]
    )  # channels reversed, then std per channel


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("color_order", ["RGB", "BGR"])
def test_to_tensor_equals_the_formula_bit_for_bit(layout, color_order):
    pixels = np.random.default_rng(7).integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    metadata = metadata_parse(
        {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "layout": layout,
         "color_order": color_order, "input_size": "5x7"}
    )  # fmt: skip
    ordered = pixels[..., ::-1] if color_order == "BGR" else pixels
    expected = (
        ordered.astype(np.float32) * np.float32(metadata.scale) - np.float32(metadata.mean)
    ) / np.float32(metadata.std)
    expected = expected.transpose(2, 0, 1)[None] if layout == "NCHW" else expected[None]
    tensor = to_tensor(Image.fromarray(pixels), metadata)
    assert tensor.dtype == np.float32 and tensor.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(tensor, expected)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (Image.new("L", (1, 1), 100), (100, 100, 100)),
        (Image.new("1", (1, 1), 1), (255, 255, 255)),
        (Image.new("LA", (1, 1), (0, 0)), (255, 255, 255)),  # fully transparent → white background
        (Image.new("RGBA", (1, 1), (255, 0, 0, 255)), (255, 0, 0)),
        (Image.new("RGBA", (1, 1), (0, 0, 0, 128)), (127, 127, 127)),  # 0*128/255 + 255*127/255
        (Image.new("CMYK", (1, 1), (0, 0, 0, 0)), (255, 255, 255)),
        (Image.new("CMYK", (1, 1), (0, 255, 255, 0)), (255, 0, 0)),
    ],
)
def test_modes_convert_to_rgb_explicitly(image, expected):
    assert to_rgb(image).getpixel((0, 0)) == expected


def test_sixteen_bit_greyscale_keeps_the_top_byte():
    image = Image.fromarray(np.array([[0x8000, 0xFFFF, 0x00FF]], dtype=np.uint16))
    assert image.mode.startswith("I;16")
    rgb = np.asarray(to_rgb(image))
    np.testing.assert_array_equal(rgb[0, :, 0], [128, 255, 0])


def test_palette_with_transparency_composites_on_white():
    image = Image.new("P", (1, 1), 0)
    image.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    image.info["transparency"] = 0
    assert to_rgb(image).getpixel((0, 0)) == (255, 255, 255)


def test_float_mode_is_refused_with_415():
    with pytest.raises(UnsupportedMode) as refused:
        to_rgb(Image.new("F", (2, 2), 0.5))
    assert refused.value.http_status == 415


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (4, 2), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    decoded = image_decode(encode(image, "JPEG", exif=exif), max_pixels=100)
    assert decoded.size == (4, 2)
    assert to_rgb(decoded).size == (2, 4)


def test_resize_policies():
    left_black_right_white = Image.fromarray(
        np.repeat(np.repeat(np.array([[0, 255]], np.uint8), 8, axis=1), 8, axis=0)
    ).convert("RGB")  # 16 x 8
    stretched = resize(left_black_right_white, metadata_parse({"input_size": "4x4", "resize": "stretch"}))
    assert stretched.size == (4, 4)
    cropped = resize(
        left_black_right_white,
        metadata_parse({"input_size": "4x4", "resize": "center_crop", "crop_ratio": 1}),
    )
    row = np.asarray(cropped)[2, :, 0]
    assert (
        cropped.size == (4, 4) and row[0] < 10 and row[-1] > 245
    )  # shorter side to 4 → 8x4, keep columns 2..5
    boxed = resize(
        left_black_right_white,
        metadata_parse(
            {"input_size": "4x4", "resize": "letterbox", "mean": [0.5, 0.5, 0.5], "scale": 1 / 255}
        ),
    )
    pixels = np.asarray(boxed)
    assert boxed.size == (4, 4)
    np.testing.assert_array_equal(pixels[0, :, 0], [128, 128, 128, 128])  # padding = mean colour (0.5 * 255)
    np.testing.assert_array_equal(pixels[3, :, 0], [128, 128, 128, 128])


def test_stats_of_flat_and_busy_images():
    flat = image_stats(Image.new("RGB", (40, 20), (128, 128, 128)), original_mode="RGB")
    assert (
        flat.brightness == pytest.approx(128 / 255, abs=1e-3) and flat.contrast == 0 and flat.sharpness == 0
    )
    assert flat.aspect_ratio == 2.0
    checker = Image.fromarray((np.indices((32, 32)).sum(axis=0) % 2 * 255).astype(np.uint8)).convert("RGB")
    busy = image_stats(checker, original_mode="L")
    assert busy.contrast == pytest.approx(0.5, abs=0.01) and busy.sharpness > 1


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"", NotAnImage),
        (b"definitely not an image", NotAnImage),
        (encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")[:200], NotAnImage),  # truncated
    ],
)
def test_bad_bytes_are_refused(payload, error):
    with pytest.raises(error) as refused:
        image_decode(payload, max_pixels=10_000_000)
    assert refused.value.http_status == 400


def test_decompression_bomb_refused_before_decoding():
    bomb = encode(Image.new("L", (4000, 3000), 0))
    with pytest.raises(ImageTooLarge) as refused:
        image_decode(bomb, max_pixels=1_000_000)
    assert refused.value.http_status == 413 and "12,000,000 pixels" in refused.value.message


def test_prepare_end_to_end_shape_and_values():
    metadata = metadata_parse({**HALF, "input_size": "8x8", "resize": "stretch"})
    prepared = prepare(encode(Image.new("RGB", (30, 10), (255, 255, 255))), metadata, max_pixels=1000)
    assert prepared.tensor.shape == (1, 3, 8, 8)
    np.testing.assert_allclose(prepared.tensor, 1.0)
    assert (prepared.stats.width, prepared.stats.height, prepared.stats.mode) == (30, 10, "RGB")


QUADRANTS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0))  # upright: top-left, top-right, bottom-…


def upright_quadrants(width: int, height: int) -> Image.Image:
    pixels = np.zeros((height, width, 3), np.uint8)
    pixels[: height // 2, : width // 2] = QUADRANTS[0]
    pixels[: height // 2, width // 2 :] = QUADRANTS[1]
    pixels[height // 2 :, : width // 2] = QUADRANTS[2]
    pixels[height // 2 :, width // 2 :] = QUADRANTS[3]
    return Image.fromarray(pixels)


# What to do to upright pixels so that a viewer applying each EXIF orientation shows them upright again.
STORED_AS = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", sorted(STORED_AS))
@pytest.mark.parametrize("policy", ["center_crop", "stretch", "letterbox"])
def test_camera_sized_jpegs_decode_small_and_upright_like_the_exact_path(orientation, policy):
    """A 12 MP photo stored sideways (or mirrored) with its EXIF orientation: the fast path (DCT-scaled
    decode, turned once small) gives the upright picture, the upload's upright size in the statistics,
    and the model input of the exact path within a few levels."""
    upright = upright_quadrants(4032, 3024)
    stored = upright if STORED_AS[orientation] is None else upright.transpose(STORED_AS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(stored, "JPEG", quality=90, exif=exif)
    metadata = metadata_parse({**HALF, "input_size": "96x128", "resize": policy})
    fast = prepare(data, metadata, max_pixels=20_000_000)
    exact = prepare(data, metadata, max_pixels=20_000_000, exact=True)
    assert (fast.stats.width, fast.stats.height) == (exact.stats.width, exact.stats.height) == (4032, 3024)
    assert fast.tensor.shape == exact.tensor.shape == (1, 3, 96, 128)
    levels = np.abs(fast.tensor - exact.tensor) * 0.5 * 255  # back to 0..255 steps
    assert float(np.median(levels)) <= 1.0 and float(levels.mean()) < 3.0
    pixels = np.round((fast.tensor[0].transpose(1, 2, 0) * 0.5 + 0.5) * 255)
    height, width = pixels.shape[:2]
    top, bottom = height // 2 - 20, height // 2 + 20  # inside the picture whatever the policy pads
    for (y, x), colour in zip(
        ((top, width // 4), (top, 3 * width // 4), (bottom, width // 4), (bottom, 3 * width // 4)),
        QUADRANTS,
        strict=True,
    ):
        np.testing.assert_allclose(pixels[y, x], colour, atol=12)


def test_images_a_few_times_the_input_size_take_the_exact_path():
    metadata = metadata_parse({**HALF, "input_size": "224x224", "resize": "center_crop"})
    small = encode(upright_quadrants(640, 480), "JPEG")
    np.testing.assert_array_equal(  # at 640 × 480 nothing is skipped: the two paths agree exactly
        prepare(small, metadata, max_pixels=10**7).tensor,
        prepare(small, metadata, max_pixels=10**7, exact=True).tensor,
    )
