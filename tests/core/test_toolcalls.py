"""lmstudio_agent.model.toolcalls: every call format small models write, parsed without evaluating anything."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmstudio_agent.model.toolcalls import (
    ParsedContent,
    ToolCall,
    format_lfm2_calls,
    parse_openai_tool_calls,
    parse_tool_calls,
)


def calls_of(text: str) -> list[tuple[str, dict]]:
    parsed = parse_tool_calls(text)
    assert parsed.errors == [], parsed.errors
    return [(call.name, call.arguments) for call in parsed.calls]


# ---------------------------------------------------------------------------------------------- LFM2


def test_lfm2_several_calls_then_text():
    parsed = parse_tool_calls(
        '<|tool_call_start|>[get_weather(city="Paris"), get_time(tz="CET")]<|tool_call_end|>Checking both.'
    )
    assert parsed == ParsedContent(
        calls=[ToolCall("get_weather", {"city": "Paris"}), ToolCall("get_time", {"tz": "CET"})],
        text="Checking both.",
        errors=[],
    )


def test_lfm2_python_literals_become_json_values():
    text = (
        "<|tool_call_start|>[f(a='single', b=True, c=False, d=None, e=-2, f=1.5e3, "
        "g=[1, 'two', {'k': None}], h={'nested': {'deep': [True]}}, i=(1, 2))]<|tool_call_end|>"
    )
    assert calls_of(text) == [
        (
            "f",
            {
                "a": "single",
                "b": True,
                "c": False,
                "d": None,
                "e": -2,
                "f": 1500.0,
                "g": [1, "two", {"k": None}],
                "h": {"nested": {"deep": [True]}},
                "i": [1, 2],
            },
        )
    ]


def test_lfm2_json_spellings_inside_python_calls():
    assert calls_of("<|tool_call_start|>[f(a=true, b=null, c=false)]<|tool_call_end|>") == [
        ("f", {"a": True, "b": None, "c": False})
    ]


def test_lfm2_text_before_and_after_is_kept():
    parsed = parse_tool_calls("Let me look.\n<|tool_call_start|>[search(q=\"x\")]<|tool_call_end|>\nOne moment.")
    assert [call.name for call in parsed.calls] == ["search"]
    assert parsed.text == "Let me look.\n\nOne moment."


def test_lfm2_with_json_inside_the_wrapper():
    text = '<|tool_call_start|>[{"name": "f", "arguments": {"a": 1, "b": [true, null]}}, {"name": "g", "arguments": {}}]<|tool_call_end|>'
    assert calls_of(text) == [("f", {"a": 1, "b": [True, None]}), ("g", {})]


def test_lfm2_single_call_without_list_and_without_end_token():
    assert calls_of('<|tool_call_start|>f(a="x")<|tool_call_end|>') == [("f", {"a": "x"})]
    # Servers may drop the end token (it is special), and the model may stop right after the list.
    assert calls_of('<|tool_call_start|>[f(a="x")]') == [("f", {"a": "x"})]


def test_lfm2_zero_argument_call():
    assert calls_of("<|tool_call_start|>[list_files()]<|tool_call_end|>") == [("list_files", {})]


def test_hyphenated_and_dotted_names_and_keyword_argument_names():
    text = '<|tool_call_start|>[get-weather(city="a-b(c)=d"), tools.search(from="x", first-name="y")]<|tool_call_end|>'
    assert calls_of(text) == [
        ("get-weather", {"city": "a-b(c)=d"}),  # text inside strings is left untouched
        ("tools.search", {"from": "x", "first-name": "y"}),
    ]


def test_positional_arguments_are_an_error():
    parsed = parse_tool_calls('<|tool_call_start|>[f("x", 2)]<|tool_call_end|>')
    assert parsed.calls == []
    assert parsed.errors == [
        "could not parse the <|tool_call_start|> call: f: positional arguments are not supported; "
        "write f(arg=value, ...)"
    ]
    assert parsed.text == ""


# ---------------------------------------------------------------------------------------------- bare lists


def test_bare_list_as_whole_content():
    assert calls_of('[get_weather(city="Paris"), get_time(tz="CET")]') == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]


def test_bare_list_on_its_own_line_among_prose():
    parsed = parse_tool_calls('I will check.\n[get_weather(city="Paris")]\nThen answer.')
    assert parsed.calls == [ToolCall("get_weather", {"city": "Paris"})]
    assert parsed.text == "I will check.\nThen answer."


def test_bare_list_left_by_a_server_that_stripped_the_start_token():
    assert calls_of('[f(a=1)]<|tool_call_end|>') == [("f", {"a": 1})]


@pytest.mark.parametrize(
    "prose",
    [
        "The answer is [1, 2, 3].",
        "See [the docs](https://example.com/f(x)).",
        "Use list[int] or print(x) in Python.",
        "[Note] call f(a=1) when ready",
        "I think [this(is)] fine",
        "[1, 2, 3]",
        '{"answer": 42, "unit": "m"}',
        '{"name": "Paris", "country": "France"}',
        '{"name": "Paris"}',
        "[]",
        "",
        "   ",
    ],
)
def test_prose_and_plain_json_answers_are_not_calls(prose):
    parsed = parse_tool_calls(prose)
    assert parsed.calls == [] and parsed.errors == []
    assert parsed.text == prose.strip()


def test_broken_bare_line_inside_prose_stays_prose():
    text = "Example:\n[Note(1)]\nthat was a note"
    parsed = parse_tool_calls(text)
    assert parsed == ParsedContent([], text, [])


def test_unclosed_wrapper_keeps_the_answer_that_follows():
    parsed = parse_tool_calls('<|tool_call_start|>[f(a="x")]Checking that for you.')
    assert parsed == ParsedContent([ToolCall("f", {"a": "x"})], "Checking that for you.", [])
    parsed = parse_tool_calls('<tool_call>{"name": "g", "arguments": {}} Working on it.')
    assert parsed == ParsedContent([ToolCall("g", {})], "Working on it.", [])


def test_noise_inside_a_closed_wrapper_is_dropped():
    parsed = parse_tool_calls("<|tool_call_start|>[f(a=1)] (calling f)<|tool_call_end|>Done.")
    assert parsed == ParsedContent([ToolCall("f", {"a": 1})], "Done.", [])


def test_bare_list_followed_by_text_on_the_same_line():
    parsed = parse_tool_calls('[get_weather(city="Oslo")] Let me check the weather.')
    assert parsed == ParsedContent([ToolCall("get_weather", {"city": "Oslo"})], "Let me check the weather.", [])


def test_refused_bare_list_is_an_error_as_whole_content_but_prose_inside_text():
    assert parse_tool_calls("[f(1)]").errors == [
        "could not parse the tool call list: f: positional arguments are not supported; write f(arg=value, ...)"
    ]
    assert parse_tool_calls("Compare:\n[f(1)] with g\nok") == ParsedContent([], "Compare:\n[f(1)] with g\nok", [])


# ---------------------------------------------------------------------------------------------- JSON formats


def test_lm_studio_tool_request():
    text = 'Sure.\n[TOOL_REQUEST]{"name": "add", "arguments": {"a": 1, "b": 2}}[END_TOOL_REQUEST]'
    parsed = parse_tool_calls(text)
    assert parsed.calls == [ToolCall("add", {"a": 1, "b": 2})]
    assert parsed.text == "Sure."


def test_several_tool_requests_keep_their_order():
    text = (
        '[TOOL_REQUEST]{"name": "a", "arguments": {}}[END_TOOL_REQUEST]\n'
        '[TOOL_REQUEST]{"name": "b", "arguments": {"x": 1}}[END_TOOL_REQUEST]'
    )
    assert calls_of(text) == [("a", {}), ("b", {"x": 1})]


def test_hermes_tool_call_with_string_arguments():
    text = '<tool_call>\n{"name": "f", "arguments": "{\\"q\\": \\"cats\\", \\"n\\": 2}"}\n</tool_call>'
    assert calls_of(text) == [("f", {"q": "cats", "n": 2})]


def test_hermes_several_calls_and_a_surplus_brace():
    text = '<tool_call>{"name": "a", "arguments": {"x": 1}}}</tool_call><tool_call>{"name": "b", "arguments": {}}</tool_call>'
    assert calls_of(text) == [("a", {"x": 1}), ("b", {})]


def test_whole_content_json_shapes():
    assert calls_of('{"name": "f", "arguments": {"a": 1}}') == [("f", {"a": 1})]
    assert calls_of('{"tool": "terminate", "args": {"message": "done"}}') == [("terminate", {"message": "done"})]
    assert calls_of('{"name": "f", "parameters": {"a": 1}}') == [("f", {"a": 1})]
    assert calls_of('[{"name": "f", "arguments": {}}, {"tool": "g", "args": {"b": 2}}]') == [("f", {}), ("g", {"b": 2})]
    parsed = parse_tool_calls('{"type": "function", "id": "call_1", "function": {"name": "f", "arguments": "{\\"a\\": 1}"}}')
    assert parsed.calls == [ToolCall("f", {"a": 1}, id="call_1")]
    assert calls_of('{"tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}') == [("f", {})]


def test_json_fences_are_tolerated():
    assert calls_of('```json\n{"name": "f", "arguments": {"a": 1}}\n```') == [("f", {"a": 1})]
    parsed = parse_tool_calls('Calling now:\n```json\n{"tool": "g", "args": {}}\n```\nDone.')
    assert parsed.calls == [ToolCall("g", {})]
    assert parsed.text == "Calling now:\n\nDone."
    assert calls_of('<tool_call>```json\n{"name": "h", "arguments": {}}\n```</tool_call>') == [("h", {})]


def test_single_quoted_json_call_from_an_imitating_model():
    assert calls_of("{'name': 'f', 'arguments': {'a': True, 'b': None}}") == [("f", {"a": True, "b": None})]


def test_json_call_line_inside_prose():
    parsed = parse_tool_calls('I need the weather.\n{"name": "weather", "arguments": {"city": "Oslo"}}')
    assert parsed.calls == [ToolCall("weather", {"city": "Oslo"})]
    assert parsed.text == "I need the weather."


def test_json_call_embedded_in_prose_even_across_lines():
    parsed = parse_tool_calls('I will call {"name": "lookup", "arguments": {"id": 7}} now.')
    assert parsed == ParsedContent([ToolCall("lookup", {"id": 7})], "I will call  now.", [])
    pretty = 'Calling:\n{\n  "tool": "store",\n  "args": {\n    "key": "a"\n  }\n}\nThanks.'
    parsed = parse_tool_calls(pretty)
    assert parsed.calls == [ToolCall("store", {"key": "a"})]
    assert parsed.text == "Calling:\n\nThanks."


def test_whole_json_call_followed_by_text():
    parsed = parse_tool_calls('{"name": "f", "arguments": {"a": 1}}\nThat should do it.')
    assert parsed == ParsedContent([ToolCall("f", {"a": 1})], "That should do it.", [])


def test_json_answer_containing_call_like_objects_is_left_alone():
    answer = '{"result": {"name": "f", "arguments": {}}, "ok": true}'
    assert parse_tool_calls(answer) == ParsedContent([], answer, [])


# ---------------------------------------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("<|tool_call_start|>[f(a=<|tool_call_end|>", "could not parse the <|tool_call_start|> call: not a valid call list"),
        ("<|tool_call_start|><|tool_call_end|>", "the call is empty"),
        ("<|tool_call_start|>[f(**{'a': 1})]<|tool_call_end|>", "** arguments are not supported"),
        ("<|tool_call_start|>[f(a=x)]<|tool_call_end|>", "unsupported value x"),
        ("<|tool_call_start|>[f(a=f'{x}')]<|tool_call_end|>", "unsupported value"),
        ("<|tool_call_start|>[f(a={1, 2})]<|tool_call_end|>", "unsupported value {1, 2}"),
        ("<|tool_call_start|>[1, 2]<|tool_call_end|>", 'expected [name(arg=value, ...)] or {"name": ...'),
        ("<|tool_call_start|>[f(a=1), 2]<|tool_call_end|>", "expected name(arg=value, ...), got 2"),
        ("<|tool_call_start|>[]<|tool_call_end|>", "the call list is empty"),
        ("<|tool_call_start|>[f(a=1) g(b=2)]<|tool_call_end|>", "not a valid call list"),
        ("[TOOL_REQUEST]{\"name\": \"f\", \"arguments\": {\"a\": [TOOL_REQUEST]", "could not parse the [TOOL_REQUEST] call"),
        ('[TOOL_REQUEST]{"answer": 1}[END_TOOL_REQUEST]', 'expected [name(arg=value, ...)] or {"name": ..., "arguments": {...}}'),
        ('<tool_call>{"name": "f", "arguments": "{not json"}</tool_call>', "f: arguments are not valid JSON"),
        ('<tool_call>{"name": "f", "arguments": [1, 2]}</tool_call>', "f: arguments must be an object, got list"),
        ('<tool_call>{"name": "rm -rf /", "arguments": {}}</tool_call>', "invalid tool name 'rm -rf /'"),
        ('{"name": "f", "arguments": {"a": ', "could not parse the tool call: it is not valid JSON"),
    ],
)
def test_malformed_markup_is_reported_not_raised(text, fragment):
    parsed = parse_tool_calls(text)
    assert parsed.calls == []
    assert len(parsed.errors) == 1 and fragment in parsed.errors[0], parsed.errors
    assert "tool_call_start" not in parsed.text and "TOOL_REQUEST" not in parsed.text


def test_one_good_and_one_bad_wrapper():
    parsed = parse_tool_calls(
        '<tool_call>{"name": "good", "arguments": {}}</tool_call> and <tool_call>{"name": "bad", "arguments": "{"}</tool_call>'
    )
    assert parsed.calls == [ToolCall("good", {})]
    assert parsed.errors == ["could not parse the <tool_call> call: bad: arguments are not valid JSON"]
    assert parsed.text == "and"


@pytest.mark.parametrize(
    "template",
    [
        "[__import__('os').system('touch {marker}')]",
        "<|tool_call_start|>[__import__('os').system('touch {marker}')]<|tool_call_end|>",
        "<|tool_call_start|>[f(a=__import__('os').system('touch {marker}'))]<|tool_call_end|>",
        "<|tool_call_start|>[f(a=open('{marker}', 'w').write('x'))]<|tool_call_end|>",
        "<|tool_call_start|>[f(a=(lambda: open('{marker}', 'w'))())]<|tool_call_end|>",
        "<|tool_call_start|>[getattr(a=1).x(b=open('{marker}', 'w'))]<|tool_call_end|>",
        "<|tool_call_start|>[f(a=[].__class__.__base__)]<|tool_call_end|>",
        '<tool_call>{{"name": "f", "arguments": "__import__(\'os\').system(\'touch {marker}\')"}}</tool_call>',
    ],
)
def test_malicious_payloads_are_rejected_and_nothing_runs(template, tmp_path):
    marker = tmp_path / "pwned"
    parsed = parse_tool_calls(template.format(marker=marker))
    assert not marker.exists()  # had anything been evaluated, the file would exist
    assert parsed.calls == []
    assert parsed.errors, parsed


def test_huge_or_deep_input_is_reported_not_raised():
    deep = "<|tool_call_start|>[f(a=" + "[" * 5000 + "]" * 5000 + ")]<|tool_call_end|>"
    assert parse_tool_calls(deep).errors
    deep_json = "<tool_call>" + '{"a":' * 100_000 + "1" + "}" * 100_000 + "</tool_call>"
    assert parse_tool_calls(deep_json).errors
    long = "<|tool_call_start|>[f(a='" + "x" * 300_000 + "')]<|tool_call_end|>"
    assert "too long" in parse_tool_calls(long).errors[0]


# ---------------------------------------------------------------------------------------------- native + format


def test_parse_openai_tool_calls():
    calls, errors = parse_openai_tool_calls(
        [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}},
            {"id": "c3", "type": "function", "function": {"name": "h", "arguments": "{oops"}},
            "junk",
        ]
    )
    assert calls == [ToolCall("f", {"a": 1}, id="c1"), ToolCall("g", {}, id="c2")]
    assert errors == ["h: arguments are not valid JSON", "a tool call is not an object"]


def test_tool_call_to_openai():
    assert ToolCall("f", {"a": "é"}, id="x").to_openai() == {
        "id": "x",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a": "é"}'},
    }


def test_format_lfm2_calls():
    text = format_lfm2_calls(
        [ToolCall("get_weather", {"city": "Paris", "days": 2, "metric": True, "extra": None}), ToolCall("now", {})]
    )
    assert text == (
        '<|tool_call_start|>[get_weather(city="Paris", days=2, metric=True, extra=None), now()]<|tool_call_end|>'
    )
    assert format_lfm2_calls([]) == ""


def test_format_falls_back_to_json_for_what_python_cannot_spell():
    text = format_lfm2_calls([ToolCall("f", {"first-name": "x", "class": 1, "big": math.inf})])
    assert text.startswith('<|tool_call_start|>[{"name": "f", "arguments": {"first-name": "x"')
    assert parse_tool_calls(text).calls == [ToolCall("f", {"first-name": "x", "class": 1, "big": math.inf})]


# ---------------------------------------------------------------------------------------------- properties

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}([.-][A-Za-z_][A-Za-z0-9_]{0,6}){0,2}", fullmatch=True)
keys = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8) | st.from_regex(
    r"[a-z_][a-z0-9_]{0,8}", fullmatch=True
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=12,
)
calls = st.lists(
    st.builds(ToolCall, name=names, arguments=st.dictionaries(keys, json_values, max_size=4)), min_size=1, max_size=3
)


@settings(max_examples=300, deadline=None)
@given(calls)
def test_format_then_parse_round_trips(generated):
    parsed = parse_tool_calls(format_lfm2_calls(generated))
    assert parsed.errors == []
    assert parsed.text == ""
    assert [(call.name, call.arguments) for call in parsed.calls] == [
        (call.name, call.arguments) for call in generated
    ]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_parse_never_raises_on_arbitrary_text(text):
    parsed = parse_tool_calls(text)
    assert isinstance(parsed.calls, list) and isinstance(parsed.errors, list)


markup_fragments = st.sampled_from(
    [
        "<|tool_call_start|>", "<|tool_call_end|>", "[TOOL_REQUEST]", "[END_TOOL_REQUEST]", "<tool_call>",
        "</tool_call>", "[", "]", "(", ")", "{", "}", '"', "'", "=", ",", "f", "name", '"name"', ":", "arguments",
        '"arguments"', "True", "null", "1", "-", ".", "\n", " ", "```json", "```", "**", "\\",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(markup_fragments, max_size=40).map("".join))
def test_parse_never_raises_on_markup_soup(text):
    parsed = parse_tool_calls(text)
    for call in parsed.calls:
        assert isinstance(call.arguments, dict)
        json.dumps(call.arguments)  # arguments are always plain JSON values
