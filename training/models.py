"""What a training run starts from: the Omni model and text tokenizer (a checkpoint folder or
a micro preset the curriculum names) and the saved discrete tokenizers of its targets."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def load_code_tokenizers(folders: dict[str, str]) -> dict[str, Any]:
    """Discrete tokenizers by modality from saved folders (``config.json`` names the kind)."""
    from tokenizers_mm.base import CodeTokenizer

    return {modality: CodeTokenizer.from_pretrained(folder) for modality, folder in folders.items()}


def load_model(init: str | None, model_spec: dict[str, Any]):
    """(model, text tokenizer): from a checkpoint folder, or a micro preset the curriculum names."""
    from omni.modeling import OmniForConditionalGeneration
    from omni.presets import build_micro

    if init is not None:
        from transformers import AutoTokenizer

        folder = Path(init)
        if not (folder / "config.json").is_file():
            raise ValueError(f"--init {init} is not a saved Omni model (no config.json)")
        model = OmniForConditionalGeneration.from_pretrained(folder)
        if (folder / "tokenizer.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(folder)
        else:
            from tokenizers_mm.text import micro_text_tokenizer

            tokenizer = micro_text_tokenizer(model.layout.text_size)
        return model, tokenizer
    spec = dict(model_spec)
    preset = spec.pop("preset", None)
    if preset is None:
        raise ValueError("give --init CKPT or a 'model: {preset: micro-...}' in the curriculum")
    model, processor = build_micro(preset, **spec)
    return model, processor.tokenizer
