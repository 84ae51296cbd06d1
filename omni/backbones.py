"""Build an Omni model on a pretrained transformers causal LM (K-EXAONE, Solar Open, HyperCLOVA X,
Llama, ...), extending it rather than replacing it.

- The folder is checked first (config, causal-LM class, safetensors and shards, tokenizer, the
  release's MTP tensor names), so bad input is a ``ValueError`` before any weight is read; a
  tensor the checkpoint lacks is named from the load.
- transformers loads the weights (``from_pretrained``: a meta-device skeleton, then each shard's
  tensors assigned in their stored dtype, so no fp32 copy of the backbone is made); Omni's own
  small parts (MTP, encoders) are built and then cast to that dtype.
- The backbone's tokenizer stays the text block. Rows past ``len(tokenizer)`` (padding some
  releases add) are dropped; Omni's specials and the image / audio code blocks are appended with
  ``resize_token_embeddings(mean_resizing=True)``: new rows are drawn around the old rows' mean
  and covariance, so the text predictions of the extended model equal the source's.
- Encoders, projectors and the MTP head are attached; MTP weights a release ships under its own
  names (``omni.release_mtp``) are loaded into Omni's MTP module.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from omni.chat_template import CHAT_TEMPLATE, attach_chat_template
from omni.presets import MICRO_CODE_BLOCKS
from omni.vocab import VocabLayout

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")


@dataclass
class BuiltOmni:
    """What a build returns: the model, its text tokenizer (Omni's specials and chat template
    attached) and a report of what was taken from the source and what was made new."""

    model: Any
    tokenizer: Any
    report: list[str] = field(default_factory=list)


def check_backbone_folder(folder: str | Path) -> dict[str, Any]:
    """The folder's ``config.json`` as a dict, once it is known to hold a causal LM that this
    transformers can build, in safetensors; otherwise a ``ValueError`` saying what is wrong."""
    folder = Path(folder)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{folder} is not a transformers model folder: it has no config.json")
    config = json.loads(config_path.read_text())
    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING_NAMES:
        raise ValueError(
            f"unknown backbone type {model_type!r} in {config_path}: transformers "
            f"{transformers.__version__} has no model of that type"
        )
    causal = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.get(model_type)
    architectures = config.get("architectures") or []
    if causal is None or (architectures and causal not in architectures):
        raise ValueError(
            f"{folder} is not a causal LM: its model_type {model_type!r} / architectures "
            f"{architectures} have no AutoModelForCausalLM class (expected {causal or 'one'})"
        )
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise ValueError(
            f"{folder} has no safetensors weights ({' or '.join(WEIGHT_FILES)}); pickled "
            "checkpoints are not read"
        )
    for shard in sorted(set(weight_map(folder).values())):
        if not (folder / shard).is_file():
            raise ValueError(f"{folder} is missing the shard {shard} its index lists")
    return config


def weight_map(folder: Path) -> dict[str, str]:
    """Tensor name -> file, from the sharded index (or the one file's header)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return json.loads(index.read_text())["weight_map"]
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", framework="pt") as handle:
        return dict.fromkeys(handle.keys(), "model.safetensors")


def _checked_tokenizer(tokenizer: Any, vocab_size: int) -> Any:
    if len(tokenizer) > vocab_size:
        raise ValueError(
            f"the tokenizer has {len(tokenizer)} tokens but the embedding has only "
            f"{vocab_size} rows: they come from different models"
        )
    return tokenizer


def _check_folder(folder: Path, tokenizer: Any) -> Any:
    """Check the folder; return its tokenizer (or the one given), checked against its embedding."""
    check_backbone_folder(folder)
    if tokenizer is None:
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except (OSError, ValueError) as error:
            raise ValueError(f"{folder} has no tokenizer transformers can load: {error}") from None
    vocab_size = AutoConfig.from_pretrained(folder).get_text_config().vocab_size
    return _checked_tokenizer(tokenizer, vocab_size)


def _load_source(folder: Path) -> PreTrainedModel:
    model, info = AutoModelForCausalLM.from_pretrained(
        folder, dtype="auto", output_loading_info=True
    )
    if info["missing_keys"]:
        missing = sorted(info["missing_keys"])
        raise ValueError(
            f"the checkpoint in {folder} lacks {len(missing)} tensors the backbone needs, "
            f"e.g. {missing[:5]}"
        )
    return model


def _omni_tokenizer(tokenizer: Any, layout: VocabLayout) -> Any:
    """The backbone's tokenizer with Omni's specials; Omni's template is the default chat
    template, the backbone's own is kept under the name ``backbone`` (its role markers are text
    tokens, so text chats rendered with it get the source model's predictions)."""
    own = tokenizer.chat_template
    tokenizer = attach_chat_template(_without_template(tokenizer), layout)
    if isinstance(own, str):
        tokenizer.chat_template = {"default": CHAT_TEMPLATE, "backbone": own}
    return tokenizer


def _without_template(tokenizer: Any) -> Any:
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.chat_template = None
    return tokenizer


def build_from_backbone(
    source: str | Path | PreTrainedModel,
    tokenizer: Any = None,
    image_codes: int | None = None,
    audio_codes: int | None = None,
    image_grid: tuple[int, int] | None = None,
    encoders: dict[str, dict[str, Any]] | None = None,
    mtp_layers: int = 1,
    seed: int = 0,
    code_starts: dict[str, int] | None = None,
) -> BuiltOmni:
    """An Omni model over ``source`` (a causal-LM folder, or a loaded model with ``tokenizer``,
    which is then extended in place).

    ``image_codes`` / ``audio_codes`` / ``image_grid`` size the code blocks (the codebooks of the
    discrete tokenizers the model will be trained with; by default the micro ones,
    ``omni.presets.MICRO_CODE_BLOCKS``); ``encoders`` are ``config.encoders``
    entries (none by default). ``seed`` fixes the draw of the new rows and Omni's new layers.
    ``code_starts`` (modality -> first id) places code blocks the backbone's tokenizer already
    holds in place (``VocabLayout.image_start`` / ``audio_start``): no row is appended for them.
    """
    from omni.config import OmniConfig
    from omni.modeling import OmniForConditionalGeneration
    from omni.release_mtp import check_release_mtp, load_release_mtp, release_mtp_names

    # Every check runs before the first expensive step, loading the weights.
    report: list[str] = []
    folder, mtp_names = None, {}
    if isinstance(source, PreTrainedModel):
        if tokenizer is None:
            raise ValueError("a loaded backbone needs its tokenizer: pass tokenizer=...")
        backbone = source
    else:
        folder = Path(source)
        tokenizer = _check_folder(folder, tokenizer)
        mtp_names = release_mtp_names(folder) if mtp_layers else {}
        if mtp_names:
            check_release_mtp(folder, mtp_names, AutoConfig.from_pretrained(folder))
        backbone = _load_source(folder)
        report.append(f"backbone: {backbone.config.model_type} weights from {folder}")
    text_size = len(_checked_tokenizer(tokenizer, backbone.config.vocab_size))
    blocks = {**MICRO_CODE_BLOCKS}
    given = {"image_codes": image_codes, "audio_codes": audio_codes, "image_grid": image_grid}
    blocks.update({name: value for name, value in given.items() if value is not None})
    starts = code_starts or {}
    layout = VocabLayout(
        text_size=text_size,
        **{**blocks, "image_grid": tuple(blocks["image_grid"])},
        image_start=starts.get("image"),
        audio_start=starts.get("audio"),
    )
    torch.manual_seed(seed)
    _extend_vocabulary(backbone, layout, report)
    config = OmniConfig(
        backbone_config=backbone.config,
        vocab_layout=layout.to_dict(),
        encoders=encoders or None,
        mtp_layers=mtp_layers,
    )
    model = OmniForConditionalGeneration(config, backbone=backbone)
    dtype = backbone.get_input_embeddings().weight.dtype
    for part in (model.mtp, model.encoders):
        if part is not None:
            part.to(dtype)  # Omni's new layers follow the backbone's stored dtype
    if model.mtp is not None and mtp_names:
        load_release_mtp(model.mtp, folder, mtp_names, backbone.config)
        report.append(f"mtp: {len(mtp_names)} tensors from the release")
    elif model.mtp is not None:
        report.append("mtp: new (the source ships no MTP weights)")
    report.append(f"encoders: {sorted(model.encoders) or 'none'} (new)")
    return BuiltOmni(model.eval(), _omni_tokenizer(tokenizer, layout), report)


def _extend_vocabulary(backbone: PreTrainedModel, layout: VocabLayout, report: list[str]) -> None:
    rows = backbone.get_input_embeddings().weight.shape[0]
    if rows > layout.text_size:  # padding rows past the tokenizer: no id ever reaches them
        backbone.resize_token_embeddings(layout.text_size, mean_resizing=False)
        report.append(f"text: dropped {rows - layout.text_size} padding rows past the tokenizer")
    backbone.resize_token_embeddings(layout.total_size, mean_resizing=True)
    appended = ", ".join(
        [
            "specials",
            *(m + " codes" for m in ("image", "audio") if m not in layout.in_place),
            "padding",
        ]
    )
    report.append(
        f"vocabulary: {layout.text_size} text rows kept, {layout.total_size - layout.text_size} "
        f"appended ({appended}) from the rows' mean and covariance"
    )
    for modality in layout.in_place:
        block = layout.range_of(modality)
        report.append(
            f"vocabulary: {modality} codes in place, ids {block.start}..{block.stop - 1} of the "
            "text block (their trained rows kept)"
        )


def build_pipeline(source: str | Path | PreTrainedModel, **options: Any):
    """``(OmniPipeline, report)`` over a pretrained backbone: :func:`build_from_backbone`'s model
    and tokenizer, ready to ``save_pretrained`` as the folder a curriculum trains from."""
    from omni.pipeline import OmniPipeline

    built = build_from_backbone(source, **options)
    return OmniPipeline(built.model, built.tokenizer), built.report
