"""The Omni chat format as a transformers chat template, shipped with the text tokenizer.

``tokenizer.apply_chat_template(messages, add_generation_prompt=True)`` renders exactly the ids
``OmniProcessor`` builds for the same conversation:

    <|role|> [<think> reasoning </think>] content <|endofturn|> ... <|assistant|> [<think>]

For the tokenizer to turn the rendered markers into Omni's ids, :func:`attach_chat_template`
appends the vocabulary layout's special tokens to it, each at its unified id
(``layout.special_id``). A special whose name the text vocabulary already holds (the micro
BPE's ``<|pad|>`` and ``<|endoftext|>``) keeps its text id for that name; its unified id gets a
stand-in name, :func:`stand_in`, so every later special still lands on its own id. The template
never renders those two. A marker's name inside message text becomes that marker in both
paths, as with any transformers tokenizer's special tokens.

Message content is a string or a list of items (transformers' convention):

- ``{"type": "text", "text": ...}``. Consecutive text items are joined before tokenizing,
  while the processor tokenizes each text segment alone: give one text item per run of text.
- ``{"type": "image" | "audio", "num_tokens": n}`` in system and user turns:
  ``<|image_start|>`` + n x ``<|image_pad|>`` + ``<|image_end|>``. The template cannot know
  how many slots an encoder fills (it depends on the encoder and, for audio, on the clip's
  length): ``n`` is ``encoder.num_tokens(encoder.preprocess(source))``, which
  ``omni.hf.prepare_media`` fills in. Without ``num_tokens`` one pad is rendered.
- ``{"type": "video", "timestamps": [s, ...], "tokens_per_frame": n}``: per sampled frame its
  time as text (``"0.5s"``) and n pads, between ``<|video_start|>`` and ``<|video_end|>``.

Tools follow transformers' ``tools=`` convention (JSON-schema functions); they are rendered
first, as a system turn of their own, one signature line each (``omni.tools``). An assistant
message's ``tool_calls`` (``[{"type": "function", "function": {"name", "arguments"}}]``, the
arguments a dict) follow its content; a ``tool`` message's content (a string, or text items)
is the result.

An assistant message's reasoning is ``thinking`` (or Qwen3's ``reasoning_content``).
``enable_thinking=True`` opens a think block after the generation prompt, like the
processor's ``think=True``. Image or audio items in assistant turns are answers made of
discrete codes, which have no tokens in the text tokenizer: the template refuses them (encode
such a conversation with ``OmniProcessor``).
"""

from __future__ import annotations

import copy
import hashlib
from typing import Any

from tokenizers import AddedToken

from omni.vocab import VocabLayout

# Every tag strips the whitespace around it ({%- -%}), so the layout below renders nothing of
# its own: byte-level BPE would keep every space and newline.
CHAT_TEMPLATE = """
{%- if tools -%}
    <|system|><tools>
    {%- for tool in tools -%}
        {%- set f = tool.function if tool.function is defined else tool -%}
        {%- set params = f.parameters | default({}) -%}
        {%- if not loop.first -%}{{- '\\n' -}}{%- endif -%}
        {{- f.name -}}(
        {%- for name, spec in (params.properties | default({})) | items -%}
            {%- if not loop.first -%}{{- ', ' -}}{%- endif -%}
            {{- name -}}{%- if name not in (params.required | default([])) -%}?{%- endif -%}:{{- ' ' -}}
            {%- if spec.enum is defined -%}{{- spec.enum | join('|') -}}{%- else -%}{{- spec.type | default('any') -}}{%- endif -%}
        {%- endfor -%}
        ):{{- ' ' ~ (f.description | default('')) -}}
    {%- endfor -%}
    </tools><|endofturn|>
{%- endif -%}
{%- for message in messages -%}
    {%- if message.role not in ['system', 'user', 'assistant', 'tool'] -%}
        {{- raise_exception('unknown role ' ~ message.role ~ ': Omni chats have system, user, assistant and tool turns') -}}
    {%- endif -%}
    <|{{ 'user' if message.role == 'tool' else message.role }}|>
    {%- set think = message.thinking | default(message.reasoning_content) -%}
    {%- if think is defined and think is not none -%}
        {%- if message.role != 'assistant' -%}
            {{- raise_exception('only assistant turns may carry a think block') -}}
        {%- endif -%}
        <think>{{ think }}</think>
    {%- endif -%}
    {%- if message.role == 'tool' -%}
        <tool_response>
        {%- if message.content is string -%}{{- message.content -}}
        {%- else -%}{%- for item in message.content -%}{{- item.text -}}{%- endfor -%}
        {%- endif -%}
        </tool_response>
    {%- elif message.content is string -%}
        {{- message.content -}}
    {%- elif message.content is not none -%}
        {%- for item in message.content -%}
            {%- if item.type == 'text' -%}
                {{- item.text -}}
            {%- elif item.type in ['image', 'audio'] -%}
                {%- if message.role == 'assistant' -%}
                    {{- raise_exception('an ' ~ item.type ~ ' in an assistant turn is a discrete answer the chat template cannot render: encode it with OmniProcessor') -}}
                {%- endif -%}
                <|{{ item.type }}_start|>
                {{- ('<|' ~ item.type ~ '_pad|>') * (item.num_tokens | default(1)) -}}
                <|{{ item.type }}_end|>
            {%- elif item.type == 'video' -%}
                <|video_start|>
                {%- for time in item.timestamps | default([none]) -%}
                    {%- if time is not none -%}{{- '%.1f' | format(time) }}s{%- endif -%}
                    {{- '<|video_pad|>' * (item.tokens_per_frame | default(1)) -}}
                {%- endfor -%}
                <|video_end|>
            {%- else -%}
                {{- raise_exception('unknown content type ' ~ item.type ~ ': expected text, image, audio or video') -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {%- for call in message.tool_calls | default([]) -%}
        {%- if message.role != 'assistant' -%}
            {{- raise_exception('only assistant turns may carry tool calls') -}}
        {%- endif -%}
        {%- set f = call.function if call.function is defined else call -%}
        {%- if f.arguments is string -%}
            {{- raise_exception('tool call arguments must be a dict, not a JSON string') -}}
        {%- endif -%}
        <tool_call>{{- {'name': f.name, 'arguments': f.arguments | default({})} | tojson -}}</tool_call>
    {%- endfor -%}
    <|endofturn|>
{%- endfor -%}
{%- if add_generation_prompt -%}
    <|assistant|>
    {%- if enable_thinking | default(false) -%}<think>{%- endif -%}
{%- endif -%}
"""


