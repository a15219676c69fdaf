"""Sample images from installed packages, and onnxruntime INT8 quantization on a real (tiny) model."""

import numpy as np
import onnx
import pytest

from modelspec import onnx_runtime
from modelspec.examples import tiny_classifier_onnx, tiny_convnet_onnx
from modelspec.metadata import metadata_parse
from modelspec.onnx_runtime import LoadedModel
from serving import preprocessing
from serving import reference_photos as samples


@pytest.fixture(scope="module")
def sample_set():
    return samples.sample_set()


def test_at_least_fifty_production_like_samples_all_decode(sample_set):
    assert len(sample_set) >= 50
    assert {s.scenario for s in sample_set} >= {
        "normal",
        "dark",
        "bright",
        "blurry",
        "new-shapes",
        "grayscale",
        "odd-format",
    }
    assert any(s.name == "chelsea" for s in sample_set)
    metadata = metadata_parse({"input_size": "64x64"})
    modes = set()
    for sample in sample_set:
        prepared = preprocessing.prepare(sample.data, metadata, max_pixels=40_000_000)
        assert prepared.tensor.shape == (1, 3, 64, 64) and np.isfinite(prepared.tensor).all()
        modes.add(prepared.stats.mode)
    assert modes >= {"RGB", "L", "CMYK", "RGBA", "I;16"}


def test_dark_variants_are_darker_than_their_originals(sample_set):
    by_name = {s.name: s for s in sample_set}
    metadata = metadata_parse({"input_size": "32x32"})

    def brightness(name):
        return preprocessing.prepare(by_name[name].data, metadata, max_pixels=40_000_000).stats.brightness

    assert brightness("chelsea-dark") < 0.5 * brightness("chelsea")
    assert brightness("chelsea-bright") > brightness("chelsea")


def test_exif_rotated_sample_comes_out_upright(sample_set):
    by_name = {s.name: s for s in sample_set}
    metadata = metadata_parse({"input_size": "32x32"})
    upright = preprocessing.prepare(by_name["chelsea"].data, metadata, max_pixels=40_000_000).stats
    rotated = preprocessing.prepare(
        by_name["chelsea-exif-rotated"].data, metadata, max_pixels=40_000_000
    ).stats
    assert (rotated.width, rotated.height) == (upright.width, upright.height)


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_int8_quantization_produces_a_working_model(mode):
    fp32 = tiny_classifier_onnx(seed=4, size=16)
    rng = np.random.default_rng(0)
    calibration = [rng.normal(size=(1, 3, 16, 16)).astype(np.float32) for _ in range(16)]
    int8 = onnx_runtime.quantize_int8(fp32, calibration, mode=mode)
    assert int8 != fp32
    check = onnx_runtime.model_check(
        model_bytes=int8, input_size=(16, 16), layout="NCHW", num_labels=10, output="probabilities"
    )
    assert check.output_shape == (1, 10)
    a, b = LoadedModel(fp32), LoadedModel(int8)
    agree = np.mean([np.argmax(a.run(x)) == np.argmax(b.run(x)) for x in calibration])
    assert agree >= 0.75
    assert onnx_runtime.latency_ms(int8, calibration[0], runs=5) > 0


def test_int8_of_a_convnet_keeps_weights_in_range_and_corrects_each_layer():
    """The static recipe on a MobileNet-shaped network: the pointwise weights fit 7 bits and the depthwise
    ones 8 (u8 × s8 pairs must not saturate 16 bits on CPUs without VNNI), the image's own convolution
    stays float, each quantized convolution's bias is corrected (and reported as progress), and the
    answers on inputs it was not calibrated on stay the float model's."""
    fp32 = tiny_convnet_onnx(seed=3)
    rng = np.random.default_rng(0)
    calibration = [rng.normal(size=(1, 3, 16, 16)).astype(np.float32) for _ in range(32)]
    held_out = [rng.normal(size=(1, 3, 16, 16)).astype(np.float32) for _ in range(64)]
    steps: list[tuple[int, int]] = []
    int8 = onnx_runtime.quantize_int8(
        fp32, calibration, progress=lambda done, total: steps.append((done, total))
    )
    assert steps == [(1, 2), (2, 2)]
    stored = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load_from_string(int8).graph.initializer}
    assert "stem_w" in stored and stored["stem_w"].dtype == np.float32
    assert np.abs(stored["pw_w_quantized"]).max() <= 63
    assert np.abs(stored["dw_w_quantized"]).max() <= 127
    a, b = LoadedModel(fp32), LoadedModel(int8)
    assert np.mean([np.argmax(a.run(x)) == np.argmax(b.run(x)) for x in held_out]) >= 0.9
