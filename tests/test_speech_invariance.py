"""Voice invariance by feature distillation: a tuned speech tokenizer gives words in another
voice, louder and in noise, the units the original gives them in its own voice, and leaves what reads the units alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_speech_tokenizer import TINY

from omni.cli import main
from tokenizers_mm.audio import SpeechUnitTokenizer
from tokenizers_mm.speech_invariance import distil_voice_invariance

TONES = {"a": 300.0, "b": 600.0, "c": 900.0}


def spoken(rng: np.random.Generator) -> tuple[tuple[np.ndarray, str], np.ndarray]:
    """A word of 2-3 letters, each a 0.25 s tone: (the word in another voice, a higher and
    louder one in noise, and its text), the clean word."""
    text = "".join(rng.choice(list(TONES), int(rng.integers(2, 4))))
    t = np.arange(4000) / 16_000

    def say(pitch: float) -> np.ndarray:
        return np.concatenate([0.3 * np.sin(2 * np.pi * pitch * TONES[c] * t) for c in text])

    clean = say(1.0)
    noisy = 2.5 * say(1.6) + rng.normal(0, 0.1, clean.shape)
    return (noisy.astype(np.float32), text), clean.astype(np.float32)


def make_pairs(n: int, rng: np.random.Generator):
    pairs = [spoken(rng) for _ in range(n)]
    return [s for s, _ in pairs], [c for _, c in pairs]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> str:
    """The folder of a saved tokenizer (freshly initialised: its units already tell the clean
    tones apart, and noise moves them)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tokenizer")
    SpeechUnitTokenizer(**TINY).save_pretrained(folder)
    return str(folder)


def agreement(tokenizer, original, pairs) -> tuple[float, float]:
    """Over ``pairs``: the share of units ``tokenizer`` gives the styled clips that ``original``
    gives the canonical ones, and the mean squared distance of their normalised frames."""
    styled, canonical = pairs
    ours, _ = tokenizer.normalised_frames([wave for wave, _ in styled], 16_000)
    theirs, _ = original.normalised_frames(canonical, 16_000)
    same = tokenizer.quantizer(ours)[1] == original.quantizer(theirs)[1]
    return same.float().mean().item(), (ours - theirs).pow(2).mean().item()


@torch.no_grad()
def test_distillation_gives_another_voice_the_original_units(tmp_path, trained):
    original = SpeechUnitTokenizer.from_pretrained(trained)
    held_out = make_pairs(16, np.random.default_rng(99))
    assert len(original.encode(held_out[1][0]).unique()) >= 3  # the units carry something
    (same_before, far_before) = agreement(original, original, held_out)
    with torch.enable_grad():
        tuned = distil_voice_invariance(
            SpeechUnitTokenizer.from_pretrained(trained), make_pairs,
            tmp_path / "tuned", steps=60, batch_size=8, lr=3e-3, ctc_weight=0.0,
        )  # fmt: skip
    (same_after, far_after) = agreement(tuned, original, held_out)
    assert far_after < 0.3 * far_before, (far_before, far_after)
    assert same_after > same_before + 0.03, (same_before, same_after)
    # What reads the units is untouched: the FSQ projection and both CTC heads.
    saved = SpeechUnitTokenizer.from_pretrained(tmp_path / "tuned").state_dict()
    for name, value in original.state_dict().items():
        if not name.startswith("encoder."):
            assert torch.equal(value, saved[name]), name
    assert any(not torch.equal(v, saved[k]) for k, v in original.state_dict().items())


def test_distillation_resumes_exactly(tmp_path, trained, kill_during_call):
    def fresh():
        return SpeechUnitTokenizer.from_pretrained(trained)

    options = {"steps": 4, "batch_size": 4, "checkpoint_every": 2}
    whole = distil_voice_invariance(fresh(), make_pairs, tmp_path / "a", **options)
    # killed in its third step (each step reads the teacher's frames, then the student's)
    kill_during_call(SpeechUnitTokenizer, "normalised_frames", 5, distil_voice_invariance,
                     fresh(), make_pairs, tmp_path / "b", **options)  # fmt: skip
    resumed = distil_voice_invariance(fresh(), make_pairs, tmp_path / "b", **options)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_bad_settings_and_misaligned_pairs_are_clear_errors(tmp_path, trained):
    tokenizer = SpeechUnitTokenizer.from_pretrained(trained)
    with pytest.raises(ValueError, match="ctc weight must be >= 0, got -1"):
        distil_voice_invariance(tokenizer, make_pairs, tmp_path / "a", ctc_weight=-1)

    def misaligned(n, rng):
        styled, canonical = make_pairs(n, rng)
        return styled, [np.pad(c, (0, 4000)) for c in canonical]

    with pytest.raises(ValueError, match="equal lengths, frame-aligned"):
        distil_voice_invariance(tokenizer, misaligned, tmp_path / "b", steps=1, batch_size=2)


def test_world_pairs_speak_one_sentence_in_two_voices_frame_aligned():
    from training.speech_invariance_cli import pair_maker

    styled, canonical = pair_maker("varied", classic_share=0.4)(10, np.random.default_rng(3))
    assert len(styled) == len(canonical) == 10
    assert all(len(wave) == len(clean) for (wave, _), clean in zip(styled, canonical))
    same = [wave is clean for (wave, _), clean in zip(styled, canonical)]
    assert 0 < sum(same) < 10
    assert all(text.strip() for _, text in styled)
    # the speech starts at the same place in both: the styled clip's leading silence is the
    # classic one's (noise aside), so their loudest tenth of a second is near the same time
    for (wave, _), clean in zip(styled, canonical):
        onset = [int(np.argmax(np.abs(x) > 0.5 * np.abs(x).max())) for x in (wave, clean)]
        assert abs(onset[0] - onset[1]) < 0.25 * len(clean), onset
    with pytest.raises(ValueError, match=r"classic share must lie in \[0, 1\), got 1.0"):
        pair_maker("varied", classic_share=1.0)
    with pytest.raises(ValueError, match="speaks only the classic voices"):
        pair_maker("classic")


def test_cli_rejects_a_missing_tokenizer_and_a_classic_or_unknown_style(tmp_path, trained, capsys):
    argv = ["train", "speech-invariance", "--out", str(tmp_path / "out"), "--steps", "1"]
    assert main([*argv, "--init", str(tmp_path / "none")]) == 2
    assert "no saved speech tokenizer there" in capsys.readouterr().err
    assert main([*argv, "--init", trained, "--style", "classic"]) == 2
    assert "speaks only the classic voices" in capsys.readouterr().err
    assert main([*argv, "--init", trained, "--style", "mumbled"]) == 2
    assert "unknown world style 'mumbled'" in capsys.readouterr().err