# sha256 of the templates earlier Omni versions saved (before tools): a folder holding one gets
# the current template when its tokenizer is attached, so a model trained on from an older
# checkpoint ships a template that renders tools; a template set by hand is kept.
EARLIER_TEMPLATES = frozenset(
    {
        "ef7bcea382cd5182cb66647db309d9e1358cd78983b43d636549897912a11479",
        "99da2d0de0892981649893436087289cac35549d91937e0d5386f97bb6977e90",
    }
)


def _current(template: str | dict[str, str] | None) -> str | dict[str, str] | None:
    """``template`` with an earlier Omni template (alone or as the ``default`` of several)
    replaced by the current one."""

    def earlier(text: object) -> bool:
        return (
            isinstance(text, str) and hashlib.sha256(text.encode()).hexdigest() in EARLIER_TEMPLATES
        )

    if isinstance(template, dict):
        return {k: CHAT_TEMPLATE if earlier(v) else v for k, v in template.items()}
    return CHAT_TEMPLATE if earlier(template) else template


def stand_in(name: str) -> str:
    """The tokenizer's name for the unified id of a special the text vocabulary already has."""
    return f"[omni]{name}"


def text_block_size(tokenizer: Any, layout: VocabLayout) -> int:
    """How many of the tokenizer's ids are the text block: ``len(tokenizer)`` less the
    layout's specials when :func:`attach_chat_template` appended them."""
    size = len(tokenizer)
    offset = size - len(layout.specials)
    if offset <= 0:
        return size
    names = tokenizer.convert_ids_to_tokens(list(range(offset, size)))
    attached = all(got in (name, stand_in(name)) for got, name in zip(names, layout.specials))
    return offset if attached else size


def attach_chat_template(tokenizer: Any, layout: VocabLayout) -> Any:
    """``tokenizer`` knowing Omni's specials at their unified ids, with the chat template.

    A tokenizer that already has both is returned as it is (a template set by hand is kept,
    an earlier Omni template is brought up to date); otherwise a copy is changed, so the
    caller's tokenizer (often shared) keeps its length.
    """
    text_size = text_block_size(tokenizer, layout)
    if text_size != layout.text_size:
        raise ValueError(
            f"the text tokenizer has {text_size} text tokens but the vocabulary layout "
            f"expects {layout.text_size}: they come from different models"
        )
    attached = text_size != len(tokenizer)
    template = _current(tokenizer.chat_template)
    if attached and template is not None and template == tokenizer.chat_template:
        return tokenizer
    tokenizer = copy.deepcopy(tokenizer)
    tokenizer.chat_template = template
    if not attached:
        known = tokenizer.get_vocab()
        names = [stand_in(name) if name in known else name for name in layout.specials]
        added = [AddedToken(name, special=True, normalized=False) for name in names]
        tokenizer.add_tokens(added, special_tokens=True)
        if text_block_size(tokenizer, layout) != layout.text_size:
            raise ValueError("the tokenizer did not place Omni's special tokens at their ids")
    if tokenizer.chat_template is None:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer
