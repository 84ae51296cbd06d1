"""Independent checkers for the toy world: they judge model outputs without using any model.

- ``check_image``: read the objects of a scene back from pixels (colour, shape, size, position).
- ``parse_caption``: English or Korean text -> attribute set (from ``training.toyworld.language``).
- ``SpeechChecker``: which candidate sentence a waveform says, by DTW over normalised MFCCs
  against espeak-ng renderings of every candidate in several reference voices.
- ``cer``, ``exact_match``, ``chrf``: text metrics for ASR and translation.
- ``attribute_accuracy``: how many attributes of a predicted set match the true set.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import permutations

import numpy as np
from PIL import Image

from training.toyworld.language import parse_caption
from training.toyworld.scenes import COLOURS, POSITION_ANCHORS, ObjectAttrs
from training.toyworld.speech import REFERENCE_VOICES, SAMPLE_RATE, SpeechRenderer, Voice

__all__ = [
    "SpeechChecker",
    "attribute_accuracy",
    "cer",
    "check_image",
    "chrf",
    "exact_match",
    "parse_caption",
]

# --- image checker ---------------------------------------------------------------------------

FOREGROUND_THRESHOLD = 48  # max channel distance from the background colour
MIN_OBJECT_FRACTION = 0.0015  # components smaller than this share of the image are noise
# Bounding-box extent (fraction of the side) between the small and big size ranges.
SIZE_THRESHOLD = 0.2
SHADE_RANGE = (0.5, 1.2)
SUBPIXEL = 4  # shapes are measured on a grid this many times finer than the pixels  # how much darker or lighter than its palette colour an object reads
# Shape prototypes in (fill ratio of the bounding box, share of pixels in its bottom quarter),
# measured on rendered scenes: a star fills little, a triangle is heavy at the bottom.
SHAPE_PROTOTYPES: dict[str, tuple[float, float]] = {
    "circle": (0.77, 0.17),
    "square": (1.0, 0.24),
    "triangle": (0.53, 0.40),
    "star": (0.43, 0.19),
}


def _as_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.int16)
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(
            f"expected a PIL image or a uint8 array of shape (H, W, 3), got {array.dtype} "
            f"{array.shape}"
        )
    return array.astype(np.int16)


def label_components(mask: np.ndarray) -> np.ndarray:
    """8-connected component labels of a boolean mask (0 = background).

    Written by hand because scipy/scikit-image are not dependencies: every foreground pixel
    starts with its own label and repeatedly takes the largest label among its neighbours;
    it stops when nothing changes (after about the longest path inside an object)."""
    height, width = mask.shape
    labels = np.where(mask, np.arange(1, height * width + 1).reshape(height, width), 0)
    while True:
        padded = np.pad(labels, 1)
        neighbours = np.stack(
            [
                padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width]
                for dy in (-1, 0, 1)
                for dx in (-1, 0, 1)
            ]
        ).max(axis=0)
        updated = np.where(mask, neighbours, 0)
        if np.array_equal(updated, labels):
            return labels
        labels = updated


def _classify_shape(ys: np.ndarray, xs: np.ndarray) -> str:
    width = xs.max() - xs.min() + 1
    height = ys.max() - ys.min() + 1
    fill = len(xs) / (width * height)
    bottom = float(((ys - ys.min() + 0.5) / height > 0.75).mean())
    return min(
        SHAPE_PROTOTYPES,
        key=lambda s: (fill - SHAPE_PROTOTYPES[s][0]) ** 2 + (bottom - SHAPE_PROTOTYPES[s][1]) ** 2,
    )


def _subpixel_shape(
    distance: np.ndarray, ys: np.ndarray, xs: np.ndarray, core: float
) -> tuple[np.ndarray, np.ndarray]:
    """The blob's half-contrast pixels on a grid ``SUBPIXEL`` times finer: the distance map
    around the blob, upsampled bilinearly, thresholded at half its core. Anti-aliased edges
    then give the contour between pixels, so a small star keeps its points."""
    top, left = max(ys.min() - 1, 0), max(xs.min() - 1, 0)
    crop = distance[top : ys.max() + 2, left : xs.max() + 2].astype(np.float32)
    height, width = crop.shape
    fine = Image.fromarray(crop, mode="F").resize(
        (width * SUBPIXEL, height * SUBPIXEL), Image.Resampling.BILINEAR
    )
    return np.nonzero(np.asarray(fine) >= 0.5 * core)


def _nearest(value: np.ndarray, table: dict[str, tuple[float, ...]]) -> str:
    return min(table, key=lambda name: float(((value - np.asarray(table[name])) ** 2).sum()))


def _nearest_colour(pixel: np.ndarray) -> str:
    """The palette colour whose shades (the colour scaled by 0.5..1.2) pass nearest the pixel:
    a darker outline or a darker background keeps the hue, where a plain nearest colour
    would turn a dark yellow orange."""

    def distance(name: str) -> float:
        colour = np.asarray(COLOURS[name], dtype=np.float64)
        scale = np.clip(pixel @ colour / (colour @ colour), *SHADE_RANGE)
        return float(((pixel - scale * colour) ** 2).sum())

    return min(COLOURS, key=distance)


def check_image(image: Image.Image | np.ndarray) -> list[ObjectAttrs]:
    """Find the objects of a toy-world image from its pixels alone.

    The background is the median colour of the border; every 8-connected blob of pixels far
    from it is an object. Colour = nearest palette colour to the blob's median pixel;
    position = nearest anchor to the bounding-box centre; size = bounding-box extent;
    shape = nearest prototype in (fill ratio, bottom-quarter mass). Objects are returned
    left to right, then top to bottom."""
    pixels = _as_rgb_array(image)
    height, width, _ = pixels.shape
    border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
    background = np.median(border, axis=0)
    distance = np.abs(pixels - background).max(axis=-1)
    labels = label_components(distance > FOREGROUND_THRESHOLD)
    found = []
    for label in np.unique(labels[labels > 0]):
        blob = labels == label
        if blob.sum() < MIN_OBJECT_FRACTION * height * width:
            continue
        # Keep the blob's pixels at least half as far from the background as its core: the
        # half-contrast contour is where the edge was before any blur.
        core = np.percentile(distance[blob], 90)
        ys, xs = np.nonzero(blob & (distance >= 0.5 * core))
        centre = np.array(
            [(xs.min() + xs.max() + 1) / 2 / width, (ys.min() + ys.max() + 1) / 2 / height]
        )
        extent = max((xs.max() - xs.min() + 1) / width, (ys.max() - ys.min() + 1) / height)
        attrs = ObjectAttrs(
            shape=_classify_shape(*_subpixel_shape(np.where(blob, distance, 0), ys, xs, core)),
            colour=_nearest_colour(np.median(pixels[ys, xs], axis=0)),
            size="big" if extent > SIZE_THRESHOLD else "small",
            position=_nearest(centre, POSITION_ANCHORS),
        )
        found.append((tuple(centre), attrs))
    return [attrs for _, attrs in sorted(found)]


def attribute_accuracy(
    predicted: Sequence[ObjectAttrs] | set[ObjectAttrs], expected: Sequence[ObjectAttrs] | set
) -> float:
    """Share of the expected attributes (4 per object) that the prediction gets right, under
    the best pairing of predicted to expected objects; extra predicted objects cost as much
    as missing ones."""
    predicted, expected = list(predicted), list(expected)
    total = 4 * max(len(predicted), len(expected))
    if total == 0:
        return 1.0
    short, long = sorted((predicted, expected), key=len)
    best = max(
        sum(a == b for one, other in zip(short, order) for a, b in zip(one, other, strict=True))
        for order in permutations(long, len(short))
    )
    return best / total


# --- text metrics ----------------------------------------------------------------------------


def _edit_distance(hyp: Sequence, ref: Sequence) -> int:
    # Levenshtein distance, one DP row at a time (no library for it among the dependencies).
    previous = list(range(len(ref) + 1))
    for i, h in enumerate(hyp, start=1):
        current = [i]
        for j, r in enumerate(ref, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (h != r)))
        previous = current
    return previous[-1]


def cer(hypothesis: str, reference: str) -> float:
    """Character error rate: edit distance / reference length (spaces count as characters)."""
    if not reference:
        raise ValueError("CER needs a non-empty reference")
    return _edit_distance(hypothesis, reference) / len(reference)


def _normalise(text: str) -> str:
    return " ".join(text.lower().replace(".", " ").replace("?", " ").replace(",", " ").split())


def exact_match(hypothesis: str, reference: str) -> bool:
    """Equal after lower-casing, dropping . , ? and collapsing whitespace."""
    return _normalise(hypothesis) == _normalise(reference)


def _char_ngrams(text: str, n: int) -> dict[str, int]:
    text = text.replace(" ", "")
    counts: dict[str, int] = {}
    for i in range(len(text) - n + 1):
        counts[text[i : i + n]] = counts.get(text[i : i + n], 0) + 1
    return counts


def chrf(hypothesis: str, reference: str, max_order: int = 6, beta: float = 2.0) -> float:
    """chrF (Popović 2015, as in sacrebleu's defaults: character n-grams 1..6, beta 2,
    whitespace removed), in [0, 100]. Written by hand as sacrebleu is not a dependency."""
    precisions, recalls = [], []
    for n in range(1, max_order + 1):
        hyp, ref = _char_ngrams(hypothesis, n), _char_ngrams(reference, n)
        if not hyp or not ref:
            continue
        overlap = sum(min(count, ref.get(gram, 0)) for gram, count in hyp.items())
        precisions.append(overlap / sum(hyp.values()))
        recalls.append(overlap / sum(ref.values()))
    if not precisions:
        return 100.0 if hypothesis.replace(" ", "") == reference.replace(" ", "") else 0.0
    precision, recall = np.mean(precisions), np.mean(recalls)
    if precision + recall == 0:
        return 0.0
    return float(100 * (1 + beta**2) * precision * recall / (beta**2 * precision + recall))


# --- speech checker --------------------------------------------------------------------------


def dtw_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Dynamic-time-warping distance between two feature sequences (frames x dims), with
    Euclidean frame cost and steps (1,0), (0,1), (1,1), divided by n + m.

    Written by hand (no DTW in torchaudio). Each row is one vector step: with
    ``A[j] = cost[i, j] + min(D[i-1, j-1], D[i-1, j])`` and ``S`` the running sum of the
    row's costs, the horizontal moves give ``D[i, j] = S[j] + min_{k<=j} (A[k] - S[k])``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    previous = np.concatenate([[0.0], np.full(cost.shape[1], np.inf)])
    for row in cost:
        diagonal_or_up = np.minimum(previous[:-1], previous[1:])
        running = np.cumsum(row)
        current = running + np.minimum.accumulate(row + diagonal_or_up - running)
        previous = np.concatenate([[np.inf], current])
    return float(previous[-1] / (cost.shape[0] + cost.shape[1]))


class SpeechChecker:
    """Which of several candidate sentences a waveform says, without a speech model.

    Each candidate is rendered by espeak-ng in every reference voice of its language; the
    waveform's distance to a candidate is the minimum DTW distance over those voices, on
    MFCCs normalised per utterance (mean and variance per coefficient, silence trimmed).
    References of both genders keep it robust to voices it has not heard; they must differ
    from the voices that rendered the data, or the check would be too easy."""

    def __init__(
        self,
        reference_voices: Sequence[Voice] | None = None,
        renderer: SpeechRenderer | None = None,
    ) -> None:
        import torchaudio.transforms as T

        self.reference_voices = list(
            reference_voices or [v for voices in REFERENCE_VOICES.values() for v in voices]
        )
        self.renderer = renderer or SpeechRenderer()
        self._mfcc = T.MFCC(
            sample_rate=SAMPLE_RATE,
            n_mfcc=20,
            melkwargs={"n_fft": 400, "hop_length": 160, "n_mels": 40},
        )
        self._references: dict[tuple[str, Voice], np.ndarray] = {}

    def features(self, wave: np.ndarray, sample_rate: int) -> np.ndarray:
        """Per-utterance normalised MFCCs (frames x 19, c0 dropped) of the voiced span."""
        from omni.common.audio import resample, to_mono

        signal = to_mono(wave, "the waveform")
        if signal.numel() < sample_rate // 20:
            raise ValueError(
                f"expected a mono waveform of at least 50 ms, got {tuple(np.shape(wave))}"
            )
        signal = resample(signal, sample_rate, SAMPLE_RATE)
        mfcc = self._mfcc(signal).T.numpy()  # frames x n_mfcc
        energy = mfcc[:, 0]
        voiced = np.nonzero(energy >= energy.max() - 0.35 * (energy.max() - energy.min()))[0]
        mfcc = mfcc[voiced[0] : voiced[-1] + 1, 1:]
        return (mfcc - mfcc.mean(0)) / (mfcc.std(0) + 1e-5)

    def _reference(self, text: str, voice: Voice) -> np.ndarray:
        key = (text, voice)
        if key not in self._references:
            self._references[key] = self.features(self.renderer.render(text, voice), SAMPLE_RATE)
        return self._references[key]

    def _voices_for(self, text: str) -> list[Voice]:
        lang = "ko" if any("\uac00" <= ch <= "\ud7a3" for ch in text) else "en"
        voices = [v for v in self.reference_voices if v.lang == lang]
        if not voices:
            raise ValueError(f"no reference voice for language {lang!r} (candidate {text!r})")
        return voices

    def distances(
        self, wave: np.ndarray, sample_rate: int, candidates: Sequence[str]
    ) -> np.ndarray:
        """Distance of the waveform to each candidate (lower = more alike)."""
        if not candidates:
            raise ValueError("need at least one candidate sentence")
        query = self.features(wave, sample_rate)
        return np.array(
            [
                min(dtw_distance(query, self._reference(text, v)) for v in self._voices_for(text))
                for text in candidates
            ]
        )

    def pick(self, wave: np.ndarray, sample_rate: int, candidates: Sequence[str]) -> int:
        """Index of the candidate sentence the waveform most likely says."""
        return int(np.argmin(self.distances(wave, sample_rate, candidates)))
