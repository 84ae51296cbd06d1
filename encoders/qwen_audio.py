"""Audio understanding path of HyperCLOVA X SEED Omni: transformers' ``Qwen2AudioEncoder``
(128 mel bins, 30 s windows, 25 Hz after its average pooling) and OmniServe's audio projector,
``VLM_Mlp``: ``fc1 (d_model -> d_model), GELU, fc2 (d_model -> LLM width)``
(NAVER-Cloud-HyperCLOVA-X/OmniServe ``encoder/audio/track_b/app/model/__init__.py``,
``VLM_Mlp`` and ``_load_audio_projector``).

The log-mel windows are Whisper's (``encoders.audio.mel_windows``). The padding of each window
is masked out of the encoder's attention from its real length and only the frames that cover
real audio are kept, as transformers' ``Qwen2AudioModel`` and OmniServe's encoder do.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import Qwen2AudioEncoderConfig
from transformers.masking_utils import create_bidirectional_mask
from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

from encoders.audio import AudioFeatures, mel_windows
from encoders.base import ContinuousEncoder

MICRO_QWEN2_AUDIO = {
    "d_model": 64,
    "encoder_layers": 2,
    "encoder_attention_heads": 2,
    "encoder_ffn_dim": 128,
    "num_mel_bins": 128,
    "max_source_positions": 1500,
}
# The fields of a release's audio_config that shape the encoder.
SHAPE_FIELDS = (
    "num_mel_bins",
    "encoder_layers",
    "encoder_attention_heads",
    "encoder_ffn_dim",
    "d_model",
    "activation_function",
    "scale_embedding",
    "max_source_positions",
)


class QwenAudioEncoder(ContinuousEncoder):
    """Qwen2-Audio encoder + two-layer MLP projector: ``[25 Hz frames, out_dim]`` per clip.

    Args:
        audio: a ``Qwen2AudioEncoderConfig`` as a dict (``None``: the micro config).
        out_dim: backbone width the projector maps to.
    """

    modality = "audio"
    kind = "qwen2_audio"

    def __init__(self, audio: dict[str, Any] | None = None, out_dim: int = 64) -> None:
        super().__init__()
        config = Qwen2AudioEncoderConfig.from_dict({**MICRO_QWEN2_AUDIO, **(audio or {})})
        self.out_dim = int(out_dim)
        self.encoder = Qwen2AudioEncoder(config)
        width = config.d_model
        self.projector = nn.Sequential(
            nn.Linear(width, width), nn.GELU(), nn.Linear(width, self.out_dim)
        )

    @property
    def window_frames(self) -> int:
        """Mel frames per encoder window (3000 = 30 s): the only input length it accepts."""
        return 2 * self.encoder.config.max_source_positions

    def preprocess(self, signal: Any, sample_rate: int | None = None) -> AudioFeatures:
        """Any audio ``omni.common.audio.read_audio`` takes, as 128-bin log-mel windows."""
        item = mel_windows(
            signal, sample_rate, self.encoder.config.num_mel_bins, self.window_frames
        )
        if not self.num_tokens(item):
            raise ValueError("audio too short for the Qwen2-Audio encoder: it gives no frame")
        return item

    def _lengths(self, real_frames: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Per window, the frames after the conv stem and after the pooling (the library's
        own formula)."""
        return self.encoder._get_feat_extract_output_lengths(torch.tensor(real_frames))

    def num_tokens(self, item: AudioFeatures) -> int:
        return int(self._lengths(item.real_frames)[1].sum())

    def hidden_states(self, item: AudioFeatures) -> torch.Tensor:
        """Encoder output ``[real 25 Hz frames, d_model]`` for one clip, padding dropped."""
        return self._encode([item])[0]

    def forward(self, items: list[AudioFeatures]) -> list[torch.Tensor]:
        return [self.projector(frames) for frames in self._encode(items)]

    def _encode(self, items: list[AudioFeatures]) -> list[torch.Tensor]:
        """All windows of all items in one batch, padding masked; then each item's frames."""
        param = self.projector[0].weight
        mel = torch.cat([item.mel for item in items]).to(param.device, param.dtype)
        conv_lengths, kept = self._lengths([f for item in items for f in item.real_frames])
        positions = torch.arange(self.encoder.config.max_source_positions)
        real = (positions[None, :] < conv_lengths[:, None]).long().to(param.device)
        mask = create_bidirectional_mask(
            config=self.encoder.config,
            inputs_embeds=torch.zeros(*real.shape, 1, dtype=param.dtype, device=param.device),
            attention_mask=real,
        )
        hidden = self.encoder(mel, attention_mask=mask).last_hidden_state
        per_window = iter(zip(hidden, kept.tolist()))
        return [
            torch.cat([frames[:n] for frames, n in (next(per_window) for _ in item.real_frames)])
            for item in items
        ]

    def to_config(self) -> dict[str, Any]:
        config = self.encoder.config
        return {
            "type": self.kind,
            "audio": {field: getattr(config, field) for field in SHAPE_FIELDS},
            "out_dim": self.out_dim,
        }
