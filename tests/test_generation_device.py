"""Generation follows the model's device and dtype, and sampling without a seed is random."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from torch.overrides import TorchFunctionMode

import omni

ROOT = Path(__file__).resolve().parent.parent
# The modules that build tensors while a request is decoded (the processor's CPU batch is moved).
LOOP_FILES = {
    str(ROOT / name)
    for name in (
        "omni/decoding.py",
        "omni/speculation.py",
        "omni/planning.py",
        "omni/pipeline.py",
        "decoders/vision.py",
    )
}
FACTORIES = {
    torch.tensor,
    torch.zeros,
    torch.ones,
    torch.full,
    torch.arange,
    torch.empty,
    torch.rand,
    torch.randn,
    torch.randint,
}


class FactoryCalls(TorchFunctionMode):
    """Records tensor factory calls made in ``LOOP_FILES`` without an explicit ``device``:
    on a GPU those tensors would land on the CPU."""

    def __init__(self) -> None:
        super().__init__()
        self.placeless: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in FACTORIES and "device" not in kwargs:
            caller = sys._getframe(1)
            if caller.f_code.co_filename in LOOP_FILES:
                self.placeless.append(f"{Path(caller.f_code.co_filename).name}:{caller.f_lineno}")
        return func(*args, **kwargs)


@pytest.fixture(scope="module")
def pipe(saved):
    return omni.load(saved)


def record_inputs(module: torch.nn.Module, seen: list, first_only: bool = False) -> None:
    """Record (device, dtype) of every tensor argument ``module`` is called with (or of its
    first one: a UNet's sample, not its float32 timesteps)."""

    def hook(_module, args, kwargs):
        tensors = args[:1] if first_only else [*args, *kwargs.values()]
        seen.extend((t.device, t.dtype) for t in tensors if isinstance(t, torch.Tensor))

    module.register_forward_pre_hook(hook, with_kwargs=True)


@pytest.mark.parametrize("dtype", ["bfloat16", "float64"])
def test_every_path_runs_in_the_dtype_omni_load_chose(saved, dtype):
    pipe = omni.load(saved, dtype=dtype)
    wanted = {"bfloat16": torch.bfloat16, "float64": torch.float64}[dtype]
    assert all(p.dtype == wanted for p in pipe.model.parameters())
    unet_inputs, vocoder_inputs = [], []
    record_inputs(pipe.decoders["image"].unet, unet_inputs, first_only=True)
    record_inputs(pipe.decoders["audio"].generator, vocoder_inputs, first_only=True)
    square = PILImage.new("RGB", (64, 64), (200, 30, 30))
    text = pipe.generate([square, "what is it?"], max_new_tokens=6)
    image = pipe.generate("draw", "image", max_new_tokens=80, steps=1, seed=0)
    audio = pipe.generate("say it", "audio", max_new_tokens=12, seed=0)
    assert text.tokens and isinstance(image.image, PILImage.Image)
    assert audio.audio[1].dtype == np.float32 and np.isfinite(audio.audio[1]).all()
    assert {dt for _, dt in unet_inputs if dt.is_floating_point} == {wanted}
    assert {dt for _, dt in vocoder_inputs if dt.is_floating_point} == {wanted}


def test_the_loop_makes_every_tensor_on_the_model_device(pipe):
    seen: list = []
    record_inputs(pipe.model, seen)
    with FactoryCalls() as calls:
        pipe.generate("draw", "image", max_new_tokens=80, steps=1, seed=1)
        pipe.generate("hello", max_new_tokens=12, speculative=True)
        pipe.generate_batch(["hello", "a much longer prompt here"], max_new_tokens=6)
        pipe.generate("hi", max_new_tokens=8, temperature=1.0, speculative=True)
    assert calls.placeless == []
    assert {device for device, _ in seen} == {pipe.model.device}


def test_load_rejects_unknown_devices_and_dtypes(saved):
    with pytest.raises(ValueError, match="unknown dtype 'bfloat17'"):
        omni.load(saved, dtype="bfloat17")
    with pytest.raises(ValueError, match="floating-point"):
        omni.load(saved, dtype=torch.int64)
    with pytest.raises(ValueError, match="unknown device 'gpu0'"):
        omni.load(saved, device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            omni.load(saved, device="cuda")


def test_sampling_without_a_seed_differs_and_a_seed_reproduces(pipe):
    options = dict(max_new_tokens=24, temperature=1.0, speculative=False)
    unseeded = [pipe.generate("tell me", **options).tokens for _ in range(2)]
    assert unseeded[0] != unseeded[1]
    seeded = [pipe.generate("tell me", seed=11, **options).tokens for _ in range(2)]
    assert seeded[0] == seeded[1]


def test_image_noise_without_a_seed_differs(pipe):
    options = dict(max_new_tokens=80, steps=1)
    a, b = (np.asarray(pipe.generate("draw", "image", **options).image) for _ in range(2))
    c, d = (np.asarray(pipe.generate("draw", "image", seed=4, **options).image) for _ in range(2))
    assert not np.array_equal(a, b) and np.array_equal(c, d)


def test_the_demo_temperature_slider_samples_without_a_seed(pipe):
    from app.backend import DemoBackend

    backend = DemoBackend(pipe)
    texts = {backend.generate("hello", temperature=1.0, max_new_tokens=24)[0] for _ in range(3)}
    assert len(texts) > 1


def test_generate_and_demo_commands_take_device_and_dtype(saved, tmp_path, capsys):
    import argparse

    from app.cli import add_arguments as demo_arguments
    from omni.cli import main

    out = tmp_path / "answer.txt"
    args = ["generate", "--model", str(saved), "--input", "hi", "--max-new-tokens", "4"]
    assert main([*args, "--device", "cpu", "--dtype", "bfloat16", "--output", str(out)]) == 0
    assert out.is_file()
    assert main([*args, "--dtype", "int8"]) == 2
    assert "unknown dtype 'int8'" in capsys.readouterr().err
    parser = argparse.ArgumentParser()
    demo_arguments(parser)
    parsed = parser.parse_args(["--device", "cpu", "--dtype", "bf16"])
    assert (parsed.device, parsed.dtype) == ("cpu", "bf16")
