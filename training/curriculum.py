"""Recipes: each training stage is a YAML file, read here into a :class:`Recipe`.

A stage names its data mixture, the parameter groups that train (everything else is frozen),
its losses and their weights (MTP scale schedule, MoE balance), the sequence length, the
batch and the learning-rate schedule, and optionally a RoPE scaling for context extension.
A curriculum file lists stages and says where the named manifests and tokenizers live::

    model: {preset: micro-llama}             # or init: path/to/omni-checkpoint
    manifests: {toyworld: runs/toyworld/manifest.jsonl}
    code_tokenizers: {image: runs/tok/image, audio: runs/tok/speech}
    stages: [pretrain-1-discrete.yaml, ..., sft-4-reasoning.yaml]
    overrides: {steps: 4}                    # applied to every stage (tiny test runs)

Parameter groups map to parameter-name prefixes of ``OmniForConditionalGeneration``:

==================  ==============================================================
``embeddings``      the backbone's token embedding and LM head (the unified vocabulary)
``backbone``        every other backbone parameter (decoder layers, final norm)
``encoders.image``  the vision tower (``encoders.image.tower``)
``encoders.audio``  the audio encoder (``encoders.audio.encoder``)
``encoders.video``  the video encoder's own parameters, if any
``projectors``      every encoder's projector into the backbone width
``mtp``             the multi-token-prediction module
==================  ==============================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from torch import nn

from omni.common.schedule import Schedule, warmup_cosine
from omni.mtp_chain import check_mtp_training

GROUPS = (
    "embeddings",
    "backbone",
    "encoders.image",
    "encoders.audio",
    "encoders.video",
    "projectors",
    "mtp",
)


@dataclass
class MixtureEntry:
    """One weighted source of a stage's mixture: a named manifest, filtered."""

    manifest: str
    weight: float = 1.0
    split: str = "train"
    tasks: list[str] | None = None
    media: str | None = None  # only samples holding such a segment (image, audio, video)
    optional: bool = False  # a source with no such samples is skipped (logged), not an error


@dataclass
class Recipe:
    """One training stage, as its YAML file states it."""

    name: str
    mixture: list[MixtureEntry]
    trainable: list[str]
    sequence_length: int = 512
    loss_on: str = "assistant"
    media_mode: str | None = None
    think: str = "keep"
    steps: int = 100
    rows_per_step: int = 8
    micro_rows: int = 2
    lr: float = 3e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 10
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    mtp_scale: list[list[float]] = field(default_factory=lambda: [[0.0, 0.3]])
    # The MTP loss over chains of drafts (omni.mtp_chain): depths 1..mtp_depth, on the labels
    # or on the main model's own greedy choices ("model"; for a stage that trains mtp alone).
    mtp_depth: int = 1
    mtp_targets: str = "labels"
    moe_bias_update: bool = True
    moe_aux_loss_coef: float | None = None
    rope: dict[str, Any] | None = None
    lookahead: int = 64
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    seed: int = 0
    description: str = ""
    # Manifests of the mixture split into difficulty buckets and weighted by
    # ``training.curation.balanced_weights``, as estimated by the model the stage starts from.
    balance_difficulty: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.trainable) - set(GROUPS))
        if unknown:
            raise ValueError(
                f"recipe {self.name}: unknown parameter groups {unknown}; known {GROUPS}"
            )
        if not self.mixture:
            raise ValueError(f"recipe {self.name}: the data mixture is empty")
        if self.rows_per_step % self.micro_rows:
            raise ValueError(
                f"recipe {self.name}: rows_per_step {self.rows_per_step} is not a multiple of "
                f"micro_rows {self.micro_rows}"
            )
        named = {entry.manifest for entry in self.mixture}
        unbalanced = sorted(set(self.balance_difficulty) - named)
        if unbalanced:
            raise ValueError(
                f"recipe {self.name}: balance_difficulty names {unbalanced}, which are not in "
                f"its mixture ({sorted(named)})"
            )
        try:
            check_mtp_training(self.mtp_depth, self.mtp_targets)
        except ValueError as error:
            raise ValueError(f"recipe {self.name}: {error}") from None
        if self.think not in ("keep", "drop"):
            raise ValueError(f"recipe {self.name}: think must be 'keep' or 'drop'")
        if self.rope is not None and self.rope.get("rope_type") not in (
            "linear",
            "yarn",
            "dynamic",
        ):
            raise ValueError(f"recipe {self.name}: rope.rope_type must be linear, yarn or dynamic")

    def lr_schedule(self) -> Schedule:
        """Linear warmup, then cosine decay to ``min_lr_ratio * lr`` at the last step
        (transformers' ``get_cosine_with_min_lr_schedule_with_warmup``)."""
        return warmup_cosine(self.warmup_steps, self.steps, self.min_lr_ratio)

    def mtp_loss_scale(self, step: int) -> float:
        """Piecewise-constant schedule: ``[[fraction_of_stage, scale], ...]`` (e.g. 0.3 then 0.1)."""
        fraction = step / max(1, self.steps)
        scale = self.mtp_scale[0][1]
        for start, value in self.mtp_scale:
            if fraction >= start:
                scale = value
        return float(scale)

    def mtp_training(self) -> dict[str, Any]:
        """The forward's MTP-loss keywords; none for depth 1 on the labels (the default)."""
        if (self.mtp_depth, self.mtp_targets) == (1, "labels"):
            return {}
        return {"mtp_depth": self.mtp_depth, "mtp_targets": self.mtp_targets}

    @classmethod
    def from_dict(cls, data: dict[str, Any], overrides: dict[str, Any] | None = None) -> Recipe:
        data = {**data, **(overrides or {})}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"recipe {data.get('name', '?')}: unknown keys {unknown}")
        mixture = [MixtureEntry(**entry) for entry in data.pop("mixture", [])]
        return cls(mixture=mixture, **data)


