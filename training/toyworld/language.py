"""English and Korean for the toy world: captions, questions and answers from a small grammar,
task prompts, and the caption parser that reads text back into attributes.

Both languages are generated from the same choices (template style, question type, referent),
so an English sentence and its Korean sentence are exact translations of each other.
"""

from __future__ import annotations

import re
from dataclasses import replace

from training.toyworld.scenes import (
    COLOURS,
    POSITIONS,
    SHAPES,
    SIZES,
    ObjectAttrs,
    Scene,
    SceneObject,
)

LANGS: tuple[str, ...] = ("en", "ko")
QUESTION_TYPES: tuple[str, ...] = ("colour", "shape", "size", "position", "count")

EN_POSITION = {
    "left": "on the left",
    "right": "on the right",
    "top": "at the top",
    "bottom": "at the bottom",
    "centre": "in the centre",
}
KO_COLOUR_ADJ = {
    "red": "빨간",
    "green": "초록색",
    "blue": "파란",
    "yellow": "노란",
    "purple": "보라색",
    "orange": "주황색",
}
KO_COLOUR_NOUN = {
    "red": "빨간색",
    "green": "초록색",
    "blue": "파란색",
    "yellow": "노란색",
    "purple": "보라색",
    "orange": "주황색",
}
KO_SHAPE = {"circle": "원", "square": "정사각형", "triangle": "삼각형", "star": "별"}
KO_SIZE = {"big": "큰", "small": "작은"}
KO_SIZE_ANSWER = {"big": "커요", "small": "작아요"}
KO_POSITION = {
    "left": "왼쪽",
    "right": "오른쪽",
    "top": "위쪽",
    "bottom": "아래쪽",
    "centre": "가운데",
}
EN_COUNT = {1: "one", 2: "two", 3: "three"}
KO_COUNT = {1: "한", 2: "두", 3: "세"}

PROMPTS: dict[str, dict[str, str]] = {
    "caption": {"en": "Describe the image.", "ko": "이미지를 설명해 주세요."},
    "draw": {"en": "Draw this: {text}", "ko": "다음을 그려 주세요: {text}"},
    "asr": {"en": "Transcribe the audio.", "ko": "음성을 받아 적어 주세요."},
    "tts": {"en": "Say this aloud: {text}", "ko": "다음을 소리 내어 읽어 주세요: {text}"},
    "spoken_vqa": {
        "en": "Answer the spoken question aloud.",
        "ko": "음성 질문에 음성으로 답해 주세요.",
    },
    "translate": {"en": "Translate into Korean: {text}", "ko": "영어로 번역해 주세요: {text}"},
    "video_caption": {
        "en": "Describe what happens in the video.",
        "ko": "영상에서 무슨 일이 일어나는지 설명해 주세요.",
    },
}
SYSTEM_PROMPT = "You are a helpful assistant."


def _check_lang(lang: str) -> None:
    if lang not in LANGS:
        raise ValueError(f"unknown language {lang!r}; expected one of {LANGS}")


def _has_final_consonant(word: str) -> bool:
    code = ord(word[-1]) - 0xAC00
    return 0 <= code < 11172 and code % 28 != 0


def josa(word: str, with_final: str, without_final: str) -> str:
    """Attach the Korean particle form that fits the word's last syllable (이/가, 과/와, 은/는)."""
    return word + (with_final if _has_final_consonant(word) else without_final)


def en_noun_phrase(obj: SceneObject | ObjectAttrs) -> str:
    """ "big red circle": size, colour, shape."""
    return f"{obj.size} {obj.colour} {obj.shape}"


def ko_noun_phrase(obj: SceneObject | ObjectAttrs) -> str:
    """ "큰 빨간 원": size, colour, shape."""
    return f"{KO_SIZE[obj.size]} {KO_COLOUR_ADJ[obj.colour]} {KO_SHAPE[obj.shape]}"


