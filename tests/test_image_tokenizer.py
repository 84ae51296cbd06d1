"""Semantic image tokenizer: codes of a frozen micro ViT's features, trained to reconstruct them."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from tokenizers_mm.vision import (
    SemanticImageTokenizer,
    codebook_usage,
    encode_features,
    train_image_tokenizer,
)

TINY = {
    "encoder_config": {"image_size": 32},
    "grid": 4,
    "codebook_size": 16,
    "code_dim": 4,
    "hidden": 16,
}


def shapes_image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (48, 48), tuple(int(v) for v in rng.integers(200, 256, 3)))
    (x, y), r = rng.integers(12, 36, 2), int(rng.integers(4, 12))
    colour = tuple(int(v) for v in rng.integers(0, 200, 3))
    ImageDraw.Draw(image).ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return image


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [shapes_image(seed) for seed in range(48)]


@pytest.fixture()
def tokenizer() -> SemanticImageTokenizer:
    torch.manual_seed(0)
    return SemanticImageTokenizer(**TINY).eval()


def test_encode_gives_a_grid_of_code_ids_in_range(tokenizer, images):
    codes = tokenizer.encode(images[0])
    assert codes.shape == (4, 4) and codes.dtype == torch.int64
    assert 0 <= codes.min() and codes.max() < 16
    assert tokenizer.codes_per_image == 16


def test_encode_is_deterministic_and_batch_matches_single(tokenizer, images):
    batch = tokenizer.encode(images[:5])
    assert batch.shape == (5, 4, 4)
    assert torch.equal(batch, tokenizer.encode(images[:5]))
    assert torch.equal(batch[2], tokenizer.encode(images[2]))


def test_encode_accepts_a_preprocessed_batch_and_other_image_forms(tokenizer, images):
    pixels = torch.stack([tokenizer.encoder.preprocess(image) for image in images[:3]])
    assert torch.equal(tokenizer.encode(pixels), tokenizer.encode(images[:3]))
    png = io.BytesIO()
    images[0].convert("RGBA").save(png, format="PNG")
    assert torch.equal(tokenizer.encode(png.getvalue()), tokenizer.encode(images[0]))


def test_training_improves_feature_reconstruction(tmp_path, images):
    torch.manual_seed(0)
    tokenizer = SemanticImageTokenizer(**TINY)
    features = encode_features(tokenizer, images)
    tokenizer.fit_feature_stats(features)
    with torch.no_grad():
        _, before = tokenizer.eval().loss(features)
    trained = train_image_tokenizer(
        tmp_path, images, steps=30, batch_size=16, lr=1e-2, tokenizer=tokenizer
    )
    with torch.no_grad():
        _, after = trained.loss(features)
    assert after > before + 0.2
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model.safetensors").is_file()


def test_training_resumes_exactly(tmp_path, images, kill_during_call):
    options = {"steps": 4, "batch_size": 4, "checkpoint_every": 2, **TINY}
    whole = train_image_tokenizer(tmp_path / "a", images, **options)
    # A run killed during its third step resumes from the step-2 checkpoint to the same end:
    # the weights, the codebook's EMA buffers and the AdamW moments all carry over.
    kill = (SemanticImageTokenizer, "loss", 3, train_image_tokenizer, tmp_path / "b", images)
    kill_during_call(*kill, **options)
    resumed = train_image_tokenizer(tmp_path / "b", images, **options)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert resumed.grid == 4 and resumed.codebook_size == 16
    # More steps continue from the saved end: killed in its second step, a rerun with 9 steps
    # has saved step 5, not step 1.
    longer = {**options, "steps": 9, "checkpoint_every": 1}
    kill = (SemanticImageTokenizer, "loss", 2, train_image_tokenizer, tmp_path / "a", images)
    kill_during_call(*kill, **longer)
    state = json.loads((tmp_path / "a" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 5


def test_save_pretrained_round_trip_keeps_codes_and_embeddings(tmp_path, tokenizer, images):
    tokenizer.fit_feature_stats(encode_features(tokenizer, images))
    tokenizer.save_pretrained(tmp_path)
    loaded = SemanticImageTokenizer.from_pretrained(tmp_path)
    codes = tokenizer.encode(images[:4])
    assert torch.equal(loaded.encode(images[:4]), codes)
    assert torch.allclose(loaded.embed_codes(codes), tokenizer.embed_codes(codes))
    assert loaded.to_config() == tokenizer.to_config()


def test_code_embeddings_are_the_quantised_vectors_in_row_major_order(tokenizer, images):
    with torch.no_grad():
        quantised, codes, _ = tokenizer.quantise(tokenizer.features(images[:2]), True)
    assert torch.equal(codes, tokenizer.encode(images[:2]))
    assert tokenizer.code_embeddings(codes[0]).shape == (16, 4)
    vectors = tokenizer.code_embeddings(codes)
    assert torch.allclose(vectors, quantised.flatten(2).transpose(1, 2))
    raw = tokenizer.reconstruct(quantised) * tokenizer.feature_std[:, None, None]
    raw = raw + tokenizer.feature_mean[:, None, None]
    assert torch.allclose(tokenizer.embed_codes(codes), raw.flatten(2).transpose(1, 2), atol=1e-5)
    assert tokenizer.embed_codes(codes).shape == (2, 16, tokenizer.encoder.width)


def test_codebook_usage_and_perplexity():
    usage, perplexity = codebook_usage(torch.tensor([0, 0, 1, 1]), 4)
    assert usage == 0.5 and perplexity == pytest.approx(2.0)


@pytest.mark.parametrize("bad", [42, b"not an image", [], "/no/such/image.png"])
def test_bad_images_raise_value_error(tokenizer, bad):
    with pytest.raises(ValueError):
        tokenizer.encode(bad)


@pytest.mark.parametrize(
    "codes",
    [torch.zeros(3, 3, dtype=torch.long), torch.full((4, 4), 16), torch.zeros(4, 4)],
    ids=["wrong-grid", "out-of-range", "float"],
)
def test_bad_codes_raise_value_error(tokenizer, codes):
    with pytest.raises(ValueError):
        tokenizer.embed_codes(codes)


def test_training_starts_from_a_pretrained_encoder_and_keeps_it(tmp_path, images):
    from encoders import VisionEncoder

    torch.manual_seed(1)
    pretrained = VisionEncoder(image_size=32)
    pretrained.save_pretrained(tmp_path / "vit")
    trained = train_image_tokenizer(
        tmp_path / "tok", images, steps=3, batch_size=4, encoder=tmp_path / "vit", **TINY
    )
    for (name, a), b in zip(
        pretrained.state_dict().items(), trained.encoder.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name  # frozen: exactly the pretrained weights
    loaded = SemanticImageTokenizer.from_pretrained(tmp_path / "tok")
    torch.testing.assert_close(loaded.encoder._grid(images[:2]), pretrained._grid(images[:2]))
    assert torch.equal(loaded.encode(images[:4]), trained.encode(images[:4]))
    with pytest.raises(ValueError, match="width"):
        SemanticImageTokenizer(**TINY).use_encoder(VisionEncoder("ViT-S-32", token_budget=1))
