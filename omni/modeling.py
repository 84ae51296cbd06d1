"""``OmniForConditionalGeneration``: a transformers causal LM plus what Omni adds.

The backbone is whatever ``AutoModelForCausalLM.from_config`` builds for the config's
``model_type`` (dense HyperCLOVA X, the K-EXAONE or Solar Open MoE, Llama, Qwen3, ...), with
its embedding and LM head sized to the unified vocabulary. Omni adds the continuous encoders
(their outputs are scattered into the placeholder slots of ``inputs_embeds``), the depth-1 MTP
module and MoE balancing, and returns one loss::

    loss = next-token CE + mtp_loss_scale * MTP CE (t+2) + MoE auxiliary loss (if any)
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, PreTrainedModel
from transformers.generation import GenerationMixin

from omni.config import OmniConfig
from omni.losses import mtp_loss, shifted_cross_entropy
from omni.moe import BiasBalancer, bias_routers, has_aux_router
from omni.mtp import MultiTokenPredictor
from omni.vocab import PLACEHOLDERS, VocabLayout

# The MTP module reads the backbone's final-normed last hidden state. A forward hook on the
# decoder (installed once, on first need) stores it for the thread that asked (thread-local,
# so concurrent requests on one model never see each other's states); transformers'
# output_hidden_states would record every layer and costs far more per decoding step.
_CAPTURE = threading.local()


def _record_last_hidden(module: nn.Module, args: Any, output: Any) -> None:
    if getattr(_CAPTURE, "decoder", None) is module:
        _CAPTURE.hidden = output.last_hidden_state


@dataclass
class OmniOutput:
    """What one forward returns. ``loss`` is the weighted sum of the named parts.

    A plain dataclass with the small mapping face that transformers' generation loop reads
    outputs through (``"cache" in out``, ``out["cache"]``, ``out.get(...)``): a ``ModelOutput``
    gives the same but costs about 25 us to build, a few percent of a micro decoding step.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    lm_loss: torch.Tensor | None = None
    mtp_loss: torch.Tensor | None = None
    balance_loss: torch.Tensor | None = None
    mtp_logits: torch.Tensor | None = None
    cache: Any = None
    last_hidden_state: torch.Tensor | None = None

    def __contains__(self, key: str) -> bool:
        return getattr(self, key, None) is not None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None)
        return default if value is None else value


class OmniPreTrainedModel(PreTrainedModel):
    config: OmniConfig
    config_class = OmniConfig
    base_model_prefix = "omni"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True

    def _init_weights(self, module: nn.Module) -> None:
        # The backbone initialises itself on construction; this covers Omni's own layers.
        std = getattr(self.config.backbone_config, "initializer_range", 0.02)
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)


def _build_encoders(config: OmniConfig) -> nn.ModuleDict:
    if not config.encoders:
        return nn.ModuleDict()
    from encoders import build_encoder

    built = {}
    for modality, encoder_config in config.encoders.items():
        if modality not in PLACEHOLDERS:
            raise ValueError(
                f"unknown encoder modality {modality!r}; expected {sorted(PLACEHOLDERS)}"
            )
        built[modality] = build_encoder({**encoder_config, "out_dim": config.hidden_size})
    return nn.ModuleDict(built)