def describe(scene: Scene, lang: str, style: int = 0) -> str:
    """Caption a scene. Style 0 is a noun phrase ("a big red circle on the left" /
    "왼쪽에 큰 빨간 원"); style 1 a sentence ("there is ..." / "... 있어요")."""
    _check_lang(lang)
    if style not in (0, 1):
        raise ValueError(f"caption style must be 0 or 1, got {style}")
    if lang == "en":
        phrases = [f"a {en_noun_phrase(o)} {EN_POSITION[o.position]}" for o in scene.objects]
        text = " and ".join(phrases)
        return f"there is {text}" if style == 1 else text
    phrases = [f"{KO_POSITION[o.position]}에 {ko_noun_phrase(o)}" for o in scene.objects]
    if style == 0:
        return " ".join([josa(p, "과", "와") for p in phrases[:-1]] + [phrases[-1]])
    return (
        " ".join(
            [josa(p, "이 있고", "가 있고") for p in phrases[:-1]] + [josa(phrases[-1], "이", "가")]
        )
        + " 있어요"
    )


def _en_answer(qtype: str, obj: SceneObject | ObjectAttrs | None, count: int) -> str:
    if qtype == "colour":
        return f"it is {obj.colour}"
    if qtype == "shape":
        return f"it is a {obj.shape}"
    if qtype == "size":
        return f"it is {obj.size}"
    if qtype == "position":
        return f"it is {EN_POSITION[obj.position]}"
    return "there is one" if count == 1 else f"there are {EN_COUNT[count]}"


def _ko_answer(qtype: str, obj: SceneObject | ObjectAttrs | None, count: int) -> str:
    if qtype == "colour":
        return f"{KO_COLOUR_NOUN[obj.colour]}이에요"
    if qtype == "shape":
        return josa(KO_SHAPE[obj.shape], "이에요", "예요")
    if qtype == "size":
        return KO_SIZE_ANSWER[obj.size]
    if qtype == "position":
        return f"{KO_POSITION[obj.position]}에 있어요"
    return f"{KO_COUNT[count]} 개 있어요"


def ask(scene: Scene, qtype: str, lang: str, target: int = 0) -> tuple[str, str]:
    """A question about ``scene.objects[target]`` (or the whole scene for "count") and its
    answer, in ``lang``. Objects are named by position, except in "position" questions,
    where they are named by size, colour and shape."""
    _check_lang(lang)
    if qtype not in QUESTION_TYPES:
        raise ValueError(f"unknown question type {qtype!r}; expected one of {QUESTION_TYPES}")
    obj = scene.objects[target]
    count = len(scene.objects)
    if lang == "en":
        where = EN_POSITION[obj.position]
        question = {
            "colour": f"what colour is the shape {where}?",
            "shape": f"what shape is {where}?",
            "size": f"is the shape {where} big or small?",
            "position": f"where is the {en_noun_phrase(obj)}?",
            "count": "how many shapes are there?",
        }[qtype]
        return question, _en_answer(qtype, obj, count)
    where = f"{KO_POSITION[obj.position]}에 있는 도형은"
    question = {
        "colour": f"{where} 무슨 색이에요?",
        "shape": f"{where} 무슨 모양이에요?",
        "size": f"{where} 커요, 작아요?",
        "position": f"{josa(ko_noun_phrase(obj), '은', '는')} 어디에 있어요?",
        "count": "도형이 몇 개 있어요?",
    }[qtype]
    return question, _ko_answer(qtype, obj, count)


def answer_candidates(qtype: str, lang: str, max_objects: int = 2) -> list[str]:
    """Every answer the grammar can give to a question type, in scenes of up to
    ``max_objects`` objects: the candidate set for judging a spoken or written answer
    (candidates differ in a single word)."""
    _check_lang(lang)
    answer = _en_answer if lang == "en" else _ko_answer
    values = {
        "colour": [ObjectAttrs(None, c, None, None) for c in COLOURS],
        "shape": [ObjectAttrs(s, None, None, None) for s in SHAPES],
        "size": [ObjectAttrs(None, None, s, None) for s in SIZES],
        "position": [ObjectAttrs(None, None, None, p) for p in POSITIONS],
    }
    if qtype == "count":
        return [answer("count", None, n) for n in range(1, max_objects + 1)]
    if qtype not in values:
        raise ValueError(f"unknown question type {qtype!r}; expected one of {QUESTION_TYPES}")
    return [answer(qtype, obj, 1) for obj in values[qtype]]


def caption_candidates(scene: Scene, lang: str, style: int = 0) -> list[str]:
    """The scene's caption first, then every caption that differs from it in one attribute of
    one object: the candidate set for judging a spoken caption (TTS) with the speech checker."""
    values = {"shape": SHAPES, "colour": tuple(COLOURS), "size": SIZES, "position": POSITIONS}
    candidates = [describe(scene, lang, style)]
    for index, obj in enumerate(scene.objects):
        for field, options in values.items():
            for value in options:
                if value == getattr(obj, field):
                    continue
                objects = list(scene.objects)
                objects[index] = replace(obj, **{field: value})
                candidates.append(describe(replace(scene, objects=tuple(objects)), lang, style))
    return candidates


