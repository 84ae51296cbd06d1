"""Assemble a pipeline folder: a trained LM folder joined with code tokenizers and decoders.

``omni train lm`` writes an LM (model, text tokenizer); the components train apart. A
pipeline folder (``omni.pipeline``) holds them all, so ``omni.load`` needs nothing else. Each
component is checked against the LM's vocabulary before anything is written: an image
tokenizer or decoder of another codebook size would decode nonsense, never fail loudly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODALITIES = ("image", "audio")


def _check_folder(folder: str | Path, what: str) -> Path:
    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise ValueError(f"the {what} folder {folder} has no config.json")
    return folder


def _codebook(component: Any) -> int:
    config = getattr(component, "config", None)
    for name in ("codebook_size", "num_units"):
        value = getattr(component, name, None) or getattr(config, name, None)
        if value:
            return int(value)
    raise ValueError(f"{type(component).__name__} states no codebook size")


def check_components(layout: Any, components: dict[str, Any], kind: str) -> None:
    """Every component's codebook must equal its block of the vocabulary."""
    sizes = {"image": layout.image_codes, "audio": layout.audio_codes}
    for modality, component in components.items():
        if modality not in sizes:
            raise ValueError(f"{kind} modality {modality!r} is not one of {MODALITIES}")
        if _codebook(component) != sizes[modality]:
            raise ValueError(
                f"the {modality} {kind} has {_codebook(component)} codes but the LM's "
                f"vocabulary has {sizes[modality]} {modality} codes"
            )


def assemble_pipeline(
    lm: str | Path,
    out: str | Path,
    code_tokenizers: dict[str, str | Path],
    decoders: dict[str, str | Path],
    speculative_default: bool | list[str] | None = None,
) -> Path:
    """Write ``out`` as a complete pipeline folder: the LM at ``lm`` (``config.json``,
    safetensors, text tokenizer) plus the code tokenizers and decoders in the given folders
    (``image`` / ``audio``). ``out`` may be ``lm`` itself. Returns ``out``.

    ``speculative_default`` (None: the LM's own) is whether ``omni.generate`` drafts with the
    MTP module when a request does not say, or for which output modalities (a list): off, or
    on only where its drafts pay (measured by ``benchmarks/bench_decode.py`` and ``omni eval
    matrix --speedup``). It is kept in ``generation_config.json``."""
    from transformers import AutoTokenizer

    from decoders.base import CodeDecoder
    from omni.decoding import supports_speculation
    from omni.modeling import OmniForConditionalGeneration
    from omni.pipeline import OmniPipeline
    from tokenizers_mm.base import CodeTokenizer

    lm = _check_folder(lm, "LM")
    if not (lm / "tokenizer.json").is_file():
        raise ValueError(f"the LM folder {lm} has no text tokenizer (tokenizer.json)")
    tokenizer_folders = {m: _check_folder(f, f"{m} tokenizer") for m, f in code_tokenizers.items()}
    decoder_folders = {m: _check_folder(f, f"{m} decoder") for m, f in decoders.items()}
    model = OmniForConditionalGeneration.from_pretrained(lm)
    tokenizers = {m: CodeTokenizer.from_pretrained(f) for m, f in tokenizer_folders.items()}
    loaded_decoders = {m: CodeDecoder.from_pretrained(f) for m, f in decoder_folders.items()}
    check_components(model.layout, tokenizers, "tokenizer")
    check_components(model.layout, loaded_decoders, "decoder")
    if speculative_default is not None:
        if speculative_default and not supports_speculation(model):
            raise ValueError(f"the LM at {lm} has no MTP module to draft with")
        model.generation_config.speculative = speculative_default
        # A config derived from the model config is rebuilt on load, which drops this setting.
        model.generation_config._from_model_config = False
    pipeline = OmniPipeline(model, AutoTokenizer.from_pretrained(lm), tokenizers, loaded_decoders)
    pipeline.save_pretrained(out)
    return Path(out)
