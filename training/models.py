"""What a training run starts from: the Omni model and text tokenizer (a checkpoint folder or
a micro preset the curriculum names) and the saved discrete tokenizers of its targets.

A preset model's vocabulary is sized from the code tokenizers it is given (image codes,
image grid, speech units), so a trained tokenizer of any codebook size fits; a checkpoint's
vocabulary is fixed, and a tokenizer that does not fit it is refused before training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omni.vocab import VocabLayout
from training.encoder_init import init_encoders


def load_code_tokenizers(folders: dict[str, str]) -> dict[str, Any]:
    """Discrete tokenizers by modality from saved folders (``config.json`` names the kind)."""
    from tokenizers_mm.base import CodeTokenizer

    for modality, folder in folders.items():
        if not (Path(folder) / "config.json").is_file():
            raise ValueError(f"the {modality} tokenizer folder {folder} has no config.json")
    return {modality: CodeTokenizer.from_pretrained(folder) for modality, folder in folders.items()}


def layout_for(text_size: int, code_tokenizers: dict[str, Any]) -> VocabLayout:
    """The unified vocabulary for a text tokenizer of ``text_size`` and the given code
    tokenizers (``image``: codebook and grid, ``audio``: units); a modality without a
    tokenizer keeps the micro preset's block size."""
    from omni.presets import MICRO_CODE_BLOCKS

    blocks = dict(MICRO_CODE_BLOCKS)
    if "image" in code_tokenizers:
        image = code_tokenizers["image"]
        blocks.update(image_codes=image.codebook_size, image_grid=(image.grid, image.grid))
    if "audio" in code_tokenizers:
        blocks["audio_codes"] = code_tokenizers["audio"].codebook_size
    return VocabLayout(text_size=text_size, **blocks)


def check_fits(layout: VocabLayout, code_tokenizers: dict[str, Any], where: str) -> None:
    """Refuse code tokenizers whose codebooks differ from the vocabulary's blocks."""
    sizes = {"image": layout.image_codes, "audio": layout.audio_codes}
    for modality, tokenizer in code_tokenizers.items():
        if modality in sizes and tokenizer.codebook_size != sizes[modality]:
            raise ValueError(
                f"the {modality} tokenizer has {tokenizer.codebook_size} codes but {where} has "
                f"{sizes[modality]} {modality} codes: train the model with that tokenizer "
                f"(start from a preset, whose vocabulary is sized from it)"
            )


def load_model(
    init: str | None, model_spec: dict[str, Any], code_tokenizers: dict[str, Any] | None = None
):
    """(model, text tokenizer): from a checkpoint folder, or a micro preset the curriculum
    names with its vocabulary sized from ``code_tokenizers`` (and, where the curriculum's
    ``encoder_init`` says so, its encoder towers started from theirs)."""
    from omni.modeling import OmniForConditionalGeneration
    from omni.presets import build_micro
    from tokenizers_mm.text import micro_text_tokenizer

    code_tokenizers = code_tokenizers or {}
    if init is not None:
        from transformers import AutoTokenizer

        folder = Path(init)
        if not (folder / "config.json").is_file():
            raise ValueError(f"--init {init} is not a saved Omni model (no config.json)")
        model = OmniForConditionalGeneration.from_pretrained(folder)
        check_fits(model.layout, code_tokenizers, f"the model at {folder}")
        if (folder / "tokenizer.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(folder)
        else:
            tokenizer = micro_text_tokenizer(model.layout.text_size)
        return model, tokenizer
    spec = dict(model_spec)
    preset = spec.pop("preset", None)
    encoder_init = spec.pop("encoder_init", None) or {}
    if preset is None:
        raise ValueError("give --init CKPT or a 'model: {preset: micro-...}' in the curriculum")
    tokenizer = micro_text_tokenizer()
    layout = layout_for(len(tokenizer), code_tokenizers)
    model, processor = build_micro(preset, tokenizer=tokenizer, layout=layout, **spec)
    init_encoders(model, code_tokenizers, encoder_init)
    return model, processor.tokenizer
