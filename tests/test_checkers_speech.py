"""Speech checker: picks the spoken sentence among one-word variants, for voices it has not
heard (male and female), in English and Korean."""

import numpy as np
import pytest

from training.evaluate import SpeechChecker
from training.toyworld.language import answer_candidates, caption_candidates
from training.toyworld.scenes import Scene, SceneObject
from training.toyworld.speech import GENERATION_VOICES, REFERENCE_VOICES, Voice


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Short audio ops run faster on one thread than fighting other jobs for two cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checker() -> SpeechChecker:
    return SpeechChecker()


def test_reference_voices_are_unheard_and_of_both_genders():
    for lang in ("en", "ko"):
        assert not set(GENERATION_VOICES[lang]) & set(REFERENCE_VOICES[lang])
        assert {v.gender for v in REFERENCE_VOICES[lang]} == {"male", "female"}
        assert {v.gender for v in GENERATION_VOICES[lang]} == {"male", "female"}
    assert Voice.from_id("en+f2-p60-s150") == Voice("en", "f2", 60, 150)


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_picks_the_spoken_sentence_for_unheard_voices(checker, lang):
    sentences = {
        "en": [
            "a big red circle on the left",
            "a big blue circle on the left",
            "a big red star on the left",
            "a big red circle on the right",
        ],
        "ko": [
            "왼쪽에 큰 빨간 원",
            "왼쪽에 큰 파란 원",
            "왼쪽에 큰 빨간 별",
            "오른쪽에 큰 빨간 원",
        ],
    }[lang]
    cases = [(sentences, i) for i in range(len(sentences))]
    colours = answer_candidates("colour", lang)
    cases += [(colours, 2), (colours, 5)]
    correct = 0
    for k, (candidates, truth) in enumerate(cases):
        voice = GENERATION_VOICES[lang][k % len(GENERATION_VOICES[lang])]
        wave = checker.renderer.render(candidates[truth], voice)
        correct += checker.pick(wave, 16000, candidates) == truth
    assert correct >= len(cases) - 1


def test_picks_a_spoken_caption_among_all_one_attribute_variants(checker):
    scene = Scene(
        (SceneObject("triangle", "purple", "small", "right", 0.8, 0.5, 0.07),), (0, 0, 0), 0
    )
    for lang, voice in [("en", GENERATION_VOICES["en"][1]), ("ko", GENERATION_VOICES["ko"][2])]:
        candidates = caption_candidates(scene, lang)
        wave = checker.renderer.render(candidates[0], voice)
        assert checker.pick(wave, 16000, candidates) == 0


def test_other_sample_rates_are_resampled(checker):
    import torch
    import torchaudio.functional as AF

    candidates = answer_candidates("size", "en")
    wave = checker.renderer.render(candidates[1], GENERATION_VOICES["en"][1])
    wave_22k = AF.resample(torch.from_numpy(wave), 16000, 22050).numpy()
    assert checker.pick(wave_22k, 22050, candidates) == 1


def test_bad_inputs_raise_value_error(checker):
    with pytest.raises(ValueError, match="at least one candidate"):
        checker.pick(np.zeros(16000, dtype=np.float32), 16000, [])
    with pytest.raises(ValueError, match="at least 50 ms"):
        checker.pick(np.zeros(10, dtype=np.float32), 16000, ["it is big"])
    with pytest.raises(ValueError, match="NaN"):
        checker.pick(np.full(16000, np.nan, dtype=np.float32), 16000, ["it is big"])
    english_only = SpeechChecker([v for v in REFERENCE_VOICES["en"]], checker.renderer)
    with pytest.raises(ValueError, match="no reference voice"):
        english_only.pick(np.ones(16000, dtype=np.float32), 16000, ["커요"])
