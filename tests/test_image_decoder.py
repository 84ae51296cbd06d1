"""Diffusion image decoder: micro configs on CPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decoders import load_decoder
from decoders.vision import (
    ImageDecoder,
    ImageDecoderConfig,
    from_pil,
    image_shape,
    object_mask,
    to_pil,
)
from decoders.vision_train import ImageDecoderTrainConfig, train_image_decoder
from omni.common.schedule import learning_rates, warmup_stable_decay

CODEBOOK = 10


def tiny_config() -> ImageDecoderConfig:
    return ImageDecoderConfig(
        codebook_size=CODEBOOK,
        max_code_rows=4,
        max_code_cols=4,
        image_size=32,
        code_dim=16,
        block_out_channels=[16, 32],
        down_block_types=["DownBlock2D", "CrossAttnDownBlock2D"],
        up_block_types=["CrossAttnUpBlock2D", "UpBlock2D"],
        attention_head_dim=8,
    )


@pytest.fixture(scope="module")
def decoder() -> ImageDecoder:
    torch.manual_seed(0)
    return ImageDecoder(tiny_config()).eval()


def codes(seed: int = 0) -> torch.Tensor:
    return torch.randint(0, CODEBOOK, (4, 4), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("ratio", "shape"),
    [("1:1", (64, 64)), ("4:3", (48, 64)), ("3:4", (64, 48)), ("16:9", (32, 64))],
)
def test_ratio_token_sets_height_and_width(ratio: str, shape: tuple[int, int]) -> None:
    assert image_shape(ratio, 64) == shape


def test_unknown_ratio_raises() -> None:
    with pytest.raises(ValueError, match="aspect ratio '5:1'"):
        image_shape("5:1", 64)


def test_decode_returns_an_rgb_image_of_the_ratio_size(decoder: ImageDecoder) -> None:
    image = decoder.decode(codes(), steps=2)
    assert image.mode == "RGB" and image.size == (32, 32)
    wide = decoder.decode(codes(), ratio="16:9", steps=1)
    assert wide.size == (32, 16)


def test_decode_is_deterministic_per_seed(decoder: ImageDecoder) -> None:
    a = np.asarray(decoder.decode(codes(), steps=2, seed=3))
    b = np.asarray(decoder.decode(codes(), steps=2, seed=3))
    c = np.asarray(decoder.decode(codes(), steps=2, seed=4))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_guidance_uses_the_null_condition(decoder: ImageDecoder) -> None:
    assert decoder.code_embedding.num_embeddings == CODEBOOK + 1
    # With guidance 0 the sample ignores the codes (pure null-condition velocity).
    a = decoder.sample(codes(0)[None], 32, 32, steps=2, guidance=0.0)
    b = decoder.sample(codes(1)[None], 32, 32, steps=2, guidance=0.0)
    c = decoder.sample(codes(1)[None], 32, 32, steps=2, guidance=2.0)
    assert torch.allclose(a, b)
    assert not torch.allclose(b, c)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (torch.full((4, 4), CODEBOOK), "out of range"),
        (torch.full((4, 4), -1), "out of range"),
        (torch.zeros(0, 4, dtype=torch.long), "empty"),
        (torch.zeros(16, dtype=torch.long), "dimension"),
        (torch.zeros(5, 4, dtype=torch.long), "larger"),
        (torch.zeros(4, 4), "integers"),
    ],
)
def test_bad_codes_raise_value_error(decoder: ImageDecoder, bad, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decoder.decode(bad, steps=1)


def test_zero_steps_and_unknown_options_raise(decoder: ImageDecoder) -> None:
    with pytest.raises(ValueError, match="steps"):
        decoder.decode(codes(), steps=0)
    with pytest.raises(ValueError, match="unknown image decoder options: colour"):
        decoder.decode(codes(), colour="red")


def test_pil_round_trip_is_exact() -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    from PIL import Image

    image = Image.fromarray(pixels, "RGB")
    assert np.array_equal(np.asarray(to_pil(from_pil(image))), pixels)


def test_save_load_round_trip_is_exact(decoder: ImageDecoder, tmp_path) -> None:
    decoder.save_pretrained(tmp_path)
    loaded = load_decoder(tmp_path)
    assert isinstance(loaded, ImageDecoder) and loaded.config == decoder.config
    a = np.asarray(decoder.decode(codes(), steps=2))
    assert np.array_equal(np.asarray(loaded.decode(codes(), steps=2)), a)


def _fixed_loss(decoder: ImageDecoder, images: torch.Tensor, grid: torch.Tensor) -> float:
    torch.manual_seed(123)  # same sigmas, noise and dropout before and after training
    with torch.no_grad():
        return decoder.training_loss(images, grid).item()


def test_a_few_training_steps_lower_the_loss_and_resume(tmp_path) -> None:
    torch.manual_seed(0)
    model = ImageDecoder(tiny_config())
    images = torch.zeros(4, 3, 32, 32)
    images[:, 0, 8:24, 8:24] = 1.0  # a red square on black
    grid = torch.stack([codes(i) for i in range(4)])
    before = _fixed_loss(model, images, grid)
    config = ImageDecoderTrainConfig(
        output=str(tmp_path), steps=8, batch_size=4, lr=3e-3, warmup=1, checkpoint_every=4
    )
    average = train_image_decoder(model, images, grid, config)
    assert _fixed_loss(model, images, grid) < 0.9 * before
    # What is returned and saved is the weight average, which lags the raw weights.
    assert average is not model
    assert not torch.equal(average.unet.conv_in.weight, model.unet.conv_in.weight)
    saved = load_decoder(tmp_path / "decoder")
    for (name, a), b in zip(average.state_dict().items(), saved.state_dict().values()):
        assert torch.equal(a, b), name
    # The checkpoint resumes at step 8, EMA included: asking for 8 steps again changes nothing.
    resumed = train_image_decoder(ImageDecoder(tiny_config()), images, grid, config)
    for (name, a), b in zip(average.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_a_run_killed_mid_training_resumes_to_the_same_weights(tmp_path, kill_during_call):
    """The batch generator and torch's own generator (noise, sigmas) resume with the step."""
    images = torch.rand(4, 3, 32, 32) * 2 - 1
    grid = torch.stack([codes(i) for i in range(4)])

    def config(folder: str) -> ImageDecoderTrainConfig:
        return ImageDecoderTrainConfig(
            output=str(tmp_path / folder), steps=4, batch_size=2, warmup=1, checkpoint_every=2
        )

    torch.manual_seed(0)
    whole = train_image_decoder(ImageDecoder(tiny_config()), images, grid, config("a"))
    torch.manual_seed(0)
    kill = (ImageDecoder, "training_loss", 3, train_image_decoder, ImageDecoder(tiny_config()))
    kill_during_call(*kill, images, grid, config("b"))
    torch.manual_seed(1)  # whatever the state of a new process
    resumed = train_image_decoder(ImageDecoder(tiny_config()), images, grid, config("b"))
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_object_weight_counts_object_pixels_more() -> None:
    decoder = ImageDecoder(tiny_config())
    images = torch.zeros(2, 3, 32, 32)
    images[:, 0, 4:8, 4:8] = 1.0  # 16 red pixels on black: the median colour is black
    mask = object_mask(images)  # the square and a 2-pixel margin around it: 8x8
    assert mask.sum().item() == 2 * 64 and torch.equal(mask[0, 0, 2:10, 2:10], torch.ones(8, 8))
    grid = torch.stack([codes(i) for i in range(2)])
    decoder.forward = lambda noisy, timesteps, code_grid: torch.zeros_like(noisy)
    plain = decoder.training_loss(images, grid).item()
    weighted = decoder.training_loss(images, grid, object_weight=9.0).item()
    assert plain == pytest.approx(16 / (3 * 1024))
    assert weighted == pytest.approx(16 * 10 / (3 * (1024 + 64 * 9)))


