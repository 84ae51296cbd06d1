"""Speech units: a Whisper-style encoder trained with CTC on transcripts, quantised by FSQ.

As in CosyVoice's supervised S3 tokenizer (and HyperCLOVA X Omni's 6,561 FSQ units at 25 Hz),
the encoder is trained to recognise speech, so the discrete units it emits carry content: the
Whisper encoder (``encoders.audio.AudioEncoder``, 50 Hz) is stacked down to ``codes_per_second``,
finite-scalar quantised (``vector_quantize_pytorch.FSQ``), and a small BiLSTM + CTC head reads
the characters back. Korean is spelled in conjoining jamo (Unicode NFD) so the alphabet stays
small. ``UnitCTCProbe`` measures what the units carry: a fresh model that sees only unit ids.
"""

from __future__ import annotations

import math
import random
import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torchaudio
from torch import nn
from torch.nn import functional as F
from vector_quantize_pytorch import FSQ

from encoders.audio import SAMPLE_RATE, AudioEncoder, resample_to_16k
from tokenizers_mm.base import CodeTokenizer

_JAMO = (
    [chr(c) for c in range(0x1100, 0x1113)]  # 19 leading consonants
    + [chr(c) for c in range(0x1161, 0x1176)]  # 21 vowels
    + [chr(c) for c in range(0x11A8, 0x11C3)]  # 27 trailing consonants
)
DEFAULT_ALPHABET = " 'abcdefghijklmnopqrstuvwxyz0123456789" + "".join(_JAMO)
MICRO_SPEECH_WHISPER = {
    "d_model": 96,
    "encoder_layers": 2,
    "encoder_attention_heads": 4,
    "encoder_ffn_dim": 384,
    "num_mel_bins": 80,
    "max_source_positions": 300,  # 6 s windows: one toy-world sentence, little padding
}
DEFAULT_LEVELS = (8, 5, 5, 5)  # 1,000 units; HyperCLOVA X Omni uses 3^8 = 6,561


def normalise_transcript(text: str, alphabet: str = DEFAULT_ALPHABET) -> str:
    """Lower-case NFD text over ``alphabet`` (punctuation dropped, spaces collapsed)."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    words = "".join(char if char in alphabet else " " for char in decomposed).split()
    return (" " if " " in alphabet else "").join(words)


def character_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Total edit distance over total reference length, on normalised (NFD) characters."""
    if len(references) != len(hypotheses) or not references:
        raise ValueError("need as many hypotheses as references, and at least one")
    edits = sum(torchaudio.functional.edit_distance(r, h) for r, h in zip(references, hypotheses))
    return edits / max(1, sum(len(r) for r in references))


class CharacterCTC:
    """Characters <-> CTC label ids (0 is the blank) and greedy CTC decoding."""

    def __init__(self, alphabet: str = DEFAULT_ALPHABET) -> None:
        if len(set(alphabet)) != len(alphabet) or not alphabet:
            raise ValueError("the CTC alphabet must be non-empty without repeated characters")
        self.alphabet = alphabet
        self.ids = {char: index + 1 for index, char in enumerate(alphabet)}

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet) + 1

    def labels(self, text: str) -> torch.Tensor:
        return torch.tensor([self.ids[c] for c in normalise_transcript(text, self.alphabet)])

    def greedy_decode(self, log_probs: torch.Tensor) -> str:
        """``[frames, vocab]`` -> text: best path, repeats merged, blanks dropped (NFC)."""
        best = torch.unique_consecutive(log_probs.argmax(-1)).tolist()
        text = "".join(self.alphabet[i - 1] for i in best if i > 0)
        return unicodedata.normalize("NFC", text)

    def loss(
        self, log_probs: torch.Tensor, lengths: torch.Tensor, texts: Sequence[str]
    ) -> torch.Tensor:
        """Mean CTC loss of ``[B, frames, vocab]`` log-probs against ``texts``."""
        targets = [self.labels(text) for text in texts]
        return F.ctc_loss(
            log_probs.transpose(0, 1),
            torch.cat(targets),
            lengths,
            torch.tensor([len(t) for t in targets]),
            zero_infinity=True,
        )


