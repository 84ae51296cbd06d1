"""Start a preset model's encoder towers from the trained code tokenizers' encoders.

HyperCLOVA X Omni, like LLaVA before it, aligns a *pretrained* vision encoder and a
*pretrained* Whisper encoder to the LM: the towers stay frozen while the projectors learn
(``pretrain-2-continuous``), and train only later. No CLIP or Whisper weights can be fetched
here, but the kit trains its own: the image tokenizer's ViT (dense scene-attribute pretraining,
then tuned to be style-invariant) and the speech tokenizer's Whisper encoder (trained with a
CTC reading of the transcript). The curriculum names which encoder starts from which::

    model:
      preset: micro-llama
      encoders: {image: {...}, audio: {...}, video: {...}}
      encoder_init: {image: image, video: image, audio: audio}   # encoder -> code tokenizer

Only the towers are copied; each projector maps into this backbone's width and starts fresh.
The tower's architecture must be the tokenizer's (the same open_clip ViT, the same Whisper
config); a mismatch is refused by name before any training.
"""

from __future__ import annotations

from typing import Any

from torch import nn


def tower_of(encoder: nn.Module, where: str) -> nn.Module:
    """The pretrained part of an encoder: a ViT tower (image, video) or a Whisper encoder."""
    from encoders import AudioEncoder, VideoEncoder, VisionEncoder

    if isinstance(encoder, VideoEncoder):
        encoder = encoder.vision
    if isinstance(encoder, VisionEncoder):
        return encoder.tower
    if isinstance(encoder, AudioEncoder):
        return encoder.encoder
    raise ValueError(
        f"{where} ({type(encoder).__name__}) has no ViT or Whisper tower to start from"
    )


def check_same_shapes(target: nn.Module, source: nn.Module, what: str) -> None:
    """Refuse, naming the first difference, a source tower that is not the target's shape."""
    have = {k: tuple(v.shape) for k, v in target.state_dict().items()}
    give = {k: tuple(v.shape) for k, v in source.state_dict().items()}
    for name in sorted(set(have) | set(give)):
        if have.get(name) != give.get(name):
            raise ValueError(
                f"encoder_init {what}: the model's tower has {name} "
                f"{have.get(name, 'missing')} but the tokenizer's has {give.get(name, 'missing')}; "
                f"give the model's encoder the tokenizer's encoder config "
                f"(its config.json: encoder_config / whisper)"
            )


def init_encoders(
    model: nn.Module, code_tokenizers: dict[str, Any], mapping: dict[str, str]
) -> None:
    """Copy each named code tokenizer's encoder tower into the model's encoder of that name."""
    for name, modality in mapping.items():
        if name not in model.encoders:
            raise ValueError(
                f"encoder_init names the {name} encoder, but the model has only "
                f"{sorted(model.encoders)}"
            )
        if modality not in code_tokenizers:
            raise ValueError(
                f"encoder_init starts the {name} encoder from the {modality} tokenizer, but "
                f"only {sorted(code_tokenizers) or 'no'} tokenizers are given (--tokenizers)"
            )
        source = tower_of(code_tokenizers[modality].encoder, f"the {modality} tokenizer's encoder")
        target = tower_of(model.encoders[name], f"the model's {name} encoder")
        what = f"{name} <- {modality} tokenizer"
        check_same_shapes(target, source, what)
        target.load_state_dict(source.state_dict())