def test_cli_trains_from_a_manifest_and_starts_from_init_weights(tmp_path, capsys) -> None:
    import json

    from PIL import Image

    from omni.cli import main
    from tokenizers_mm.vision import SemanticImageTokenizer

    (tmp_path / "media").mkdir()
    lines = []
    for i in range(4):
        Image.new("RGB", (32, 32), (40 * i, 200, 90)).save(tmp_path / f"media/{i}.png")
        segments = [{"type": "image", "path": f"media/{i}.png"}]
        record = {"id": str(i), "split": "train", "turns": [{"role": "user", "segments": segments}]}
        lines.append(json.dumps(record))
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    tokenizer = SemanticImageTokenizer(
        encoder_config={"image_size": 32}, grid=4, codebook_size=CODEBOOK, code_dim=4, hidden=8
    )
    tokenizer.save_pretrained(tmp_path / "tok")
    common = [
        "train",
        "image-decoder",
        "--data",
        str(tmp_path),
        "--tokenizer",
        str(tmp_path / "tok"),
    ]
    common += ["--steps", "1", "--batch-size", "2", "--threads", "1"]
    assert main([*common, "--out", str(tmp_path / "a")]) == 0
    first = load_decoder(tmp_path / "a" / "decoder")
    assert first.config.image_size == 32 and first.config.codebook_size == CODEBOOK
    # lr 0: one step leaves the --init weights exactly as they were.
    init = ["--init", str(tmp_path / "a" / "decoder"), "--lr", "0", "--out", str(tmp_path / "b")]
    assert main([*common, *init]) == 0
    second = load_decoder(tmp_path / "b" / "decoder")
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    ImageDecoder(tiny_config()).save_pretrained(tmp_path / "other")
    assert main([*common, "--init", str(tmp_path / "other"), "--out", str(tmp_path / "c")]) == 2
    assert "has another configuration" in capsys.readouterr().err
    # The UNet width and the training options reach the trained decoder.
    wide = ["--block-out-channels", "16", "24", "32", "--object-weight", "5", "--ema-decay", "0"]
    assert main([*common, *wide, "--out", str(tmp_path / "d")]) == 0
    assert load_decoder(tmp_path / "d" / "decoder").config.block_out_channels == [16, 24, 32]