def _unshare_encoders(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with encoder tensors that share storage with an earlier one copied: the
    backbone's tied embeddings are transformers' to handle, a shared encoder tower is ours."""
    seen: set[int] = set()
    for name, tensor in state.items():
        if name.startswith("encoders."):
            if tensor.data_ptr() in seen:
                state[name] = tensor.clone()
            seen.add(tensor.data_ptr())
    return state


class OmniForConditionalGeneration(OmniPreTrainedModel, GenerationMixin):
    """Any-to-any model: one causal LM over the interleaved multimodal sequence."""

    def __init__(self, config: OmniConfig, backbone: PreTrainedModel | None = None) -> None:
        """``backbone``: a pretrained causal LM already sized to the unified vocabulary (see
        :meth:`from_backbone`). It is attached after ``post_init``, so its weights are never
        re-initialised; until then a skeleton on the meta device stands in, which costs nothing.
        """
        super().__init__(config)
        self.layout = VocabLayout.from_dict(config.vocab_layout)
        self._vocab_size = self.layout.total_size  # read once: checked on every decoding step
        self._known_max_length = config.max_sequence_length
        with torch.device("meta") if backbone is not None else contextlib.nullcontext():
            self.backbone = AutoModelForCausalLM.from_config(config.backbone_config)
        # The backbone's decoder, hooked to record its last hidden state on first need (plain
        # decoding never pays for it); kept, since ``get_decoder`` searches for it each call.
        # A tuple, so that it is not registered as a second copy of the submodule.
        self._hooked_decoder: tuple[nn.Module, ...] = ()
        self.encoders = _build_encoders(config)
        self.mtp = MultiTokenPredictor(config.backbone_config) if config.mtp_layers else None
        self.balance = self._balance_mode()
        self.balancer = None
        self.code_tokenizers: dict[str, Any] = {}
        self.post_init()
        if backbone is not None:
            self.backbone = backbone
        self._set_generation_ids()

    @classmethod
    def from_backbone(cls, source: Any, **options: Any) -> OmniForConditionalGeneration:
        """An Omni model over a pretrained transformers causal LM (a folder or a loaded model):
        its tokenizer stays the text block, Omni's specials and code blocks are appended rows.
        ``options`` are those of :func:`omni.backbones.build_from_backbone`."""
        from omni.backbones import build_from_backbone

        return build_from_backbone(source, **options).model

    # --- structure -----------------------------------------------------------------------
    def _balance_mode(self) -> str:
        mode = self.config.moe_balance
        if mode != "auto":
            return mode
        if bias_routers(self.backbone):
            return "bias"
        return "aux" if has_aux_router(self.config.backbone_config) else "none"

    @property
    def max_length(self) -> int:
        """Longest sequence the backbone takes (its ``max_position_embeddings``)."""
        return self.config.max_sequence_length

    def continuous_encoders(self) -> dict[str, nn.Module]:
        return dict(self.encoders.items())

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.backbone.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.backbone.get_output_embeddings()

    def enable_bias_balancing(self) -> BiasBalancer | None:
        """Start counting expert load for the auxiliary-loss-free bias update (training)."""
        if self.balance == "bias" and self.balancer is None:
            self.balancer = BiasBalancer(self.backbone, self.config.moe_bias_update_rate)
        return self.balancer

    def save_pretrained(self, save_directory: Any, *args: Any, **kwargs: Any) -> None:
        """transformers' ``save_pretrained``, writing as ``config.encoders`` the encoders the
        model holds: one attached after construction (``model.encoders["video"] = ...``) is
        saved with its weights and rebuilt by ``from_pretrained``; the config in memory is
        left as it was. A tower two encoders share (a video encoder over the image encoder's
        ViT) is saved once for each, so the reloaded model, whose encoders each own their
        tower, answers the same."""
        if kwargs.get("state_dict") is None:
            kwargs["state_dict"] = _unshare_encoders(self.state_dict())
        in_memory, self.config.encoders = self.config.encoders, self.held_encoder_configs()
        try:
            super().save_pretrained(save_directory, *args, **kwargs)
        finally:
            self.config.encoders = in_memory

    def held_encoder_configs(self) -> dict[str, dict[str, Any]] | None:
        """The ``config.encoders`` entry that rebuilds the encoders the model holds now."""
        return {
            modality: encoder.to_config() for modality, encoder in self.encoders.items()
        } or None

    # --- inputs --------------------------------------------------------------------------
    def embed(self, input_ids: torch.Tensor, media: dict[str, list[Any]] | None) -> torch.Tensor:
        """Token embeddings with encoder outputs scattered into the placeholder slots.

        Every placeholder must be matched by exactly one encoder embedding; the count is
        checked, so a prompt and its media can never silently disagree.
        """
        embeds = self.get_input_embeddings()(input_ids)
        for modality, placeholder in PLACEHOLDERS.items():
            slots = input_ids == self.layout.special_id(placeholder)
            items = (media or {}).get(modality) or []
            n_slots = int(slots.sum())
            if not items and not n_slots:
                continue
            if modality not in self.encoders:
                raise ValueError(
                    f"the input has {modality} slots but this model has no {modality} encoder"
                )
            features = self.encoders[modality](items) if items else []
            n_features = sum(int(f.shape[0]) for f in features)
            if n_features != n_slots:
                raise ValueError(
                    f"{n_slots} {modality} placeholder slots in input_ids but the {modality} "
                    f"encoder produced {n_features} embeddings for {len(items)} item(s)"
                )
            features = torch.cat(features).to(embeds.device, embeds.dtype)
            embeds = embeds.masked_scatter(slots.unsqueeze(-1), features)
        return embeds

    # --- forward -------------------------------------------------------------------------
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        media: dict[str, list[Any]] | None = None,
        inputs_embeds: torch.Tensor | None = None,
        cache: Any = None,
        use_cache: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        return_hidden: bool = False,
        mtp_depth: int = 1,
        mtp_targets: str = "labels",
        **kwargs: Any,
    ) -> OmniOutput:
        """One step of the LM. With ``labels`` the loss includes MTP and MoE balance terms;
        ``mtp_depth`` > 1 trains the MTP module at the chain depths it drafts at, and
        ``mtp_targets="model"`` on the main model's greedy choices (``omni.mtp_chain``)."""
        past = cache.get_seq_length() if cache is not None else 0
        token_ids = None
        if inputs_embeds is None:
            if input_ids is None:
                raise ValueError("forward needs input_ids or inputs_embeds")
            self._check_ids(input_ids, past + input_ids.shape[1])
            if past == 0 or media:
                inputs_embeds = self.embed(input_ids, media)
            else:  # a decoding step: plain tokens, which the backbone looks up itself
                token_ids = input_ids
        else:
            self._check_length(past + inputs_embeds.shape[1])
        if use_cache is None and cache is None and (labels is not None or position_ids is not None):
            # transformers derives the block-diagonal mask of a packed row from its position_ids
            # only when no cache exists (masking_utils._preprocess_mask_arguments), and the
            # backbone builds one whenever config.use_cache is on: a loss or a packed forward
            # must not, or samples packed into one row attend to each other.
            use_cache = False
        want_hidden = labels is not None or return_hidden
        extra = {"output_router_logits": True} if self.balance == "aux" else {}
        if want_hidden:
            if not self._hooked_decoder:
                self._hooked_decoder = (self.backbone.get_decoder(),)
                self._hooked_decoder[0].register_forward_hook(_record_last_hidden)
            _CAPTURE.decoder, _CAPTURE.hidden = self._hooked_decoder[0], None
        try:
            out = self.backbone(
                input_ids=token_ids,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                logits_to_keep=logits_to_keep,
                **extra,
                **kwargs,
            )
        finally:
            if want_hidden:
                _CAPTURE.decoder = None
        hidden = _CAPTURE.hidden if want_hidden else None
        result = OmniOutput(logits=out.logits, cache=out.cache, last_hidden_state=hidden)
        if labels is not None:
            if inputs_embeds is None:
                inputs_embeds = self.get_input_embeddings()(token_ids)
            mtp_training = (mtp_depth, mtp_targets)
            self._add_losses(
                result, out, inputs_embeds, labels, attention_mask, position_ids, mtp_training
            )
        return result

    def _check_ids(self, input_ids: torch.Tensor, length: int) -> None:
        self._check_length(length)
        if input_ids.numel() == 1:  # a decoding step: one read instead of a reduction
            low = high = int(input_ids.item())
        else:
            low, high = (int(bound) for bound in torch.aminmax(input_ids))
        if low < 0 or high >= self._vocab_size:
            raise ValueError(f"input_ids must lie in 0..{self._vocab_size - 1}, got {low}..{high}")

    def _check_length(self, length: int) -> None:
        if length <= self._known_max_length:
            return
        # Re-read the config only past the last known limit: context extension raises it.
        self._known_max_length = self.max_length
        if length > self._known_max_length:
            raise ValueError(
                f"the sequence is {length} tokens long, over the model's maximum "
                f"length of {self.max_length}"
            )

    def _add_losses(
        self, result, out, inputs_embeds, labels, attention_mask, position_ids, mtp_training
    ):
        result.lm_loss = shifted_cross_entropy(result.logits, labels, 1, position_ids)
        total = result.lm_loss
        if self.mtp is not None and labels.shape[1] > 2:
            head = self.backbone.get_output_embeddings()
            result.mtp_logits, result.mtp_loss = mtp_loss(
                self.mtp,
                head,
                result.last_hidden_state,
                result.logits,
                inputs_embeds,
                labels,
                attention_mask,
                position_ids,
                *mtp_training,
            )
            total = total + self.config.mtp_loss_scale * result.mtp_loss
        if getattr(out, "aux_loss", None) is not None:
            result.balance_loss = out.aux_loss
            total = total + self.config.moe_aux_loss_coef * out.aux_loss
        result.loss = total

    # --- generation glue -----------------------------------------------------------------
    def _set_generation_ids(self) -> None:
        """generate() ends an answer with its turn and pads with Omni's pad: the backbone
        config's own ids (Llama's bos 1 / eos 2) are text tokens of the unified vocabulary."""
        self.generation_config.eos_token_id = self.layout.special_id("<|endofturn|>")
        self.generation_config.pad_token_id = self.layout.special_id("<|pad|>")
        self.generation_config.bos_token_id = None

    def adjust_generation_fn(self, *args: Any, **kwargs: Any) -> None:
        super().adjust_generation_fn(*args, **kwargs)
        if self.generation_config._from_model_config:  # derived, as in folders saved before
            self._set_generation_ids()

    def prepare_inputs_for_generation(
        self, *args: Any, media=None, is_first_iteration=False, **kwargs
    ):
        inputs = super().prepare_inputs_for_generation(
            *args, is_first_iteration=is_first_iteration, **kwargs
        )
        # Continuous media only enter with the prompt; later steps read them from the cache.
        inputs["media"] = media if is_first_iteration else None
        return inputs


AutoConfig.register("omni", OmniConfig, exist_ok=True)
AutoModel.register(OmniConfig, OmniForConditionalGeneration, exist_ok=True)
AutoModelForCausalLM.register(OmniConfig, OmniForConditionalGeneration, exist_ok=True)