class CTCHead(nn.Module):
    """BiLSTM context over unit-rate frames, then ``upsample`` CTC frames per input frame.

    Upsampling lets 25 Hz units spell fast speech (about 16 characters/s in English, plus the
    blanks CTC needs between repeated letters) without the frame rate capping the text rate.
    """

    def __init__(self, dim: int, vocab_size: int, layers: int = 1, upsample: int = 2) -> None:
        super().__init__()
        self.upsample, self.vocab_size = upsample, vocab_size
        self.context = nn.LSTM(dim, dim // 2, layers, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * (dim // 2), vocab_size * upsample)

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``[B, T, dim]`` -> CTC log-probs ``[B, T * upsample, vocab]``."""
        packed = nn.utils.rnn.pack_padded_sequence(
            frames, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        context, _ = self.context(packed)
        context, _ = nn.utils.rnn.pad_packed_sequence(
            context, batch_first=True, total_length=frames.shape[1]
        )
        logits = self.out(context).reshape(frames.shape[0], -1, self.vocab_size)
        return logits.log_softmax(-1)


def _pad(frames: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([f.shape[0] for f in frames])
    return nn.utils.rnn.pad_sequence(frames, batch_first=True), lengths


class SpeechUnitTokenizer(CodeTokenizer):
    """Waveform -> content-bearing speech units at ``codes_per_second`` (25 Hz default).

    Args:
        whisper: ``WhisperConfig`` fields for the encoder (default: ``MICRO_SPEECH_WHISPER``).
        levels: FSQ levels; the codebook size is their product.
        codes_per_second: unit rate; 50 Hz divided by a whole number (25, 12.5, ...).
        alphabet: characters the CTC head spells (Korean as conjoining jamo).
        head_layers, ctc_upsample: the CTC head (used in training and ``transcribe``).
    """

    kind = "speech"

    def __init__(
        self,
        whisper: dict[str, Any] | None = None,
        levels: Sequence[int] = DEFAULT_LEVELS,
        codes_per_second: float = 25.0,
        alphabet: str = DEFAULT_ALPHABET,
        head_layers: int = 1,
        ctc_upsample: int = 2,
    ) -> None:
        super().__init__()
        self.whisper = {**MICRO_SPEECH_WHISPER, **(whisper or {})}
        self.levels = [int(level) for level in levels]
        if not self.levels or min(self.levels) < 2:
            raise ValueError(f"FSQ levels must be integers >= 2, got {list(levels)}")
        width = int(self.whisper["d_model"])
        self.encoder = AudioEncoder(whisper=self.whisper, out_dim=width, rate_hz=codes_per_second)
        # Unit-scale input keeps FSQ's tanh bound out of saturation; saturated, its gradient
        # vanishes and every frame falls into the same unit for good.
        self.pre_quant_norm = nn.LayerNorm(width, elementwise_affine=False)
        self.quantizer = FSQ(levels=self.levels, dim=width)
        self.ctc = CharacterCTC(alphabet)
        self.head = CTCHead(width, self.ctc.vocab_size, head_layers, ctc_upsample)
        # Auxiliary CTC straight on the continuous frames (as InterCTC does): it keeps the
        # encoder learning content while the discrete path is still uninformative, where CTC's
        # all-blank phase otherwise collapses every frame into one unit for good.
        self.frame_head = nn.Linear(width, self.ctc.vocab_size * ctc_upsample)
        self.codebook_size = math.prod(self.levels)
        self.codes_per_second = float(codes_per_second)
        self.head_layers, self.ctc_upsample = head_layers, ctc_upsample

    def normalised_frames(
        self, waveforms: Sequence[Any], sample_rate: int, encoder: nn.Module | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded layer-normed unit-rate frames ``[B, T, width]`` (FSQ's input) and lengths;
        ``encoder`` replaces this tokenizer's (a distillation teacher's, say)."""
        encoder = encoder or self.encoder
        items = [encoder.preprocess(w, sample_rate=sample_rate) for w in waveforms]
        frames, lengths = _pad(encoder(items))
        return self.pre_quant_norm(frames), lengths

    def _batch(
        self, waveforms: Sequence[Any], sample_rate: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Padded normalised frames, their quantised vectors and unit ids, and the lengths."""
        normalised, lengths = self.normalised_frames(waveforms, sample_rate)
        quantised, units = self.quantizer(normalised)
        return normalised, quantised, units.long(), lengths

    def quantise(self, waveforms: Sequence[Any], sample_rate: int) -> tuple[list, list]:
        """Per clip, quantised frames ``[frames, width]`` and unit ids ``[frames]``."""
        _, quantised, units, lengths = self._batch(waveforms, sample_rate)
        return [q[:n] for q, n in zip(quantised, lengths)], [u[:n] for u, n in zip(units, lengths)]

    def ctc_log_probs(
        self, waveforms: Sequence[Any], sample_rate: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The units' CTC reading: log-probs ``[B, frames * upsample, vocab]`` and lengths."""
        _, quantised, _, lengths = self._batch(waveforms, sample_rate)
        return self.head(quantised, lengths), lengths * self.ctc_upsample

    def training_loss(
        self, waveforms: Sequence[Any], sample_rate: int, texts: Sequence[str]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """CTC of the units' reading plus the auxiliary frame CTC; also the batch's unit ids."""
        normalised, quantised, units, lengths = self._batch(waveforms, sample_rate)
        aux = self.frame_head(normalised).reshape(len(waveforms), -1, self.ctc.vocab_size)
        ctc_lengths = lengths * self.ctc_upsample
        loss = self.ctc.loss(self.head(quantised, lengths), ctc_lengths, texts)
        loss = loss + self.ctc.loss(aux.log_softmax(-1), ctc_lengths, texts)
        return loss, torch.cat([u[:n] for u, n in zip(units, lengths)])

    @torch.no_grad()
    def encode(self, waveform: Any, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
        """One clip (any rate, mono or stereo) -> unit ids ``[frames]`` (deterministic)."""
        return self.quantise([waveform], sample_rate)[1][0]

    @torch.no_grad()
    def transcribe(self, waveform: Any, sample_rate: int = SAMPLE_RATE) -> str:
        """The tokenizer's own CTC reading of a clip (greedy)."""
        log_probs, _ = self.ctc_log_probs([waveform], sample_rate)
        return self.ctc.greedy_decode(log_probs[0])

    def to_config(self) -> dict[str, Any]:
        return {
            "whisper": self.whisper,
            "levels": self.levels,
            "codes_per_second": self.codes_per_second,
            "alphabet": self.ctc.alphabet,
            "head_layers": self.head_layers,
            "ctc_upsample": self.ctc_upsample,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> SpeechUnitTokenizer:
        return cls(**config)


def pack_clips(
    clips: Sequence[tuple[Any, str]], rng: random.Random, seconds: float, gap: float = 0.15
) -> tuple[torch.Tensor, str]:
    """Join random 16 kHz clips with short silences up to ``seconds`` (at least one clip), so a
    training window is mostly speech rather than padding; the transcripts join with spaces."""
    silence = torch.zeros(int(gap * SAMPLE_RATE))
    parts, texts, total = [], [], 0
    while True:
        waveform, text = clips[rng.randrange(len(clips))]
        waveform = torch.as_tensor(waveform, dtype=torch.float32)
        if parts and total + waveform.numel() > seconds * SAMPLE_RATE:
            break
        parts += [waveform, silence]
        texts.append(text)
        total += waveform.numel() + silence.numel()
    return torch.cat(parts), " ".join(texts)


def perturb_speed(waveform: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """Resample by 16/k (k in 14..18): speed and pitch change together, +-14%, so a few
    training voices stand in for more speakers."""
    k = rng.randint(14, 18)
    return torchaudio.functional.resample(waveform, 16, k) if k != 16 else waveform


def _clips_16k(clips: Sequence[tuple[Any, int, str]]) -> list[tuple[torch.Tensor, str]]:
    if not clips:
        raise ValueError("no training clips: pass (waveform, sample_rate, transcript) triples")
    return [(resample_to_16k(w, sr), text) for w, sr, text in clips]


def train_speech_tokenizer(
    out_dir: str | Path,
    clips: Sequence[tuple[Any, int, str]],
    steps: int = 1500,
    batch_size: int = 8,
    lr: float = 2e-3,
    seed: int = 0,
    checkpoint_every: int = 250,
    tokenizer: SpeechUnitTokenizer | None = None,
    **config: Any,
) -> SpeechUnitTokenizer:
    """Train with CTC on ``(waveform, sample_rate, transcript)`` clips and save the final
    tokenizer to ``out_dir``.

    Batches are random clips packed into encoder windows with speed perturbation. Every
    ``checkpoint_every`` steps, and at the end, ``out_dir/checkpoint`` gets the weights, the
    AdamW moments and the data RNG; a rerun resumes there exactly, and a rerun with more
    ``steps`` continues training on the schedule of the new total
    (``omni.common.schedule.tokenizer_schedule``).
    """
    from omni.common.loop import TrainLoop
    from omni.common.schedule import tokenizer_schedule

    out_dir = Path(out_dir)
    data = _clips_16k(clips)
    rng = random.Random(seed)
    torch.manual_seed(seed)
    checkpoint = out_dir / "checkpoint"
    if (checkpoint / "config.json").is_file():
        tokenizer = SpeechUnitTokenizer.from_pretrained(checkpoint)
    tokenizer = tokenizer or SpeechUnitTokenizer(**config)
    window_seconds = tokenizer.encoder.window_frames / 100
    optimizer = torch.optim.AdamW(tokenizer.parameters(), lr=lr, weight_decay=0.01)
    loop = TrainLoop(
        checkpoint,
        steps,
        {"tokenizer": tokenizer},
        {"tokenizer": optimizer},
        schedule=tokenizer_schedule(steps),
        rngs={"data": rng},
        checkpoint_every=checkpoint_every,
        on_checkpoint=lambda _: tokenizer.save_pretrained(checkpoint),
        desc="speech tokenizer",
    )
    tokenizer.train()
    for _ in loop:
        packs = [
            pack_clips(data, rng, window_seconds * rng.uniform(0.4, 1.0)) for _ in range(batch_size)
        ]
        waveforms = [perturb_speed(waveform, rng) for waveform, _ in packs]
        loss, units = tokenizer.training_loss(waveforms, SAMPLE_RATE, [t for _, t in packs])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(tokenizer.parameters(), 1.0)
        optimizer.step()
        loop.log(ctc=loss.item(), units=units.unique().numel())
    tokenizer.eval()
    tokenizer.save_pretrained(out_dir)
    return tokenizer
