"""Training loop of the Unit-BigVGAN, in two phases on one step counter.

1. Steps ``[0, speaker_steps)``: the speaker encoder learns to classify the training voices.
2. Then it is frozen; every clip gets its embedding, the named-voice table becomes the
   per-voice mean (of the ``named`` voices, or of all), and the generator trains on random
   unit segments conditioned on the embedding of *another* clip of the same voice (so it
   learns voice, not clip, and zero-shot references work): multi-resolution mel L1 alone for
   ``gan_start`` steps, then plus LSGAN and feature-matching losses against the period +
   resolution discriminators.

A checkpoint (weights, optimizer moments, step) is written every ``checkpoint_every`` steps and
training resumes from it; the usable vocoder is saved to ``<output>/vocoder``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from decoders.audio import UnitVocoder
from decoders.audio_losses import (
    VocoderDiscriminator,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from omni.common.loop import TrainLoop
from omni.common.mel import MultiResolutionMelLoss
from omni.common.schedule import warmup_stable_decay


@dataclass
class SpeechClip:
    """One training utterance: ``wave`` at the vocoder rate, its ``units`` and its voice.
    ``target`` (default: ``wave``) is what the generator learns to say for those units, e.g.
    the clean rendering of a noisy, reverberant ``wave``, sample-aligned with it; the speaker
    encoder hears both."""

    wave: torch.Tensor
    units: torch.Tensor
    speaker: str
    target: torch.Tensor | None = None

    @property
    def clean(self) -> torch.Tensor:
        return self.wave if self.target is None else self.target


@dataclass
class VocoderTrainConfig:
    output: str = "runs/vocoder"
    steps: int = 3000
    speaker_steps: int = 300
    batch_size: int = 8
    segment_units: int = 16
    speaker_crop_seconds: float = 1.5
    lr: float = 2e-4
    # Steps at the end over which the generator's and discriminator's lr falls linearly to 0.
    decay_steps: int = 0
    speaker_lr: float = 1e-3
    gan_start: int = 800
    mel_weight: float = 45.0
    feature_weight: float = 2.0
    checkpoint_every: int = 200
    seed: int = 0
    # The voices of the named table (None: every training voice); the speaker encoder learns
    # them all either way, which is what makes zero-shot references work.
    named: list[str] | None = None


def align_clips(clips: list[SpeechClip], hop: int) -> list[SpeechClip]:
    """Crop each clip so that ``len(wave) == len(units) * hop`` (tokenizers may round)."""
    aligned = []
    for clip in clips:
        if clip.target is not None and clip.target.numel() != clip.wave.numel():
            raise ValueError(
                f"a clip's target has {clip.target.numel()} samples, its wave {clip.wave.numel()}"
            )
        frames = min(clip.units.numel(), clip.wave.numel() // hop)
        if frames > 0:
            target = None if clip.target is None else clip.target[: frames * hop]
            aligned.append(
                SpeechClip(clip.wave[: frames * hop], clip.units[:frames], clip.speaker, target)
            )
    if not aligned:
        raise ValueError("no usable training clips (every clip is shorter than one unit)")
    return aligned


def _crop(wave: torch.Tensor, length: int, rng: random.Random) -> torch.Tensor:
    if wave.numel() <= length:
        return F.pad(wave, (0, length - wave.numel()))
    start = rng.randrange(wave.numel() - length)
    return wave[start : start + length]


def _speaker_batch(
    clips: list[SpeechClip], speakers: list[str], length: int, size: int, rng: random.Random
) -> tuple[torch.Tensor, torch.Tensor]:
    chosen = [rng.choice(clips) for _ in range(size)]
    heard = [c.wave if c.target is None or rng.random() < 0.5 else c.target for c in chosen]
    waves = torch.stack([_crop(wave, length, rng) for wave in heard])
    return waves, torch.tensor([speakers.index(c.speaker) for c in chosen])


def _vocoder_batch(
    clips: list[SpeechClip],
    embeddings: torch.Tensor,
    by_speaker: dict[str, list[int]],
    config: VocoderTrainConfig,
    hop: int,
    rng: random.Random,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    units, waves, voices = [], [], []
    for _ in range(config.batch_size):
        clip = clips[rng.randrange(len(clips))]
        frames = clip.units.numel()
        seg = min(config.segment_units, frames)
        start = rng.randrange(frames - seg + 1)
        units.append(F.pad(clip.units[start : start + seg], (0, config.segment_units - seg)))
        wave = clip.clean[start * hop : (start + seg) * hop]
        waves.append(F.pad(wave, (0, config.segment_units * hop - wave.numel())))
        voices.append(embeddings[rng.choice(by_speaker[clip.speaker])])
    return torch.stack(units), torch.stack(waves), torch.stack(voices)


@torch.no_grad()
def _clip_embeddings(vocoder: UnitVocoder, clips: list[SpeechClip]) -> torch.Tensor:
    vocoder.speaker_encoder.eval()
    return torch.stack([vocoder.speaker_encoder(c.wave[None])[0] for c in clips])


def train_vocoder(
    vocoder: UnitVocoder, clips: list[SpeechClip], config: VocoderTrainConfig
) -> UnitVocoder:
    """Train ``vocoder`` (speaker encoder, then generator) on ``clips``; resume if
    ``config.output`` holds a checkpoint. Returns the trained vocoder (also saved)."""
    hop, sample_rate = vocoder.config.hop_length, vocoder.sample_rate
    clips = align_clips(clips, hop)
    speakers = sorted({c.speaker for c in clips})
    if vocoder.speaker_encoder.classifier.out_features != len(speakers):
        raise ValueError(
            f"the speaker encoder was built for {vocoder.speaker_encoder.classifier.out_features}"
            f" voices but the clips have {len(speakers)}: {speakers}"
        )
    named = speakers if config.named is None else sorted(config.named)
    if missing := sorted(set(named) - set(speakers)):
        raise ValueError(f"named voices {missing} have no training clips")
    rng = random.Random(config.seed)
    torch.manual_seed(config.seed)
    output = Path(config.output)
    discriminator = VocoderDiscriminator()
    mel_loss = MultiResolutionMelLoss(sample_rate)
    generator_params = [
        p for n, p in vocoder.named_parameters() if not n.startswith("speaker_encoder.")
    ]
    optimizers = {
        "speaker": torch.optim.AdamW(vocoder.speaker_encoder.parameters(), config.speaker_lr),
        "generator": torch.optim.AdamW(generator_params, config.lr, betas=(0.8, 0.99)),
        "discriminator": torch.optim.AdamW(
            discriminator.parameters(), config.lr, betas=(0.8, 0.99)
        ),
    }
    modules = {"vocoder": vocoder, "discriminator": discriminator}
    # Sized now so a checkpoint's table loads; filled once the speaker encoder is trained.
    vocoder.set_speaker_table(named, torch.zeros(len(named), vocoder.speaker_table.shape[1]))
    loop = TrainLoop(
        output / "checkpoint",
        config.steps,
        modules,
        optimizers,
        schedule=warmup_stable_decay(0, config.decay_steps, config.steps),
        scheduled=("generator", "discriminator"),
        rngs={"clips": rng, "torch": torch.default_generator},
        checkpoint_every=config.checkpoint_every,
        on_checkpoint=lambda step: (
            vocoder.save_pretrained(output / "vocoder") if step > config.speaker_steps else None
        ),
        desc="vocoder",
    )
    crop = int(config.speaker_crop_seconds * sample_rate)
    embeddings = by_speaker = None
    for step in loop:
        if step < config.speaker_steps:
            vocoder.speaker_encoder.train()
            waves, labels = _speaker_batch(clips, speakers, crop, config.batch_size * 2, rng)
            logits = vocoder.speaker_encoder.classifier(vocoder.speaker_encoder(waves) * 10.0)
            loss = F.cross_entropy(logits, labels)
            optimizers["speaker"].zero_grad()
            loss.backward()
            optimizers["speaker"].step()
            loop.log(speaker_ce=loss.item())
        else:
            if embeddings is None:
                embeddings = _clip_embeddings(vocoder, clips)
                by_speaker = {
                    s: [i for i, c in enumerate(clips) if c.speaker == s] for s in speakers
                }
                table = torch.stack([embeddings[by_speaker[s]].mean(0) for s in named])
                vocoder.set_speaker_table(named, table)
            _generator_step(
                vocoder, discriminator, mel_loss, optimizers, config, step, loop,
                _vocoder_batch(clips, embeddings, by_speaker, config, hop, rng),
            )  # fmt: skip
    vocoder.eval()
    return vocoder


def _generator_step(
    vocoder: UnitVocoder,
    discriminator: VocoderDiscriminator,
    mel_loss: MultiResolutionMelLoss,
    optimizers: dict[str, torch.optim.Optimizer],
    config: VocoderTrainConfig,
    step: int,
    loop: TrainLoop,
    batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
) -> None:
    units, real, voices = batch
    vocoder.train()
    fake = vocoder(units, voices)
    mel = mel_loss(fake, real)
    loss = config.mel_weight * mel
    logs = {"mel": mel.item()}
    if step >= config.speaker_steps + config.gan_start:
        d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
        optimizers["discriminator"].zero_grad()
        d_loss.backward()
        optimizers["discriminator"].step()
        real_scores, fake_scores = discriminator(real), discriminator(fake)
        adversarial = generator_adversarial_loss(fake_scores)
        features = feature_matching_loss(real_scores, fake_scores)
        loss = loss + adversarial + config.feature_weight * features
        logs.update(d=d_loss.item(), adv=adversarial.item())
    optimizers["generator"].zero_grad()
    loss.backward()
    optimizers["generator"].step()
    loop.log(**logs)


def warm_start(vocoder: UnitVocoder, source: UnitVocoder) -> list[str]:
    """Copy every weight of ``source`` whose name and shape match into ``vocoder`` (e.g. the
    generator and speaker encoder of a vocoder trained on another unit inventory); returns
    the names left at their fresh initialisation."""
    own, theirs = vocoder.state_dict(), source.state_dict()
    copied = {k: v for k, v in theirs.items() if k in own and own[k].shape == v.shape}
    vocoder.load_state_dict({**own, **copied})
    return sorted(set(own) - set(copied))


@torch.no_grad()
def remap_unit_embeddings(
    vocoder: UnitVocoder, source: UnitVocoder, pairs: list[tuple[torch.Tensor, torch.Tensor]]
) -> float:
    """Start ``vocoder``'s unit table (a new unit inventory) from ``source``'s (the old one).

    ``pairs`` holds ``(new units, old units)`` of the same clips, both at the unit rate: each
    new unit's embedding becomes the mean of the old units' embeddings over the frames it
    shares with them (so a new unit that always sits on old unit 7 starts as 7's embedding); a
    new unit never seen starts at the mean of all old ones. Returns the purity: the share of
    frames on which a new unit meets its most frequent old unit (1.0: a relabelling)."""
    new_size, old_size = vocoder.config.num_units, source.config.num_units
    counts = torch.zeros(new_size, old_size)
    for new, old in pairs:
        n = min(new.numel(), old.numel())
        counts.index_put_((new[:n].long(), old[:n].long()), torch.ones(n), accumulate=True)
    if counts.sum() == 0:
        raise ValueError("no frames to remap the unit embeddings from")
    old_table = source.unit_embedding.weight
    table = counts / counts.sum(1, keepdim=True).clamp(min=1) @ old_table
    seen = counts.sum(1) > 0
    table[~seen] = old_table.mean(0)
    vocoder.unit_embedding.weight.copy_(table)
    return float(counts.max(1).values.sum() / counts.sum())
