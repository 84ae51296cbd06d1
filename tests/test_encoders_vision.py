"""Vision path: any image in, a fixed budget of projected patch tokens out."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from encoders import ContinuousEncoder, VisionEncoder, build_encoder
from encoders.vision import load_rgb


@pytest.fixture(scope="module")
def encoder() -> VisionEncoder:
    # 96 px, 4 px patches: a 24x24 patch grid, 12x12 after 2x2 merging.
    return VisionEncoder(image_size=96, out_dim=48, token_budget=64).eval()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.mark.parametrize("budget", [16, 64, 144])
def test_projector_output_count_equals_budget(budget):
    encoder = VisionEncoder(image_size=96, out_dim=48, token_budget=budget)
    item = encoder.preprocess(Image.new("RGB", (96, 96), (10, 200, 30)))
    (tokens,) = encoder([item])
    assert encoder.num_tokens(item) == budget
    assert tokens.shape == (budget, 48)


@pytest.mark.parametrize("budget", [0, 15, 169, 200])
def test_budget_that_is_not_a_fitting_square_is_rejected(budget):
    with pytest.raises(ValueError, match="token budget"):
        VisionEncoder(image_size=96, token_budget=budget)


def test_features_are_patch_tokens_before_the_projector(encoder):
    images = [Image.new("L", (40, 30), 0), png_bytes(Image.new("RGB", (9, 9), "white"))]
    with torch.no_grad():
        from_raw = encoder.features(images)
        from_items = encoder.features(torch.stack([encoder.preprocess(i) for i in images]))
    assert from_raw.shape == (2, 24 * 24, encoder.width)
    assert torch.equal(from_raw, from_items)
    assert not torch.allclose(from_raw[0], from_raw[1])


def test_odd_patch_grids_are_padded_before_merging():
    encoder = VisionEncoder(image_size=28, token_budget=16)  # 7x7 patches -> 4x4 merged
    assert (encoder.grid, encoder.merged_grid) == (7, 4)
    assert encoder.encode(torch.zeros(2, 3, 28, 28)).shape == (2, 16, 64)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "LA", "CMYK", "P", "1", "I;16", "F"])
def test_any_mode_and_size_becomes_normalised_rgb(encoder, mode):
    item = encoder.preprocess(Image.new(mode, (37, 113)))
    assert item.shape == (3, 96, 96)
    assert torch.isfinite(item).all()


def test_transparent_pixels_are_composited_on_white():
    transparent = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    half = Image.new("RGBA", (8, 8), (0, 0, 0, 128))
    assert load_rgb(transparent).getpixel((0, 0)) == (255, 255, 255)
    assert load_rgb(half).getpixel((0, 0)) == (127, 127, 127)
    palette = Image.new("P", (4, 4), 0)
    palette.putpalette([0, 0, 255] * 256)
    palette.info["transparency"] = 0
    assert load_rgb(palette).getpixel((0, 0)) == (255, 255, 255)


def test_path_bytes_and_arrays_give_the_same_pixels(encoder, tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (50, 70, 3), dtype=np.uint8)
    image = Image.fromarray(pixels)
    image.save(tmp_path / "x.png")
    reference = encoder.preprocess(image)
    for signal in (tmp_path / "x.png", str(tmp_path / "x.png"), png_bytes(image), pixels):
        torch.testing.assert_close(encoder.preprocess(signal), reference, rtol=0, atol=0)
    floats = encoder.preprocess(pixels.astype(np.float32) / 255.0)
    torch.testing.assert_close(floats, reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "data",
    [b"", b"not an image at all", png_bytes(Image.new("RGB", (64, 64), "red"))[:60]],
    ids=["empty", "garbage", "truncated-png"],
)
def test_corrupt_image_bytes_raise_value_error(encoder, data):
    with pytest.raises(ValueError, match="cannot decode image bytes"):
        encoder.preprocess(data)


def test_bad_inputs_raise_value_error(encoder, tmp_path):
    with pytest.raises(ValueError, match="not found"):
        encoder.preprocess(tmp_path / "missing.png")
    with pytest.raises(ValueError, match="unsupported image type"):
        encoder.preprocess(3.5)
    with pytest.raises(ValueError, match="NaN"):
        encoder.preprocess(np.full((4, 4, 3), np.nan))
    with pytest.raises(ValueError, match="expected pixels"):
        encoder.encode(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match="unknown vision model"):
        VisionEncoder("no-such-model")


def test_save_and_load_reproduce_outputs_exactly(encoder, tmp_path):
    items = [encoder.preprocess(Image.new("RGB", (20, 30), c)) for c in ("red", "blue")]
    encoder.save_pretrained(tmp_path)
    loaded = VisionEncoder.from_pretrained(tmp_path).eval()
    assert loaded.to_config() == encoder.to_config()
    assert build_encoder(encoder.to_config()).to_config() == encoder.to_config()
    with torch.no_grad():
        for ours, theirs in zip(encoder(items), loaded(items)):
            assert torch.equal(ours, theirs)
    assert isinstance(ContinuousEncoder.from_pretrained(tmp_path), VisionEncoder)


def test_open_clip_checkpoint_supplies_the_tower_weights(tmp_path):
    """A named open_clip model with a checkpoint file (a tiny CLIP registered for the test)."""
    import json

    import open_clip
    from safetensors.torch import save_file

    config = {
        "embed_dim": 32,
        "vision_cfg": {
            "image_size": 32,
            "patch_size": 8,
            "width": 32,
            "layers": 1,
            "head_width": 16,
        },
        "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 32, "heads": 2, "layers": 1},
    }
    (tmp_path / "omni-test-tiny-clip.json").write_text(json.dumps(config))
    open_clip.add_model_config(tmp_path / "omni-test-tiny-clip.json")
    clip = open_clip.create_model("omni-test-tiny-clip")
    save_file(clip.state_dict(), str(tmp_path / "clip.safetensors"))
    encoder = VisionEncoder(
        "omni-test-tiny-clip", pretrained=str(tmp_path / "clip.safetensors"), token_budget=4
    )
    assert (encoder.image_size, encoder.width, encoder.merged_grid) == (32, 32, 2)
    torch.testing.assert_close(encoder.tower.conv1.weight, clip.visual.conv1.weight, rtol=0, atol=0)
    with pytest.raises(ValueError, match="not found"):
        VisionEncoder("omni-test-tiny-clip", pretrained=str(tmp_path / "missing.pt"))


def halves_batch(size, rng):
    """Left and right halves red/blue in random order; each patch's class is its colour."""
    images, labels = [], []
    for flip in rng.integers(2, size=size):
        left, right = ((220, 30, 30), (30, 30, 220))[:: -1 if flip else 1]
        pixels = np.zeros((32, 32, 3), np.uint8)
        pixels[:, :16], pixels[:, 16:] = left, right
        cls = torch.full((1, 8, 8), 2 if flip else 1)
        cls[..., 4:] = 3 - cls[..., 4:]
        images.append(Image.fromarray(pixels))
        labels.append(cls)
    return images, torch.stack(labels)


