"""``omni.generate(..., tools=)`` and the tool loop: calls are parsed and checked, run, and fed
back; a raising, hanging or garbage tool and a malformed call reach the model as tool errors,
and the loop ends within its step limit."""

from __future__ import annotations

import json
import threading

import pytest

import omni
from omni.presets import build_micro_pipeline
from omni.tool_loop import run_with_tools
from omni.tools import render_call, tool_schemas


@pytest.fixture(scope="module")
def pipe():
    return build_micro_pipeline("micro-llama")


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first
        b: the second
    """
    return a + b


class Scripted:
    """The micro pipeline with scripted answer texts (the random micro model writes no tool
    calls): every step still encodes the whole conversation, tool turns included, and decodes
    on the real model; its text is then replaced and parsed as ``generate(tools=)`` does."""

    def __init__(self, pipe, texts):
        self.pipe, self.texts, self.prompt_tokens = pipe, list(texts), []

    def generate(self, sample, **options):
        result = self.pipe.generate(sample, **{**options, "max_new_tokens": 2})
        self.prompt_tokens.append(result.usage["prompt_tokens"])
        from omni.tools import parse_tool_calls

        result.text, result.tool_calls = parse_tool_calls(
            self.texts.pop(0), tool_schemas(options["tools"])
        )
        return result


def tool_errors(run):
    return [json.loads(s.content)["error"] for s in run.steps if s.error]


def test_generate_with_tools_puts_them_in_the_prompt_and_parses_calls(pipe):
    plain = omni.generate("add 2 and 3", model=pipe, max_new_tokens=4)
    with_tools = omni.generate("add 2 and 3", model=pipe, max_new_tokens=4, tools=[add])
    assert with_tools.usage["prompt_tokens"] > plain.usage["prompt_tokens"] + 10
    assert with_tools.tool_calls == []  # a random micro model writes no call


def test_an_answer_is_parsed_for_calls_against_its_own_rows_tools(pipe):
    from omni.decoding import DecodeStats
    from omni.planning import finish, plan
    from omni.sequence import Sample, Text, Turn

    request = plan(pipe, ["plain", Sample([Turn("user", [Text("add")])], tools=[add])], "text", {})
    said = "sure " + render_call("add", {"a": 2, "b": 3})
    ids = pipe.tokenizer.encode(said, add_special_tokens=False)
    plain, called = (finish(pipe, ids, DecodeStats(), request, row) for row in (0, 1))
    assert plain.text == said and plain.tool_calls == []  # that row was given no tools
    assert called.text == "sure"
    assert [(c.name, c.arguments, c.ok) for c in called.tool_calls] == [
        ("add", {"a": 2, "b": 3}, True)
    ]


def test_bad_tools_are_refused_before_decoding(pipe):
    with pytest.raises(ValueError, match="tools must be a list"):
        omni.generate("hi", model=pipe, tools=add)
    with pytest.raises(ValueError, match="tool schema needs"):
        omni.generate("hi", model=pipe, tools=[{"type": "function", "function": {}}])


def test_calls_run_and_their_results_are_fed_back_until_the_model_answers(pipe):
    model = Scripted(pipe, [render_call("add", {"a": 2, "b": 3}), "It is 5."])
    run = run_with_tools(model, "add 2 and 3", [add])
    assert run.answered and run.text == "It is 5."
    assert [(s.call.name, s.content, s.error) for s in run.steps] == [("add", "5", False)]
    assert model.prompt_tokens[1] > model.prompt_tokens[0]  # the call and its result
    assert [t.role for t in run.conversation.turns] == ["user", "assistant", "tool", "assistant"]


def _failing(error: str):
    def run(**arguments):
        raise RuntimeError(error)

    return run


SCHEMA = tool_schemas([add])[0]


def test_a_raising_hanging_or_garbage_tool_is_a_tool_error(pipe):
    release = threading.Event()
    tools = [
        (dict(SCHEMA, function={**SCHEMA["function"], "name": "raises"}), _failing("disk full")),
        (
            dict(SCHEMA, function={**SCHEMA["function"], "name": "hangs"}),
            lambda **a: release.wait(),
        ),
        (dict(SCHEMA, function={**SCHEMA["function"], "name": "garbage"}), lambda **a: object()),
        (dict(SCHEMA, function={**SCHEMA["function"], "name": "huge"}), lambda **a: "x" * 10**5),
    ]
    calls = "".join(
        render_call(n, {"a": 1, "b": 2}) for n in ("raises", "hangs", "garbage", "huge")
    )
    try:
        run = run_with_tools(Scripted(pipe, [calls, "sorry"]), "go", tools, timeout_s=0.2)
    finally:
        release.set()
    errors = tool_errors(run)
    assert len(errors) == 4 and run.answered
    assert "raised RuntimeError: disk full" in errors[0]
    assert "did not answer within 0.2 s" in errors[1]
    assert "not JSON" in errors[2] and "over 2000" in errors[3]


def test_a_malformed_call_is_reported_and_never_executed(pipe):
    ran = []

    def record(a: int, b: int) -> int:
        """Record a call.

        Args:
            a: first
            b: second
        """
        ran.append((a, b))
        return 0

    texts = ['<tool_call>{"name": "record", "arguments": {"a": 1}}</tool_call>',
             "<tool_call>{oops</tool_call>", "done"]  # fmt: skip
    run = run_with_tools(Scripted(pipe, texts), "go", [record])
    assert ran == [] and run.answered
    errors = tool_errors(run)
    assert "malformed tool call, not run: record: missing argument(s) ['b']" in errors[0]
    assert "not JSON" in errors[1]


def test_the_loop_ends_at_its_step_limit(pipe):
    model = Scripted(pipe, [render_call("add", {"a": 1, "b": 1})] * 5)
    run = run_with_tools(model, "loop forever", [add], max_steps=3)
    assert not run.answered and len(run.steps) == 3 and len(model.texts) == 2
    with pytest.raises(ValueError, match="max_steps"):
        run_with_tools(model, "x", [add], max_steps=0)


def test_a_user_simulator_answers_the_models_questions(pipe):
    replies = ["3 and 4"]
    model = Scripted(pipe, ["Which numbers?", render_call("add", {"a": 3, "b": 4}), "7."])
    run = run_with_tools(
        model, "add numbers", [add], user=lambda text: replies.pop(0) if replies else None
    )
    assert run.answered and run.text == "7." and run.steps[0].content == "7"
    roles = [t.role for t in run.conversation.turns]
    assert roles == ["user", "assistant", "user", "assistant", "tool", "assistant"]


def test_a_chat_with_tool_messages_reads_as_the_sample(pipe):
    messages = [
        {"role": "user", "content": "add 2 and 3"},
        {
            "role": "assistant",
            "tool_calls": [{"function": {"name": "add", "arguments": {"a": 2, "b": 3}}}],
        },
        {"role": "tool", "content": "5"},
    ]
    result = omni.generate(messages, model=pipe, max_new_tokens=2, tools=[add])
    assert result.usage["prompt_tokens"] > 40
