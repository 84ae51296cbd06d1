"""Omni through transformers' own API: the chat template, ``model.generate`` and its inputs.

After ``import omni`` a pipeline folder loads with ``AutoModelForCausalLM`` and
``AutoTokenizer``; this module supplies the two pieces transformers cannot know::

    messages, media = prepare_media(model, messages)  # encoder slot counts + preprocessed media
    ids = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=False
    )
    out = model.generate(
        ids, media=media, max_new_tokens=n, do_sample=False,
        logits_processor=logits_processor(model, "image", ids.shape[1], max_new_tokens=n),
    )

Greedy, this gives the same answer ids as ``OmniPipeline.generate`` (the ids before the
modality decoders turn an image or audio block into pixels or a waveform).
"""

from __future__ import annotations

import copy
from typing import Any

from transformers import LogitsProcessorList

from omni.constraints import ConstrainedLogits, OutputConstraint
from omni.inputs import to_segment
from omni.sequence import SEGMENT_TYPES

CONTINUOUS = ("image", "audio", "video")


def logits_processor(
    model: Any, out_modality: str, prompt_length: int, max_new_tokens: int | None = None
) -> LogitsProcessorList:
    """The output constraint of ``out_modality`` (``text``, ``image``, ``audio``, ``auto``) for
    ``model.generate``: only ids of a well-formed answer of that modality, then the end of turn.

    ``prompt_length`` is the (padded) prompt width, ``input_ids.shape[1]``; with the
    ``max_new_tokens`` given to ``generate`` a block is closed within the budget.
    """
    constraint = OutputConstraint(model.layout, out_modality)
    if max_new_tokens is not None and max_new_tokens < constraint.min_tokens():
        raise ValueError(
            f"max_new_tokens={max_new_tokens} is too small to close a {out_modality} answer: "
            f"it needs at least {constraint.min_tokens()} tokens"
        )
    return LogitsProcessorList([ConstrainedLogits(constraint, prompt_length, max_new_tokens)])


def prepare_media(model: Any, messages: list[dict[str, Any]]) -> tuple[list[dict], dict]:
    """Chat messages ready for the chat template, and the ``media`` for ``model.generate``.

    Each ``{"type": "image" | "audio" | "video", <type>: source}`` item (a PIL image, a path,
    a ``(sample_rate, waveform)`` pair, ...) is preprocessed by the model's encoder, which says
    how many placeholder slots it fills; the copy of the item gets that count
    (``num_tokens``, or ``timestamps`` and ``tokens_per_frame`` for a video).
    """
    prepared = copy.deepcopy(messages)
    media: dict[str, list[Any]] = {}
    for message in prepared:
        content = message.get("content")
        for item in content if isinstance(content, list) else []:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind in CONTINUOUS and kind in item:
                media.setdefault(kind, []).append(_prepare_item(model, kind, item))
    return prepared, media


def _prepare_item(model: Any, kind: str, item: dict[str, Any]) -> Any:
    encoders = model.continuous_encoders()
    if kind not in encoders:
        raise ValueError(f"this model has no {kind} encoder, so it cannot take {kind} input")
    segment = to_segment(item.pop(kind))
    if not isinstance(segment, SEGMENT_TYPES[kind]):
        raise ValueError(f"a {kind} item holds {type(segment).__name__.lower()}, not {kind}")
    encoder = encoders[kind]
    features = encoder.preprocess(segment.source)
    if kind == "video":
        item["timestamps"] = list(features.timestamps)
        item["tokens_per_frame"] = encoder.num_tokens(features) // len(features.timestamps)
    else:
        item["num_tokens"] = encoder.num_tokens(features)
    return features
