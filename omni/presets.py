"""Named configurations: the published backbones at full size and micro twins for CPU tests.

Full-size shapes come from the published model cards and configs:
- K-EXAONE-236B-A23B (LGAI-EXAONE/K-EXAONE-236B-A23B, transformers ``exaone_moe``): 48 layers,
  hidden 6144, 64 query / 8 KV heads of 128, layer 0 dense (18,432), layers 1-47 MoE with 128
  routed experts of 2,048, top-8, sigmoid routing with a score-correction bias, routed
  scaling 2.5, one shared expert, vocabulary 153,600 (SuperBPE), context 262,144, LLLG
  sliding-window schedule (window 128), one MTP block.
- Solar Open 100B (upstage/Solar-Open-100B, transformers ``solar_open``): 48 layers, hidden
  4096, 64 query / 8 KV heads of 128, every layer MoE with 128 routed experts of 1,280 + 1
  shared, top-8, vocabulary 196,608, context 131,072; 102.6B total / 12B active.
- HyperCLOVA X SEED 8B Omni (naver-hyperclovax/HyperCLOVAX-SEED-Omni-8B, tech report
  arXiv 2601.01792): dense 36-layer decoder, hidden 4096, 32K context, 27x27 discrete image
  codes from a 65,536-entry codebook, 6,561 FSQ audio units at 25 Hz, MTP with one layer.
  The card gives no per-layer widths; heads and FFN width here are our assumption sized to 8B.

Parameter counts are computed on the ``meta`` device: nothing is allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedConfig

from omni.vocab import VocabLayout

BACKBONES: dict[str, dict[str, Any]] = {
    "k-exaone-236b-a23b": dict(
        model_type="exaone_moe",
        hidden_size=6144,
        num_hidden_layers=48,
        num_attention_heads=64,
        num_key_value_heads=8,
        head_dim=128,
        intermediate_size=18432,
        moe_intermediate_size=2048,
        num_experts=128,
        num_experts_per_tok=8,
        num_shared_experts=1,
        first_k_dense_replace=1,
        routed_scaling_factor=2.5,
        sliding_window=128,
        sliding_window_pattern=4,
        vocab_size=153600,
        max_position_embeddings=262144,
    ),
    "solar-open-102b-a12b": dict(
        model_type="solar_open",
        hidden_size=4096,
        num_hidden_layers=48,
        num_attention_heads=64,
        num_key_value_heads=8,
        head_dim=128,
        moe_intermediate_size=1280,
        n_routed_experts=128,
        n_shared_experts=1,
        num_experts_per_tok=8,
        vocab_size=196608,
        max_position_embeddings=131072,
    ),
    "hcx-omni-8b": dict(
        model_type="hyperclovax",
        hidden_size=4096,
        num_hidden_layers=36,
        num_attention_heads=32,
        num_key_value_heads=8,
        intermediate_size=12288,
        vocab_size=110592,
        max_position_embeddings=32768,
    ),
    # Micro twins: the same model_type and structure at a few million parameters.
    "micro-k-exaone": dict(
        model_type="exaone_moe",
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        intermediate_size=192,
        moe_intermediate_size=32,
        num_experts=8,
        num_experts_per_tok=2,
        num_shared_experts=1,
        first_k_dense_replace=1,
        routed_scaling_factor=2.5,
        sliding_window=16,
        sliding_window_pattern=4,
        max_position_embeddings=2048,
    ),
    "micro-solar-open": dict(
        model_type="solar_open",
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        moe_intermediate_size=32,
        n_routed_experts=8,
        n_shared_experts=1,
        num_experts_per_tok=2,
        max_position_embeddings=2048,
    ),
    "micro-hcx-omni": dict(
        model_type="hyperclovax",
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=192,
        max_position_embeddings=2048,
    ),
    "micro-llama": dict(
        model_type="llama",
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=192,
        max_position_embeddings=2048,
    ),
}

# Discrete blocks each full-size Omni model adds to its backbone's text vocabulary.
CODE_BLOCKS = {
    "k-exaone-236b-a23b": dict(image_codes=65536, audio_codes=6561, image_grid=(27, 27)),
    "solar-open-102b-a12b": dict(image_codes=65536, audio_codes=6561, image_grid=(27, 27)),
    "hcx-omni-8b": dict(image_codes=65536, audio_codes=6561, image_grid=(27, 27)),
}
MICRO_CODE_BLOCKS = dict(image_codes=256, audio_codes=243, image_grid=(8, 8))


def names() -> list[str]:
    return sorted(BACKBONES)


def backbone_config(name: str, **overrides: Any) -> PreTrainedConfig:
    """The transformers config of a named backbone (``overrides`` win)."""
    if name not in BACKBONES:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(names())}")
    values = {"tie_word_embeddings": False, **BACKBONES[name], **overrides}
    model_type = values.pop("model_type")
    return AutoConfig.for_model(model_type, **values)


def vocab_layout(name: str, text_size: int | None = None) -> VocabLayout:
    """The unified vocabulary of a named Omni model (text size from the backbone by default)."""
    blocks = CODE_BLOCKS.get(name, MICRO_CODE_BLOCKS)
    text_size = text_size or BACKBONES[name].get("vocab_size", 512)
    return VocabLayout(text_size=text_size, **blocks)


@dataclass
class ParameterCount:
    """Totals in parameters; ``active`` counts the routed experts a token actually uses."""

    name: str
    model_type: str
    total: int
    active: int
    mtp: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_type": self.model_type,
            "total": self.total,
            "active": self.active,
            "mtp": self.mtp,
            "total_b": round(self.total / 1e9, 3),
            "active_b": round(self.active / 1e9, 3),
        }


def routed_fraction(config: PreTrainedConfig) -> float:
    """Share of the routed experts each token uses (1 for a dense backbone)."""
    experts = getattr(config, "num_experts", None) or getattr(config, "n_routed_experts", None)
    return config.num_experts_per_tok / experts if experts else 1.0


def count_parameters(name: str) -> ParameterCount:
    """Total and active parameters of a named backbone, plus its MTP module, on ``meta``."""
    from omni.mtp import MultiTokenPredictor

    config = backbone_config(name)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
        mtp = MultiTokenPredictor(config)
    fraction = routed_fraction(config)
    total = active = 0
    for param_name, param in model.named_parameters():
        total += param.numel()
        routed = ".mlp.experts." in param_name
        active += round(param.numel() * fraction) if routed else param.numel()
    mtp_count = sum(p.numel() for p in mtp.parameters())
    return ParameterCount(name, config.model_type, total, active, mtp_count)


def omni_config(
    name: str,
    text_size: int | None = None,
    encoders: dict[str, dict[str, Any]] | None = None,
    layout: VocabLayout | None = None,
    **overrides: Any,
):
    """An ``OmniConfig`` over a named backbone: unified vocabulary, encoders, MTP."""
    from omni.config import OmniConfig

    layout = layout or vocab_layout(name, text_size)
    backbone_overrides = {k: v for k, v in overrides.items() if k not in _OMNI_FIELDS}
    omni_overrides = {k: v for k, v in overrides.items() if k in _OMNI_FIELDS}
    return OmniConfig(
        backbone_config=backbone_config(name, **backbone_overrides).to_dict(),
        vocab_layout=layout.to_dict(),
        encoders=encoders,
        **omni_overrides,
    )


_OMNI_FIELDS = {
    "code_tokenizers",
    "decoders",
    "mtp_layers",
    "mtp_loss_scale",
    "moe_balance",
    "moe_bias_update_rate",
    "moe_aux_loss_coef",
}


MICRO_ENCODERS: dict[str, dict[str, Any]] = {
    "image": {"type": "vision", "model_name": "micro-vit", "token_budget": 4},
    # 2 s encoder windows instead of Whisper's 30 s keep micro audio cheap.
    "audio": {"type": "audio", "whisper": {"max_source_positions": 100}},
}


def build_micro(
    name: str = "micro-llama",
    tokenizer: Any = None,
    encoders: dict[str, dict[str, Any]] | None = None,
    seed: int = 0,
    layout: VocabLayout | None = None,
    **overrides: Any,
):
    """A randomly initialised micro Omni model and its processor, for tests and recipes.

    ``tokenizer`` defaults to the micro bilingual BPE; ``encoders`` to a micro ViT and a micro
    Whisper encoder (pass ``{}`` for a text-and-codes-only model).
    """
    from omni.modeling import OmniForConditionalGeneration
    from omni.processor import OmniProcessor

    if not name.startswith("micro-"):
        raise ValueError(f"build_micro builds micro configurations only, not {name!r}")
    if tokenizer is None:
        from tokenizers_mm.text import micro_text_tokenizer

        tokenizer = micro_text_tokenizer()
    config = omni_config(
        name,
        text_size=len(tokenizer),
        encoders=MICRO_ENCODERS if encoders is None else encoders,
        layout=layout,
        **overrides,
    )
    torch.manual_seed(seed)
    model = OmniForConditionalGeneration(config)
    return model, OmniProcessor.from_model(model, tokenizer)


def build_micro_pipeline(
    name: str = "micro-llama",
    seed: int = 0,
    voices: tuple[str, ...] = ("en-f1", "en-m1"),
    **overrides: Any,
):
    """A complete, randomly initialised micro pipeline: model, tokenizers and decoders.

    Nothing in it is trained; it exercises every path (inputs, output modalities, streaming,
    voices) at the real shapes. Codebooks: 64 image codes on an 8x8 grid, 27 speech units.
    ``overrides`` go to the backbone / Omni config (e.g. ``num_hidden_layers=4``).
    """
    from decoders.audio import UnitVocoder, VocoderConfig
    from decoders.vision import ImageDecoder, ImageDecoderConfig
    from omni.pipeline import OmniPipeline
    from tokenizers_mm.audio import SpeechUnitTokenizer
    from tokenizers_mm.text import micro_text_tokenizer
    from tokenizers_mm.vision import SemanticImageTokenizer

    torch.manual_seed(seed)
    tokenizer = micro_text_tokenizer()
    image_tokenizer = SemanticImageTokenizer(grid=8, codebook_size=64, hidden=32)
    speech_tokenizer = SpeechUnitTokenizer(whisper={"max_source_positions": 100}, levels=(3, 3, 3))
    layout = VocabLayout(
        text_size=len(tokenizer),
        image_codes=image_tokenizer.codebook_size,
        audio_codes=speech_tokenizer.codebook_size,
        image_grid=(8, 8),
    )
    model, _ = build_micro(name, tokenizer=tokenizer, seed=seed, layout=layout, **overrides)
    vocoder = UnitVocoder(
        VocoderConfig(num_units=speech_tokenizer.codebook_size, speakers=list(voices))
    )
    dim = vocoder.config.speaker_encoder.embedding_dim
    vocoder.set_speaker_table(list(voices), torch.randn(len(voices), dim))
    decoders = {
        "image": ImageDecoder(ImageDecoderConfig(codebook_size=image_tokenizer.codebook_size)),
        "audio": vocoder,
    }
    codes = {"image": image_tokenizer, "audio": speech_tokenizer}
    return OmniPipeline(model.eval(), tokenizer, codes, decoders)
