"""Voice invariance for a trained speech-unit tokenizer, by feature distillation
(``tokenizers_mm.distillation``).

The student (the tokenizer's Whisper encoder, unfrozen) hears a sentence in a voice, room and
noise of the training styles; the teacher (a frozen copy of the original) hears the same
sentence in one of the voices it was trained on, stretched to the same length and padded with
the same silences, so the two are frame-aligned. The loss is the distance of the student's
normalised frames and FSQ inputs to the teacher's, plus the CTC loss of the unchanged unit
reader (``head``) on the student's units, which keeps the units spelling the transcript where
the alignment is loose. The FSQ projection and the reader stay as they are, so the vocoder and
every LM trained on the units stay valid.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from encoders.audio import SAMPLE_RATE
from tokenizers_mm.audio import SpeechUnitTokenizer
from tokenizers_mm.distillation import PairMaker, distil_encoder


def distil_voice_invariance(
    tokenizer: SpeechUnitTokenizer,
    make_pairs: PairMaker,
    out_dir: str | Path,
    steps: int = 1000,
    batch_size: int = 8,
    lr: float = 3e-4,
    ctc_weight: float = 0.3,
    seed: int = 0,
    checkpoint_every: int = 100,
) -> SpeechUnitTokenizer:
    """Tune ``tokenizer``'s encoder so speech in the training styles gives the original units;
    save the result to ``out_dir``. ``make_pairs`` gives ``(waveform, transcript)`` pairs in
    training styles and the aligned canonical waveforms (16 kHz, equal lengths). A rerun
    resumes from ``out_dir/checkpoint`` exactly."""
    if ctc_weight < 0:
        raise ValueError(f"ctc weight must be >= 0, got {ctc_weight}")
    quantizer, head = tokenizer.quantizer, tokenizer.head

    def pair_loss(student, teacher, styled, canonical):
        with torch.no_grad():
            target, target_lengths = tokenizer.normalised_frames(canonical, SAMPLE_RATE, teacher)
        normalised, lengths = tokenizer.normalised_frames(
            [w for w, _ in styled], SAMPLE_RATE, student
        )
        if not torch.equal(lengths, target_lengths):
            raise ValueError("styled and canonical clips must have equal lengths, frame-aligned")
        mask = torch.arange(normalised.shape[1]) < lengths[:, None]
        distance = F.mse_loss(normalised[mask], target[mask])
        distance = distance + F.mse_loss(
            quantizer.project_in(normalised)[mask], quantizer.project_in(target)[mask]
        )
        quantised, units = quantizer(normalised)
        upsampled = lengths * tokenizer.ctc_upsample
        ctc = tokenizer.ctc.loss(head(quantised, lengths), upsampled, [t for _, t in styled])
        with torch.no_grad():
            same = (units == quantizer(target)[1])[mask].float().mean().item()
        figures = {"distance": distance.item(), "ctc": ctc.item(), "same_units": same}
        return distance + ctc_weight * ctc, figures

    tokenizer.requires_grad_(False).eval()
    head.train()  # no dropout in it; cuDNN runs an LSTM backward only in training mode
    tokenizer.encoder = distil_encoder(
        tokenizer.encoder, make_pairs, pair_loss, out_dir, steps, batch_size, lr, seed,
        checkpoint_every, clip_norm=1.0, desc="voice invariance",
    )  # fmt: skip
    tokenizer.save_pretrained(out_dir)
    return tokenizer
