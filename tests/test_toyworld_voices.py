"""Varied speech: voices from every espeak-ng variant within the pitch/speed ranges, unseen
voices disjoint from them, effects as drawn, and the speech checker on clean varied voices."""

import numpy as np
import pytest

from training.evaluate import SpeechChecker
from training.toyworld.language import answer_candidates
from training.toyworld.styles import (
    ESPEAK_VARIANTS,
    TRAIN_VARIANTS,
    UNSEEN_SPEAKING,
    UNSEEN_VARIANTS,
    VARIED_SPEAKING,
)
from training.toyworld.voices import SpeechEffects, apply_effects, sample_effects, sample_voice


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_training_and_unseen_voices_are_disjoint_and_cover_every_variant():
    assert not set(TRAIN_VARIANTS) & set(UNSEEN_VARIANTS)
    assert set(TRAIN_VARIANTS) | set(UNSEEN_VARIANTS) == set(ESPEAK_VARIANTS)
    rng = np.random.default_rng(0)
    train = [sample_voice(rng, "en", VARIED_SPEAKING) for _ in range(400)]
    unseen = [sample_voice(rng, "ko", UNSEEN_SPEAKING) for _ in range(200)]
    assert len({v.variant for v in train}) > 60
    assert all(20 <= v.pitch <= 90 and 120 <= v.speed <= 200 for v in train)
    assert {v.variant for v in unseen} <= set(UNSEEN_VARIANTS)
    assert not any(20 <= v.pitch <= 90 or 120 <= v.speed <= 200 for v in unseen)
    assert {v.lang for v in unseen} == {"ko"}


def test_effects_add_the_drawn_silence_gain_and_noise():
    rng = np.random.default_rng(1)
    wave = (0.3 * np.sin(np.arange(16000) / 5)).astype(np.float32)
    padded = apply_effects(wave, SpeechEffects(0.0, None, False, 0.25, 0.1, 3))
    assert len(padded) == 16000 + 4000 + 1600
    assert not padded[:4000].any() and np.allclose(padded[4000:20000], wave)
    louder = apply_effects(wave, SpeechEffects(6.0, None, False, 0.0, 0.0, 3))
    assert np.sqrt((louder**2).mean() / (wave**2).mean()) == pytest.approx(10 ** (6 / 20), rel=1e-3)
    noisy = apply_effects(wave, SpeechEffects(0.0, 20.0, False, 0.0, 0.0, 3))
    snr = 10 * np.log10((wave**2).sum() / ((noisy - wave) ** 2).sum())
    assert snr == pytest.approx(20.0, abs=0.2)
    reverberant = apply_effects(wave, SpeechEffects(0.0, None, True, 0.0, 0.0, 3))
    assert len(reverberant) == len(wave) and not np.allclose(reverberant, wave)
    drawn = [sample_effects(rng, VARIED_SPEAKING) for _ in range(200)]
    assert all(-6 <= e.gain_db <= 6 and 15 <= e.snr_db <= 40 for e in drawn)
    assert {e.reverb for e in drawn} == {True, False}
    assert max(e.lead_s for e in drawn) > 0.3 > min(e.lead_s for e in drawn)


def test_speech_checker_reads_clean_varied_and_unseen_voices():
    checker = SpeechChecker()
    rng = np.random.default_rng(0)
    correct = 0
    for i in range(16):
        lang, speaking = ("en", "ko")[i % 2], (VARIED_SPEAKING, UNSEEN_SPEAKING)[i // 8]
        candidates = answer_candidates(("colour", "position")[i % 2], lang)
        truth = int(rng.integers(len(candidates)))
        wave = checker.renderer.render(candidates[truth], sample_voice(rng, lang, speaking))
        correct += checker.pick(wave, 16000, candidates) == truth
    assert correct >= 15  # measured 40/40 per style on 40 clips of colour/shape/position
