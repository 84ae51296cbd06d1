"""The default curriculum's encoder towers start from the shipped code tokenizers' encoders."""

from pathlib import Path

import numpy as np
import pytest
import torch

from training.curriculum import Curriculum
from training.encoder_init import init_encoders
from training.models import load_code_tokenizers, load_model

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = {
    "image": str(ROOT / "assets/tokenizers/image"),
    "audio": str(ROOT / "assets/tokenizers/speech"),
}


@pytest.fixture(scope="module")
def tokenizers():
    return load_code_tokenizers(SHIPPED)


@pytest.fixture(scope="module")
def default_model(tokenizers):
    curriculum = Curriculum.load(ROOT / "configs/curriculum.yaml")
    return load_model(None, curriculum.model, tokenizers)[0].eval()


def test_the_default_towers_read_as_the_tokenizers_encoders_do(default_model, tokenizers):
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    vision = tokenizers["image"].encoder
    pixels = vision.preprocess(image)[None]
    with torch.no_grad():
        want = vision.features(pixels)
        assert torch.equal(default_model.encoders.image.features(pixels), want)
        assert torch.equal(default_model.encoders.video.vision.features(pixels), want)
        speech = tokenizers["audio"].encoder
        clip = speech.preprocess(rng.standard_normal(16000).astype(np.float32) * 0.1, 16000)
        assert torch.equal(
            default_model.encoders.audio.hidden_states(clip), speech.hidden_states(clip)
        )
    # The projectors map into the backbone's width and start fresh.
    assert default_model.encoders.image.projector[0].out_features == 192


def test_a_tower_of_another_shape_is_refused_by_name(tokenizers):
    model, _ = load_model(None, {"preset": "micro-llama"}, tokenizers)  # 64-wide micro Whisper
    with pytest.raises(ValueError, match=r"audio <- audio tokenizer: the model's tower has .*\(64"):
        init_encoders(model, tokenizers, {"audio": "audio"})


def test_an_unknown_encoder_or_a_missing_tokenizer_is_refused(tokenizers):
    model, _ = load_model(None, {"preset": "micro-llama"}, tokenizers)
    with pytest.raises(ValueError, match="names the speech encoder, but the model has only"):
        init_encoders(model, tokenizers, {"speech": "audio"})
    with pytest.raises(ValueError, match="from the audio tokenizer, but only"):
        init_encoders(model, {"image": tokenizers["image"]}, {"audio": "audio"})