def load_yaml(path: str | Path) -> dict[str, Any]:
    import yaml

    path = Path(path)
    if not path.is_file():
        from omni.resources import shipped_path

        raise ValueError(
            f"no recipe file at {path} (the shipped recipes: {shipped_path('configs')})"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a YAML mapping")
    return data


@dataclass
class Curriculum:
    """Stages in order, plus where their named manifests and tokenizers are."""

    stages: list[Recipe]
    manifests: dict[str, str]
    code_tokenizers: dict[str, str]
    model: dict[str, Any]
    root: Path

    @classmethod
    def load(cls, path: str | Path, data_paths: dict[str, str] | None = None) -> Curriculum:
        """A curriculum file (with ``stages``) or a single stage file."""
        path = Path(path)
        data = load_yaml(path)
        if "stages" not in data:
            data = {"stages": [path.name]}
        overrides = data.get("overrides") or {}
        stages = [
            Recipe.from_dict(load_yaml(path.parent / name), overrides) for name in data["stages"]
        ]
        manifests = {k: str(path.parent / v) for k, v in (data.get("manifests") or {}).items()}
        manifests.update(data_paths or {})
        tokenizers = {
            k: str(path.parent / v) for k, v in (data.get("code_tokenizers") or {}).items()
        }
        return cls(stages, manifests, tokenizers, data.get("model") or {}, path.parent)

    def select(self, stage: str) -> list[Recipe]:
        """``all``, a full stage name, or a unique prefix of one (``sft-2``)."""
        if stage == "all":
            return list(self.stages)
        matches = [r for r in self.stages if r.name == stage or r.name.startswith(stage + "-")]
        if len(matches) != 1:
            names = ", ".join(r.name for r in self.stages)
            raise ValueError(f"stage {stage!r} matches {len(matches)} stages; stages are: {names}")
        return matches


# --- parameter groups --------------------------------------------------------------------
def parameter_group(name: str) -> str:
    """The group of a parameter name, by prefix (embeddings are told apart in group_names)."""
    if name.startswith("backbone."):
        return "backbone"
    if name.startswith("mtp."):
        return "mtp"
    if name.startswith("encoders."):
        modality = name.split(".")[1]
        return "projectors" if ".projector." in name else f"encoders.{modality}"
    raise ValueError(f"parameter {name} belongs to no known group")


def group_names(model: nn.Module) -> dict[str, str]:
    """Parameter name -> group, with the embedding and LM head in ``embeddings``."""
    embedding_ids = {
        id(model.get_input_embeddings().weight),
        id(model.get_output_embeddings().weight),
    }
    groups = {}
    for name, parameter in model.named_parameters():
        groups[name] = "embeddings" if id(parameter) in embedding_ids else parameter_group(name)
    return groups


def apply_trainable(model: nn.Module, trainable: list[str]) -> dict[str, int]:
    """Freeze every parameter outside ``trainable`` groups; returns parameters per group."""
    counts = dict.fromkeys(GROUPS, 0)
    groups = group_names(model)
    for name, parameter in model.named_parameters():
        group = groups[name]
        parameter.requires_grad_(group in trainable)
        counts[group] += parameter.numel()
    missing = [g for g in trainable if counts[g] == 0]
    if missing:
        raise ValueError(f"this model has no parameters in the trainable groups {missing}")
    return counts


# --- context extension -------------------------------------------------------------------
def apply_rope_scaling(model: nn.Module, rope: dict[str, Any]) -> None:
    """Set RoPE scaling (``rope_type`` yarn/linear/dynamic, ``factor``,
    ``original_max_position_embeddings``, and any other key transformers' ``rope_parameters``
    reads for that type, e.g. YaRN's ``beta_fast`` / ``beta_slow`` / ``attention_factor``) on
    the backbone and MTP configs and rebuild their rotary embeddings. The model's
    ``max_position_embeddings`` becomes the extended length, ``original * factor``."""
    config = model.config.backbone_config
    factor = float(rope["factor"])
    original = int(rope.get("original_max_position_embeddings", config.max_position_embeddings))
    parameters = {
        **(config.rope_parameters or {}),
        **rope,
        "factor": factor,
        "original_max_position_embeddings": original,
    }
    length = int(original * factor)  # the extended context; YaRN reads factor from it too
    for module in model.modules():
        rotary = getattr(module, "rotary_emb", None)
        owner_config = getattr(module, "config", None)
        if rotary is None or owner_config is None:
            continue
        owner_config.rope_parameters = dict(parameters)
        owner_config.max_position_embeddings = length
        module.rotary_emb = type(rotary)(config=owner_config).to(
            next(iter(rotary.buffers())).device
        )
    config.rope_parameters = dict(parameters)
    config.max_position_embeddings = length
