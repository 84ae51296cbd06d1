"""Tools in the chat format: the processor and the chat template agree on tools, calls and
results; calls parse back from text; malformed calls and schema mismatches are reported."""

from __future__ import annotations

import pytest

from omni.chat_template import attach_chat_template
from omni.presets import build_micro_pipeline
from omni.processor import IGNORE_INDEX
from omni.sequence import Sample, Text, ToolCall, ToolResult, Turn
from omni.tools import parse_tool_calls, render_call, schema_error, tool_schemas

COUNT = {
    "type": "function",
    "function": {
        "name": "count_objects",
        "description": "Count the objects of a colour.",
        "parameters": {
            "type": "object",
            "properties": {
                "colour": {"type": "string", "enum": ["red", "blue"]},
                "shape": {"type": "string"},
            },
            "required": ["colour"],
        },
    },
}


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first
        b: the second
    """
    return a + b


@pytest.fixture(scope="module")
def pipe():
    return build_micro_pipeline("micro-llama")


def conversation() -> Sample:
    return Sample(
        [
            Turn("user", [Text("how many red things?")]),
            Turn("assistant", [ToolCall("count_objects", {"colour": "red"})]),
            Turn("tool", [ToolResult('{"count": 2}', "count_objects")]),
            Turn("assistant", [Text("There are 2.")]),
            Turn("user", [Text("and 2 + 3?")]),
        ],
        tools=[COUNT, add],
    )


MESSAGES = [
    {"role": "user", "content": "how many red things?"},
    {
        "role": "assistant",
        "tool_calls": [
            {
                "type": "function",
                "function": {"name": "count_objects", "arguments": {"colour": "red"}},
            }
        ],
    },
    {"role": "tool", "content": '{"count": 2}'},
    {"role": "assistant", "content": "There are 2."},
    {"role": "user", "content": "and 2 + 3?"},
]


def test_chat_template_renders_tools_calls_and_results_as_the_processor(pipe):
    tokenizer = attach_chat_template(pipe.processor.tokenizer, pipe.layout)
    expected = pipe.processor.encode(conversation(), add_generation_prompt=True).input_ids
    ids = tokenizer.apply_chat_template(
        MESSAGES, tools=[COUNT, add], add_generation_prompt=True, return_dict=False
    )
    assert ids == expected
    text = tokenizer.decode(expected)
    assert "<tools>count_objects(colour: red|blue, shape?: string): Count the objects" in text
    assert "add(a: integer, b: integer): Add two integers." in text
    assert (
        '<tool_call>{"name": "count_objects", "arguments": {"colour": "red"}}</tool_call>' in text
    )


def test_a_tool_message_of_text_items_reads_as_its_text(pipe):
    from omni.inputs import to_sample

    tokenizer = attach_chat_template(pipe.processor.tokenizer, pipe.layout)
    messages = [dict(m) for m in MESSAGES]
    messages[2] = {"role": "tool", "content": [{"type": "text", "text": '{"count": 2}'}]}
    sample = to_sample(messages)
    sample.tools = [COUNT, add]
    assert sample.turns[2].segments == [ToolResult('{"count": 2}')]
    expected = pipe.processor.encode(sample, add_generation_prompt=True).input_ids
    ids = tokenizer.apply_chat_template(
        messages, tools=[COUNT, add], add_generation_prompt=True, return_dict=False
    )
    assert ids == expected


def test_loss_covers_the_calls_and_the_answer_but_not_tools_or_results(pipe):
    processor = pipe.processor
    encoded = processor.encode(conversation())
    trained = [t for t, label in zip(encoded.input_ids, encoded.labels) if label != IGNORE_INDEX]
    text = processor.tokenizer.decode(trained)
    assert '<tool_call>{"name": "count_objects"' in text and "There are 2." in text
    assert "tool_response" not in text and "count_objects(colour" not in text
    assert pipe.layout.role_id("user") in encoded.input_ids  # the tool turn's marker


def test_a_sample_with_tools_round_trips_through_its_manifest_form():
    sample = conversation()
    sample.tools = tool_schemas(sample.tools)
    again = Sample.from_dict(sample.to_dict())
    assert again == sample


def test_a_rendered_call_parses_back_to_its_name_and_arguments():
    arguments = {"colour": "red", "shape": "별"}
    text, calls = parse_tool_calls("let me count " + render_call("count_objects", arguments))
    assert text == "let me count"
    assert [(c.name, c.arguments, c.ok) for c in calls] == [("count_objects", arguments, True)]


@pytest.mark.parametrize(
    "generated,error",
    [
        ('<tool_call>{"name": "count_objects", "arguments": {"colour": "red"}', "not closed"),
        ("<tool_call>{name: count}</tool_call>", "not JSON"),
        ('<tool_call>["count_objects"]</tool_call>', '{"name"'),
        ('<tool_call>{"name": "count_objects", "arguments": 3}</tool_call>', "not a dict"),
        ('<tool_call>{"name": "paint", "arguments": {}}</tool_call>', "unknown tool 'paint'"),
        ('<tool_call>{"name": "count_objects", "arguments": {}}</tool_call>', "missing"),
        (
            '<tool_call>{"name": "count_objects", "arguments": {"colour": "pink"}}</tool_call>',
            "one of",
        ),
        (
            '<tool_call>{"name": "count_objects", "arguments": {"colour": "red", "n": 1}}</tool_call>',
            "unknown argument 'n'",
        ),
    ],
)
def test_a_malformed_or_unfitting_call_is_reported(generated, error):
    _, calls = parse_tool_calls(generated, tool_schemas([COUNT]))
    assert len(calls) == 1 and not calls[0].ok
    assert error in calls[0].error


def test_argument_types_are_checked_against_the_schema():
    schemas = tool_schemas([add])
    assert schema_error("add", {"a": 1, "b": 2}, schemas) is None
    assert "must be integer" in schema_error("add", {"a": 1, "b": "2"}, schemas)
    assert "must be integer" in schema_error("add", {"a": True, "b": 2}, schemas)


@pytest.mark.parametrize(
    "build,error",
    [
        (lambda: Turn("tool", [Text("42")]), "tool turn holds ToolResult"),
        (lambda: Turn("user", [ToolResult("42")]), "tool turn holds ToolResult"),
        (lambda: Turn("user", [ToolCall("add", {})]), "only assistant turns"),
        (lambda: ToolCall("add", "a=1"), "must be a dict"),
        (lambda: tool_schemas([{"name": 3}]), "tool schema needs"),
        (lambda: tool_schemas([COUNT, COUNT]), "distinct"),
    ],
)
def test_bad_tool_turns_and_schemas_name_the_problem(build, error):
    with pytest.raises(ValueError, match=error):
        build()


def test_an_earlier_omni_template_is_brought_up_to_date_and_a_hand_set_one_kept(pipe, monkeypatch):
    import hashlib

    import omni.chat_template as chat_template

    earlier = "{{ 'the template of an earlier Omni version' }}"
    digest = hashlib.sha256(earlier.encode()).hexdigest()
    monkeypatch.setattr(chat_template, "EARLIER_TEMPLATES", frozenset({digest}))
    tokenizer = attach_chat_template(pipe.processor.tokenizer, pipe.layout)
    tokenizer.chat_template = earlier
    upgraded = attach_chat_template(tokenizer, pipe.layout)
    assert upgraded.chat_template == chat_template.CHAT_TEMPLATE
    assert tokenizer.chat_template == earlier  # the caller's tokenizer is left as it was
    tokenizer.chat_template = {"default": earlier, "backbone": "{{ 'own' }}"}
    both = attach_chat_template(tokenizer, pipe.layout).chat_template
    assert both == {"default": chat_template.CHAT_TEMPLATE, "backbone": "{{ 'own' }}"}
    tokenizer.chat_template = "{{ 'set by hand' }}"
    assert attach_chat_template(tokenizer, pipe.layout) is tokenizer
