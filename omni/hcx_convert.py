"""Import the official unified HyperCLOVA X SEED Omni 8B checkpoint into an Omni pipeline folder,
part by part, refusing what cannot be built faithfully.

The layout is the one OmniServe's public converter splits
(NAVER-Cloud-HyperCLOVA-X/OmniServe ``model_converter/converter.py``, ``PREFIXES`` and
``LLM_KEY_MAPPING``; ``config_utils.extract_llm_config`` reads the LLM's config from the unified
config's ``text_config``): one sharded safetensors index whose tensor names start with
``model.language_model.`` (``model.`` / ``lm_head.`` below it), ``model.vision_model.``,
``model.mm_projector.``, ``model.discrete_vision_model.``, ``model.audio_model.``,
``model.audio_projector.``, ``model.discrete_audio_model.`` and
``model.video_audio_compressor.``.

What converts: the language model (transformers ``hyperclovax``), written shard by shard as a
causal-LM folder and extended by ``omni.backbones``; the Qwen2.5-VL vision transformer and the
Qwen2-Audio encoder with their projectors, as Omni encoders of those transformers classes
(``omni.hcx_parts``); the code tokens the official tokenizer holds, described in place. Every
other part present is listed in the report with the reason it was not converted; nothing is
guessed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import save_file

from omni.hcx_parts import IMAGE_GRID, PARTS, check_part, code_starts, encoder_config, load_part

LANGUAGE_MODEL = "model.language_model."
# Unified prefix -> (part, why it is not converted).
REFUSED = {
    "model.discrete_vision_model.": (
        "image tokenizer (TA-Tok)",
        "SigLIP2 features with a SimVQ bottleneck need the original TA-Tok code "
        "(OmniServe encoder/vision/track_b/app/model/ta_tok.py); no public class fits",
    ),
    "model.discrete_audio_model.": (
        "speech tokenizer (CosyVoice2 units)",
        "the FSQ unit tokenizer needs CosyVoice2's original code "
        "(OmniServe encoder/audio/track_b/app/model/cosyvoice.py)",
    ),
    "model.video_audio_compressor.": (
        "video-audio compressor",
        "a MambaMia compressor with no transformers class "
        "(OmniServe encoder/audio/track_b/app/model/mambamia_videoaudio_compressor.py)",
    ),
}
DECODER_REASON = (
    "the decoders' folders are not read: the vision decoder's transformer is OmniServe's own "
    "(decoder/vision/track_b/pipeline.py, VisionTransformer) and the Unit-BigVGAN vocoder with "
    "its ECAPA speaker encoder is OmniServe's own code (decoder/audio/codec); no public class fits"
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
)


def read_unified(folder: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The unified config and weight map, once they are the official layout."""
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder} is not a model folder: it has no config.json")
    config = json.loads((folder / "config.json").read_text())
    text_config = config.get("text_config")
    if not isinstance(text_config, dict) or text_config.get("model_type") != "hyperclovax":
        raise ValueError(
            f"{folder} is not the unified HyperCLOVA X Omni layout: its config.json needs a "
            "text_config with model_type 'hyperclovax'"
        )
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        raise ValueError(f"{folder} has no model.safetensors.index.json")
    weight_map = json.loads(index.read_text())["weight_map"]
    if not any(name.startswith(LANGUAGE_MODEL) for name in weight_map):
        raise ValueError(f"{folder} holds no {LANGUAGE_MODEL}* tensors: nothing to convert")
    return config, weight_map


def write_language_model(folder: Path, config: dict, weight_map: dict, out: Path) -> None:
    """The language model as a transformers causal-LM folder, one source shard at a time (no
    more than one shard's tensors in memory)."""
    out.mkdir(parents=True, exist_ok=True)
    renamed: dict[str, str] = {}
    total_size = 0
    for shard in sorted(set(weight_map.values())):
        names = [n for n, f in weight_map.items() if f == shard and n.startswith(LANGUAGE_MODEL)]
        if not names:
            continue
        with safe_open(folder / shard, framework="pt") as handle:
            tensors = {n[len(LANGUAGE_MODEL) :]: handle.get_tensor(n) for n in names}
        save_file(tensors, out / shard, metadata={"format": "pt"})
        renamed.update(dict.fromkeys(tensors, shard))
        total_size += sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": total_size}, "weight_map": renamed}
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    llm_config = {"architectures": ["HyperCLOVAXForCausalLM"], **config["text_config"]}
    (out / "config.json").write_text(json.dumps(llm_config, indent=2))
    for name in TOKENIZER_FILES:
        if (folder / name).is_file():
            shutil.copy2(folder / name, out / name)


def convert_hcx_omni(source: str | Path, out: str | Path, **options: Any) -> list[str]:
    """Convert ``source`` into the pipeline folder ``out``; returns the report (one line per
    part: converted, or skipped and why). ``options`` go to ``omni.backbones.build_pipeline``.

    Every part is checked (configs, tensor names and shapes from the safetensors headers,
    the code tokens) before any weight is read."""
    from omni.backbones import build_pipeline

    source = Path(source)
    config, weight_map = read_unified(source)
    width = config["text_config"]["hidden_size"]
    parts = {}
    for part in PARTS:
        if any(name.startswith(part.tower_prefix) for name in weight_map):
            entry = encoder_config(part, config, source)
            parts[part.modality] = (part, entry, check_part(part, entry, width, source, weight_map))
    blocks = _code_block_options(source)
    report = []
    with tempfile.TemporaryDirectory() as scratch:
        write_language_model(source, config, weight_map, Path(scratch))
        encoders = {modality: entry for modality, (_, entry, _) in parts.items()}
        pipeline, built = build_pipeline(
            scratch, **{**blocks, "encoders": encoders or None, **options}
        )
        for modality, (_, _, names) in parts.items():
            load_part(pipeline.model.encoders[modality], names, source, weight_map)
        pipeline.save_pretrained(out)
    report.append(f"converted: language model ({LANGUAGE_MODEL}*, hyperclovax)")
    report += [f"  {line}" for line in built if line.startswith(("vocabulary:", "text:", "mtp:"))]
    for modality, (part, entry, names) in parts.items():
        report.append(
            f"converted: {modality} encoder ({part.tower_prefix}* and {part.projector_prefix}*, "
            f"{len(names)} tensors) as an Omni {entry['type']} encoder"
        )
    report += _skipped(source, weight_map, parts)
    return report


def _code_block_options(folder: Path) -> dict[str, Any]:
    """``build_pipeline`` options placing the code blocks the tokenizer already holds in place."""
    from transformers import AutoTokenizer

    found = code_starts(AutoTokenizer.from_pretrained(folder))
    options: dict[str, Any] = {f"{m}_codes": count for m, (_, count) in found.items()}
    if "image" in found:
        options["image_grid"] = IMAGE_GRID
    if found:
        options["code_starts"] = {m: first for m, (first, _) in found.items()}
    return options


def _skipped(folder: Path, weight_map: dict[str, str], parts: dict) -> list[str]:
    lines = []
    for part in PARTS:
        if part.modality not in parts and any(
            n.startswith(part.projector_prefix) for n in weight_map
        ):
            lines.append(
                f"skipped: {part.modality} projector ({part.projector_prefix}*): the checkpoint "
                f"has no {part.tower_prefix}* encoder for it"
            )
    for prefix, (part, why) in REFUSED.items():
        count = sum(name.startswith(prefix) for name in weight_map)
        if count:
            lines.append(f"skipped: {part} ({prefix}*, {count} tensors): {why}")
    for sub in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        lines.append(f"skipped: {sub}/ ({DECODER_REASON})")
    return lines
