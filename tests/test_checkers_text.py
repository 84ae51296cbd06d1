"""Text metrics: CER, exact match and chrF, against values worked out by hand."""

import numpy as np
import pytest

from training.evaluate import cer, chrf, dtw_distance, exact_match


def test_cer_counts_character_edits():
    assert cer("a big red circle", "a big red circle") == 0.0
    assert cer("abd", "abc") == pytest.approx(1 / 3)
    assert cer("", "abcd") == 1.0
    assert cer("왼쪽에 큰 원", "왼쪽에 작은 원") == pytest.approx(2 / 8)
    with pytest.raises(ValueError, match="non-empty reference"):
        cer("a", "")


def test_exact_match_ignores_case_and_punctuation():
    assert exact_match("Where is the big red circle?", "where is the big red circle")
    assert not exact_match("where is the big red star", "where is the big red circle")


def test_chrf_hand_computed_value():
    # 1-grams: P = 1, R = 2/3; 2-grams: P = 1, R = 1/2; F2 = 5 * 1 * 7/12 / (4 + 7/12) = 35/55.
    assert chrf("ab", "abc") == pytest.approx(100 * 35 / 55)
    assert chrf("왼쪽에 큰 빨간 원", "왼쪽에 큰 빨간 원") == pytest.approx(100.0)
    assert chrf("xyz", "abc") == 0.0
    assert chrf("a big red circle", "a big blue circle") < chrf(
        "a big red circle", "a big red circles"
    )


def _naive_dtw(a, b):
    cost = np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1))
    n, m = cost.shape
    total = np.full((n + 1, m + 1), np.inf)
    total[0, 0] = 0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            total[i, j] = cost[i - 1, j - 1] + min(
                total[i - 1, j - 1], total[i - 1, j], total[i, j - 1]
            )
    return total[n, m] / (n + m)


def test_dtw_matches_the_textbook_recursion():
    rng = np.random.default_rng(0)
    for n, m in [(1, 1), (1, 6), (9, 4), (25, 31)]:
        a, b = rng.normal(size=(n, 3)), rng.normal(size=(m, 3))
        assert dtw_distance(a, b) == pytest.approx(_naive_dtw(a, b))
    a = rng.normal(size=(10, 3))
    assert dtw_distance(a, np.repeat(a, 2, axis=0)) == pytest.approx(0.0)