# --- parsing ----------------------------------------------------------------------------------

_FIELDS = ObjectAttrs._fields
EN_LEXICON: dict[str, tuple[str, str]] = {
    **{s: ("shape", s) for s in SHAPES},
    **{c: ("colour", c) for c in COLOURS},
    "big": ("size", "big"),
    "large": ("size", "big"),
    "small": ("size", "small"),
    "little": ("size", "small"),
    "left": ("position", "left"),
    "right": ("position", "right"),
    "top": ("position", "top"),
    "bottom": ("position", "bottom"),
    "centre": ("position", "centre"),
    "center": ("position", "centre"),
    "middle": ("position", "centre"),
}
# Korean words are matched as the start of a space-separated token, so particles and endings
# (에, 이/가, 은/는, 과/와, 색, 이에요 ...) that follow them do not matter.
KO_LEXICON: dict[str, tuple[str, str]] = {
    **{word: ("shape", shape) for shape, word in KO_SHAPE.items()},
    "사각형": ("shape", "square"),
    "네모": ("shape", "square"),
    "동그라미": ("shape", "circle"),
    "세모": ("shape", "triangle"),
    **{word: ("colour", c) for c, word in KO_COLOUR_NOUN.items()},
    **{word: ("colour", c) for c, word in KO_COLOUR_ADJ.items()},
    "빨강": ("colour", "red"),
    "파랑": ("colour", "blue"),
    "노랑": ("colour", "yellow"),
    "초록": ("colour", "green"),
    "녹색": ("colour", "green"),
    "보라": ("colour", "purple"),
    "주황": ("colour", "orange"),
    **{word: ("size", s) for s, word in KO_SIZE.items()},
    "커다란": ("size", "big"),
    **{word: ("position", p) for p, word in KO_POSITION.items()},
    "위": ("position", "top"),
    "아래": ("position", "bottom"),
    "밑": ("position", "bottom"),
    "중앙": ("position", "centre"),
}
_KO_WORDS = sorted(KO_LEXICON, key=len, reverse=True)
# A Korean token that ends a noun phrase with "and": the particle 과/와/하고/랑, or 있고.
_KO_CONJUNCTION = re.compile(r"(과|와|하고|이랑|랑)$")
_EN_ARTICLES = {"a", "an", "the", "one", "another"}


def _ko_hit(token: str) -> tuple[str, str] | None:
    for word in _KO_WORDS:
        if token.startswith(word):
            return KO_LEXICON[word]
    return None


def _tokens(text: str) -> list[tuple[tuple[str, str] | None, bool]]:
    """(lexicon hit or None, whether a new noun phrase starts after this token) per token."""
    tokens = re.sub(r"[.,!?;:]", lambda m: " , " if m.group() in ",;" else " ", text.lower())
    words = tokens.split()
    out = []
    for i, word in enumerate(words):
        if re.search(r"[\uac00-\ud7a3]", word):
            hit = _ko_hit(word)
            boundary = word in ("있고", "그리고") or bool(hit and _KO_CONJUNCTION.search(word))
        else:
            hit = EN_LEXICON.get(word)
            following = words[i + 1] if i + 1 < len(words) else ""
            boundary = word in ("and", ",") and following in _EN_ARTICLES
        out.append((hit, boundary))
    return out


def parse_caption(text: str) -> set[ObjectAttrs]:
    """Read an English or Korean caption back into one ``ObjectAttrs`` per object.

    Word order inside a noun phrase and particles do not matter. A new object starts after a
    completed noun phrase followed by "and a" / "과, 와, 있고", or when an attribute repeats
    (a second shape word); attributes
    not mentioned are None. Text naming no attribute gives an empty set."""
    objects: list[dict[str, str]] = [{}]
    for hit, boundary in _tokens(text):
        if hit:
            field, value = hit
            if field in objects[-1]:
                objects.append({})
            objects[-1][field] = value
        if boundary and "shape" in objects[-1]:
            objects.append({})
    return {ObjectAttrs(**{f: obj.get(f) for f in _FIELDS}) for obj in objects if obj}
