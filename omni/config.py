"""``OmniConfig``: the backbone's own transformers config plus what Omni adds around it.

Swapping HyperCLOVA X for K-EXAONE or Solar Open is a change of ``backbone_config`` only.
"""

from __future__ import annotations

from huggingface_hub.dataclasses import strict
from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

MOE_BALANCE = ("auto", "bias", "aux", "none")


@strict
class OmniConfig(PreTrainedConfig):
    """Config of an Omni model.

    Args:
        backbone_config: any transformers causal-LM config (dict with ``model_type`` or object).
            Its ``vocab_size`` is replaced by the unified vocabulary's size.
        vocab_layout: ``VocabLayout.to_dict()``: the text/special/image/audio blocks.
        encoders: modality (``image``/``audio``/``video``) -> encoder config for
            ``encoders.build_encoder``; their output width is the backbone's hidden size.
        code_tokenizers: modality (``image``/``audio``) -> subfolder name of a saved discrete
            tokenizer inside the checkpoint folder.
        decoders: modality (``image``/``audio``) -> subfolder name of a saved decoder.
        mtp_layers: depth of the multi-token-prediction module (0 = none, 1 = HCX Omni's).
        mtp_loss_scale: weight of the MTP loss in the total loss (schedules live in recipes).
        moe_balance: ``bias`` (auxiliary-loss-free score-correction bias updates), ``aux``
            (Switch-style auxiliary loss), ``none``, or ``auto`` (bias when the router has a
            score-correction bias, aux for other MoE routers, none for dense backbones).
        moe_bias_update_rate: gamma of the bias update.
        moe_aux_loss_coef: weight of the auxiliary balance loss.
    """

    model_type = "omni"
    sub_configs_defaults = {
        "backbone_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
    }

    backbone_config: dict | PreTrainedConfig | None = None
    vocab_layout: dict | None = None
    encoders: dict | None = None
    code_tokenizers: dict | None = None
    decoders: dict | None = None
    mtp_layers: int = 1
    mtp_loss_scale: float = 0.3
    moe_balance: str = "auto"
    moe_bias_update_rate: float = 1e-3
    moe_aux_loss_coef: float = 1e-2
    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.vocab_layout is None:
            raise ValueError("OmniConfig needs a vocab_layout (VocabLayout.to_dict())")
        if self.moe_balance not in MOE_BALANCE:
            raise ValueError(f"moe_balance must be one of {MOE_BALANCE}, got {self.moe_balance!r}")
        if self.mtp_layers not in (0, 1):
            raise ValueError(f"mtp_layers must be 0 or 1 (depth-1 MTP), got {self.mtp_layers}")
        self.backbone_config.vocab_size = self.vocab_size

    def get_text_config(self, decoder=None, encoder=None) -> PreTrainedConfig:
        """The backbone's config: what generation utilities size caches and heads from."""
        return self.backbone_config

    @property
    def vocab_size(self) -> int:
        from omni.vocab import VocabLayout

        return VocabLayout.from_dict(self.vocab_layout).total_size

    @property
    def hidden_size(self) -> int:
        return self.backbone_config.hidden_size

    @property
    def max_sequence_length(self) -> int:
        return self.backbone_config.max_position_embeddings
