"""Shared fixtures: micro models and inputs built on the CPU, no downloads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

torch.set_num_threads(1)  # micro models: one thread beats two on small ops


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A random micro pipeline saved to a folder (one per test module)."""
    from omni.presets import build_micro_pipeline

    folder = tmp_path_factory.mktemp("micro")
    build_micro_pipeline("micro-llama").save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def text_tokenizer():
    from tokenizers_mm.text import micro_text_tokenizer

    return micro_text_tokenizer()


@pytest.fixture
def red_square() -> PILImage.Image:
    image = PILImage.new("RGB", (64, 64), (240, 240, 240))
    image.paste((220, 30, 30), (16, 16, 48, 48))
    return image


@pytest.fixture
def tone() -> tuple[np.ndarray, int]:
    t = np.arange(8000) / 16000
    return (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 16000


@pytest.fixture
def kill_during_call():
    """``kill_during_call(cls, method, n, train, *args, **kwargs)`` runs ``train`` with the
    ``n``-th call of ``cls.method`` raising ``KeyboardInterrupt``: a run killed mid-step, for
    the exact-resume tests of the trainers."""

    def run(cls: type, method: str, n: int, train, *args, **kwargs) -> None:
        calls, real = [], getattr(cls, method)

        def stop(self, *call_args, **call_kwargs):
            calls.append(1)
            if len(calls) == n:
                raise KeyboardInterrupt
            return real(self, *call_args, **call_kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(cls, method, stop)
            with pytest.raises(KeyboardInterrupt):
                train(*args, **kwargs)

    return run
