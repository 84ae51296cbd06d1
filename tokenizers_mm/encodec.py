"""EnCodec acoustic codes: the ``encodec`` package's model as a ``[codebooks, frames]`` tokenizer.

24 kHz mono in, 75 code frames per second, 1024-entry codebooks; the number of codebooks
follows the bandwidth (1.5 kbps -> 2, 3 -> 4, 6 -> 8, 12 -> 16, 24 -> 32). The full config
loads Meta's published ``encodec_24khz-*.th`` when a user has the file; the micro config
(same hop and codebooks, narrow channels) trains here in minutes.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from encodec.model import EncodecModel
from encodec.modules import SEANetDecoder, SEANetEncoder
from encodec.quantization import ResidualVectorQuantizer
from torch.nn import functional as F

from omni.common.audio import resample, to_mono
from omni.common.mel import MultiResolutionMelLoss
from tokenizers_mm.base import CodeTokenizer

SAMPLE_RATE = 24_000


@dataclass
class EncodecConfig:
    """Shape of an EnCodec model; the defaults are the published 24 kHz model."""

    n_filters: int = 32
    dimension: int = 128
    ratios: list[int] = field(default_factory=lambda: [8, 5, 4, 2])
    lstm: int = 2
    codebook_size: int = 1024
    target_bandwidths: list[float] = field(default_factory=lambda: [1.5, 3.0, 6.0, 12.0, 24.0])
    bandwidth: float = 6.0
    causal: bool = True
    norm: str = "weight_norm"
    kmeans_iters: int = 50  # codebook k-means initialisation on the first training batch

    @classmethod
    def micro(cls) -> EncodecConfig:
        """Same 320-sample hop (75 Hz) and 1024-entry codebooks, a few hundred k parameters."""
        return cls(
            n_filters=4, dimension=32, lstm=1, target_bandwidths=[1.5, 3.0, 6.0], kmeans_iters=10
        )

    def __post_init__(self) -> None:
        if self.bandwidth not in self.target_bandwidths:
            raise ValueError(
                f"bandwidth {self.bandwidth} is not one of the model's target bandwidths "
                f"{self.target_bandwidths}"
            )
        if self.codebook_size & (self.codebook_size - 1):
            raise ValueError(f"codebook_size must be a power of 2, got {self.codebook_size}")


def _build_model(config: EncodecConfig) -> EncodecModel:
    """The ``EncodecModel.encodec_model_24khz`` construction, with every size from the config."""
    shape = dict(
        channels=1,
        dimension=config.dimension,
        n_filters=config.n_filters,
        ratios=config.ratios,
        lstm=config.lstm,
        norm=config.norm,
        causal=config.causal,
    )
    encoder, decoder = SEANetEncoder(**shape), SEANetDecoder(**shape)
    frame_rate = math.ceil(SAMPLE_RATE / encoder.hop_length)
    bits = math.log2(config.codebook_size)
    n_q = int(1000 * max(config.target_bandwidths) // (frame_rate * bits))
    quantizer = ResidualVectorQuantizer(
        dimension=config.dimension,
        n_q=n_q,
        bins=config.codebook_size,
        kmeans_iters=config.kmeans_iters,
    )
    model = EncodecModel(
        encoder, decoder, quantizer, list(config.target_bandwidths), SAMPLE_RATE, channels=1
    )
    model.set_target_bandwidth(config.bandwidth)
    return model


class EncodecTokenizer(CodeTokenizer):
    """Waveform <-> ``[n_q, frames]`` EnCodec codes at 75 frames per second."""

    kind = "encodec"

    def __init__(self, config: EncodecConfig | None = None) -> None:
        super().__init__()
        self.config = config or EncodecConfig()
        self.model = _build_model(self.config)
        self.codebook_size = self.config.codebook_size

    # -- the CodeTokenizer contract -------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return SAMPLE_RATE

    @property
    def frame_rate(self) -> int:
        """Code frames per second (75 for the 320-sample hop)."""
        return self.model.frame_rate

    @property
    def n_q(self) -> int:
        """Codebooks per frame at the current bandwidth."""
        return self.model.quantizer.get_num_quantizers_for_bandwidth(
            self.frame_rate, self.model.bandwidth
        )

    @property
    def codes_per_second(self) -> int:
        """Codes per second of audio, all codebooks counted (``frame_rate * n_q``)."""
        return self.frame_rate * self.n_q

    def set_bandwidth(self, bandwidth: float) -> None:
        """Choose the bitrate in kbps, and with it the number of codebooks."""
        if bandwidth not in self.model.target_bandwidths:
            raise ValueError(
                f"bandwidth {bandwidth} kbps is not supported; choose one of "
                f"{self.model.target_bandwidths}"
            )
        self.model.set_target_bandwidth(bandwidth)
        self.config.bandwidth = bandwidth

    def frames_for(self, num_samples: int, sample_rate: int = SAMPLE_RATE) -> int:
        """Code frames that ``encode`` returns for a clip of ``num_samples`` samples."""
        samples_24k = math.ceil(num_samples * SAMPLE_RATE / sample_rate)
        return math.ceil(samples_24k / self.model.encoder.hop_length)

    @torch.no_grad()
    def encode(self, signal: Any, sample_rate: int = SAMPLE_RATE, **kwargs: Any) -> torch.Tensor:
        """Waveform (``[samples]`` or ``[channels, samples]``, any rate) -> ``[n_q, frames]``
        codes; stereo is averaged to mono and the rate resampled to 24 kHz."""
        if kwargs:
            raise ValueError(f"unknown EnCodec encode options: {', '.join(kwargs)}")
        wave = prepare_waveform(signal, sample_rate).to(self._device())
        codes, _scale = self.model.encode(wave[None, None])[0]
        return codes[0].cpu()

    @torch.no_grad()
    def decode(self, codes: Any, **kwargs: Any) -> tuple[int, np.ndarray]:
        """``[n_q, frames]`` codes (any ``n_q`` up to the model's) -> ``(24000, float32
        waveform)`` with ``frames * 320`` samples."""
        if kwargs:
            raise ValueError(f"unknown EnCodec decode options: {', '.join(kwargs)}")
        codes = self._check_codes(codes)
        wave = self.model.decode([(codes[None].to(self._device()), None)])
        return SAMPLE_RATE, wave[0, 0].cpu().numpy().astype(np.float32)

    def to_config(self) -> dict[str, Any]:
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> EncodecTokenizer:
        return cls(EncodecConfig(**config))

    @classmethod
    def from_published(
        cls, checkpoint_path: str | Path, bandwidth: float = 6.0
    ) -> EncodecTokenizer:
        """Meta's published 24 kHz weights (``encodec_24khz-d7cc33bc.th``) from a local file.

        Nothing is downloaded; the file is read with ``torch.load(weights_only=True)`` and
        must hold tensors only.
        """
        path = Path(checkpoint_path)
        if not path.is_file():
            raise ValueError(f"EnCodec checkpoint {path} does not exist")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # the unpickler's many error types all mean "not weights"
            raise ValueError(f"{path} is not a tensors-only EnCodec checkpoint: {error}") from error
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise ValueError(f"{path} does not hold a state dict of tensors")
        tokenizer = cls(EncodecConfig(bandwidth=bandwidth))
        tokenizer.model.load_state_dict(state)
        return tokenizer.eval()

    # -- helpers ------------------------------------------------------------------------

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _check_codes(self, codes: Any) -> torch.Tensor:
        codes = torch.as_tensor(codes)
        if codes.dim() != 2 or codes.shape[1] == 0:
            raise ValueError(f"EnCodec codes must be [codebooks, frames], got {tuple(codes.shape)}")
        if codes.dtype.is_floating_point:
            raise ValueError("EnCodec codes must be integers")
        if not 1 <= codes.shape[0] <= self.model.quantizer.n_q:
            raise ValueError(
                f"{codes.shape[0]} codebooks given; this model has 1 to {self.model.quantizer.n_q}"
            )
        if codes.min() < 0 or codes.max() >= self.codebook_size:
            raise ValueError(f"EnCodec codes must lie in [0, {self.codebook_size})")
        return codes.long()


def prepare_waveform(signal: Any, sample_rate: int) -> torch.Tensor:
    """Any mono / multi-channel waveform -> finite float32 mono ``[samples]`` at 24 kHz
    (empty, NaN or infinite audio -> ``ValueError``)."""
    if not isinstance(sample_rate, int) or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    return resample(to_mono(signal), sample_rate, SAMPLE_RATE)


# -- training ------------------------------------------------------------------------------


# EnCodec's reconstruction term: log-mels at four FFT sizes, hop n/4, up to 64 bands.
MEL_RESOLUTIONS = tuple((n, n // 4, min(64, n // 8)) for n in (256, 512, 1024, 2048))


@dataclass
class EncodecTrainConfig:
    steps: int = 2000
    batch_size: int = 8
    segment_seconds: float = 0.5
    learning_rate: float = 3e-4
    mel_weight: float = 1.0
    commitment_weight: float = 1.0
    checkpoint_every: int = 200
    seed: int = 0


def _random_segments(
    clips: list[torch.Tensor], batch: int, length: int, rng: random.Random
) -> torch.Tensor:
    out = torch.zeros(batch, 1, length)
    for row in range(batch):
        clip = clips[rng.randrange(len(clips))]
        start = rng.randrange(max(1, clip.numel() - length + 1))
        piece = clip[start : start + length]
        out[row, 0, : piece.numel()] = piece
    return out


def train_encodec(
    tokenizer: EncodecTokenizer,
    clips: list[tuple[Any, int]],
    config: EncodecTrainConfig | None = None,
    out_dir: str | Path | None = None,
) -> list[float]:
    """Train on ``(waveform, sample_rate)`` clips with L1 on the waveform, multi-scale mel L1
    and the RVQ commitment penalty, at a random target bandwidth per step (as EnCodec does).

    With ``out_dir``, a resumable checkpoint goes to ``out_dir/checkpoint`` every
    ``checkpoint_every`` steps and the final tokenizer to ``out_dir`` via ``save_pretrained``.
    Returns the loss of every step run.
    """
    from omni.common.loop import TrainLoop

    config = config or EncodecTrainConfig()
    if not clips:
        raise ValueError("train_encodec needs at least one audio clip")
    waves = [prepare_waveform(wave, rate) for wave, rate in clips]
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    optimizer = torch.optim.AdamW(tokenizer.parameters(), lr=config.learning_rate, betas=(0.5, 0.9))
    mel_loss = MultiResolutionMelLoss(SAMPLE_RATE, MEL_RESOLUTIONS)
    loop = TrainLoop(
        None if out_dir is None else Path(out_dir) / "checkpoint",
        config.steps,
        {"encodec": tokenizer},
        {"encodec": optimizer},
        rngs={"segments": rng, "torch": torch.default_generator},
        checkpoint_every=config.checkpoint_every,
        desc="encodec",
    )
    model = tokenizer.model
    length = int(config.segment_seconds * SAMPLE_RATE)
    bandwidth = model.bandwidth
    losses: list[float] = []
    tokenizer.train()
    for _ in loop:
        real = _random_segments(waves, config.batch_size, length, rng)
        emb = model.encoder(real)
        quantized = model.quantizer(emb, model.frame_rate, rng.choice(model.target_bandwidths))
        fake = model.decoder(quantized.quantized)[..., :length]
        loss = (
            F.l1_loss(fake, real)
            + config.mel_weight * mel_loss(fake[:, 0], real[:, 0])
            + config.commitment_weight * quantized.penalty
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        loop.log(loss=losses[-1])
    tokenizer.eval()
    model.set_target_bandwidth(bandwidth)
    if out_dir is not None:
        tokenizer.save_pretrained(out_dir)
    return losses