def test_lr_warms_up_holds_then_decays_to_zero() -> None:
    rates = learning_rates(warmup_stable_decay(10, 20, 100), 100)
    assert rates[0] == 0.0 and rates[5] == pytest.approx(0.5) and rates[10] == rates[79] == 1.0
    assert rates[90] == pytest.approx(0.5) and rates[99] == pytest.approx(0.05)
    assert learning_rates(warmup_stable_decay(10, 0, 100), 100)[99] == 1.0  # no decay asked
    assert learning_rates(warmup_stable_decay(0, 0, 100), 1) == [1.0]  # no warm-up asked
    # a rerun with more steps climbs back to the peak and decays again over the new end
    assert learning_rates(warmup_stable_decay(10, 60, 160), 101)[100] == 1.0


def test_cli_trains_on_world_scenes_toward_their_classic_rendering(tmp_path, capsys) -> None:
    import numpy as np

    from omni.cli import main
    from tokenizers_mm.vision import SemanticImageTokenizer
    from training.image_decoder_cli import _world_images
    from training.toyworld.looks import styled_pairs

    inputs, targets = _world_images(styled_pairs("varied", 64), 7, seed=1)
    assert len(inputs) == len(targets) == 7 and {t.size for t in targets} == {(64, 64)}
    assert len({i.size for i in inputs}) > 1  # written at the style's sides, 48 to 96 px
    again, _ = _world_images(styled_pairs("varied", 64), 7, seed=1)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(inputs, again))
    tokenizer = SemanticImageTokenizer(
        encoder_config={"image_size": 64}, grid=4, codebook_size=CODEBOOK, code_dim=4, hidden=8
    )
    tokenizer.save_pretrained(tmp_path / "tok")
    common = ["train", "image-decoder", "--tokenizer", str(tmp_path / "tok"), "--threads", "1"]
    common += ["--steps", "1", "--batch-size", "2", "--block-out-channels", "16", "24", "32"]
    assert main([*common, "--world", "varied", "--images", "5", "--out", str(tmp_path / "a")]) == 0
    assert load_decoder(tmp_path / "a" / "decoder").config.image_size == 64
    for bad, message in (
        (["--world", "varied", "--images", "0"], "--images must be at least 1, got 0"),
        (["--world", "classic"], "style 'classic' draws only the classic rendering"),
        (["--world", "nowhere"], "unknown world style 'nowhere'"),
        (
            ["--world", "varied", "--classic-world-share", "1"],
            "classic world share must lie in [0, 1), got 1.0",
        ),
    ):
        assert main([*common, *bad, "--out", str(tmp_path / "b")]) == 2
        assert message in capsys.readouterr().err


def test_world_pairs_keep_a_share_of_the_classic_worlds_own_scenes() -> None:
    import numpy as np

    from training.evaluate import check_image
    from training.image_decoder_cli import _world_images
    from training.toyworld.looks import styled_pairs

    inputs, targets = _world_images(styled_pairs("varied", 64, classic_world_share=0.5), 40, 3)
    same = [np.array_equal(np.asarray(i), np.asarray(t)) for i, t in zip(inputs, targets)]
    # with no classic share, only the classic world's own scenes are classic on both sides
    assert 8 <= sum(same) <= 32
    classic = [t for t, s in zip(targets, same) if s]
    assert all(1 <= len(check_image(image)) <= 2 for image in classic)  # the classic world's 1-2
    varied = [i for i, s in zip(inputs, same) if not s]
    assert len({image.size for image in varied}) > 1  # the rest still written in varied looks