def test_dense_pretraining_learns_saves_and_resumes(tmp_path):
    from encoders.vision_pretrain import pretrain_vision_encoder

    torch.manual_seed(0)
    encoder = VisionEncoder(image_size=32)
    out = tmp_path / "vit"
    pretrain_vision_encoder(encoder, halves_batch, [3], out, steps=30, batch_size=8, lr=3e-3)
    rows = [line.split(",") for line in (out / "log.csv").read_text().splitlines()]
    assert [int(r[0]) for r in rows] == list(range(30))
    first, last = float(rows[0][1]), float(rows[-1][1])
    assert last < first / 5 and float(rows[-1][2]) == 1.0  # loss falls; every patch right
    loaded = VisionEncoder.from_pretrained(out)
    images, _ = halves_batch(4, np.random.default_rng(1))
    assert torch.equal(loaded._grid(images), encoder._grid(images))
    # A larger step count continues from the saved step (30), not from scratch.
    pretrain_vision_encoder(loaded, halves_batch, [3], out, steps=35, batch_size=8, lr=3e-3)
    steps = [int(line.split(",")[0]) for line in (out / "log.csv").read_text().splitlines()]
    assert steps == list(range(35))


def test_dense_pretraining_rejects_labels_on_another_grid(tmp_path):
    from encoders.vision_pretrain import pretrain_vision_encoder

    def wrong_grid(size, rng):
        images, labels = halves_batch(size, rng)
        return images, labels[..., :4, :4]

    with pytest.raises(ValueError, match="grid"):
        pretrain_vision_encoder(VisionEncoder(image_size=32), wrong_grid, [3], tmp_path, steps=2)
