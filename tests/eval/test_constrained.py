"""The constrained call's shape (topic, tool, arguments), the prompt, and copying values from the request."""

from __future__ import annotations

import json
import re
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lmstudio_agent.model import grammar_bounds, smallmodel
from lmstudio_agent.model.smallmodel import copying
from lmstudio_agent.agent.loop import TERMINATE
from lmstudio_agent.model.client import ChatResponse, Usage
from lmstudio_agent.model.modes import ConstrainedStrategy
from lmstudio_agent.model.schema import validate
from lmstudio_agent.model.toolcalls import parse_tool_calls
from lmstudio_agent.agent.tools import tool_from_function


def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Get the current weather for a city.

    Args:
        city: City name.
        unit: Temperature unit.
    """
    return {}


def convert_currency(amount: float, from_currency: Literal["USD", "EUR", "GBP"], to_currency: Literal["USD", "EUR", "GBP"]) -> dict:
    """Convert money between currencies."""
    return {}


def search_flights(origin: str, destination: str, passengers: int = 1) -> dict:
    """Search for flights."""
    return {}


def store_invoice(invoice_data: dict) -> dict:
    """Store an invoice."""
    return {}


WEATHER, CURRENCY, FLIGHTS, INVOICE = (tool_from_function(f) for f in (get_weather, convert_currency, search_flights,
                                                                       store_invoice))
TOOLS = [WEATHER, CURRENCY, FLIGHTS, INVOICE, TERMINATE]


def variant(schema, name):
    return next(v for v in schema.get("anyOf", [schema]) if v["properties"].get(smallmodel.NAME_KEY, {}).get("const") == name)


def test_each_tool_is_one_object_topic_then_name_then_its_own_arguments():
    schema = smallmodel.call_schema(TOOLS)
    # one branch per tool but the built-in final-answer tool, whose place the answer branch takes (last)
    assert len(schema["anyOf"]) == len(TOOLS)
    assert schema["anyOf"][-1] == smallmodel.answer_schema()
    assert "terminate" not in {v["properties"].get("tool", {}).get("const") for v in schema["anyOf"]}
    weather = variant(schema, "get_weather")
    assert list(weather["properties"]) == ["type", "tool", "arguments"]
    assert weather["required"] == ["type", "tool", "arguments"] and weather["additionalProperties"] is False
    assert weather["properties"]["type"] == {"const": "weather"}
    assert weather["properties"]["arguments"]["properties"]["unit"]["enum"] == ["celsius", "fahrenheit"]
    assert weather["properties"]["arguments"]["additionalProperties"] is False  # an extra argument cannot be written
    assert smallmodel.call_schema([WEATHER], answer=False)["properties"]["tool"] == {"const": "get_weather"}
    assert smallmodel.call_schema([]) == smallmodel.answer_schema()  # no tools: only the answer
    with pytest.raises(ValueError):
        smallmodel.call_schema([], answer=False)


def test_topics_are_the_tools_object_words():
    assert smallmodel.topic(WEATHER) == "weather"
    assert smallmodel.topic(CURRENCY) == "currency"
    assert smallmodel.topic(INVOICE) == "invoice"
    assert smallmodel.topic(TERMINATE) == "final answer"
    assert smallmodel.topic(tool_from_function(lambda: 1, name="calculate")) == "calculate"  # one word stays


def test_a_call_in_the_constrained_shape_is_read_back_as_the_call():
    text = smallmodel.format_call(WEATHER, {"city": "Oslo"})
    assert json.loads(text) == {"type": "weather", "tool": "get_weather", "arguments": {"city": "Oslo"}}
    assert not validate(json.loads(text), smallmodel.call_schema(TOOLS))
    (call,) = parse_tool_calls(text).calls
    assert (call.name, call.arguments) == ("get_weather", {"city": "Oslo"})
    response = ChatResponse(text, [], "stop", Usage(), None, 0.1, {})
    turn = ConstrainedStrategy().read(response, TOOLS)
    assert [(c.name, c.arguments) for c in turn.calls] == [("get_weather", {"city": "Oslo"})]


def test_the_prompt_shows_each_tool_as_description_and_call_shape():
    prompt = smallmodel.system_prompt(TOOLS)
    assert "Get the current weather for a city.\n" in prompt
    assert '{"type": "weather", "tool": "get_weather", "arguments": {"city": "...", "unit": "celsius"}}' in prompt
    assert smallmodel.FINAL_SUMMARY not in prompt and '"tool": "terminate"' not in prompt
    assert prompt.index('"tool": "search_flights"') < prompt.index(
        smallmodel.ANSWER_SUMMARY + '\n{"type": "answer", "answer": "..."}')  # the answer: last, same form
    assert "Copy values from the request exactly." in prompt


def test_strings_and_arrays_are_bounded():
    out = grammar_bounds.bounded({"type": "object", "properties": {"s": {"type": "string"}, "xs": {"type": "array", "items": {"type": "string"}}}})
    assert out["properties"]["s"]["maxLength"] == grammar_bounds.DEFAULT_MAX_STRING
    assert out["properties"]["xs"]["maxItems"] == grammar_bounds.DEFAULT_MAX_ITEMS
    assert out["properties"]["xs"]["items"]["maxLength"] == grammar_bounds.DEFAULT_MAX_STRING


# ---------------------------------------------------------------------------------------------- copying


def test_spans_are_whole_words_of_the_request_without_its_leading_verb_or_quotes():
    spans = smallmodel.spans(["Translate 'Where is the station?' into German."])
    assert {"Where is the station?", "Where is the station", "German", "German."} <= set(spans)
    assert "station" not in spans and "the station" not in spans  # a quotation is copied whole
    assert not [s for s in spans if s.startswith("Translate")]
    assert "tation" not in spans  # whole words only
    assert smallmodel.spans(['Say "hi" to C:\\temp now']) and not [
        s for s in smallmodel.spans(['Say "hi" to C:\\temp now']) if '"' in s or "\\" in s]


def test_copied_strings_numbers_and_objects_in_the_schema():
    request = 'Find flights from Oslo to Lima for 3 people, then store {"invoice_number": "A-1", "total": 9.5}'
    schema = smallmodel.call_schema(TOOLS, [request])
    span_enum = schema["$defs"]["copied_text"]["enum"]
    flights = variant(schema, "search_flights")["properties"]["arguments"]["properties"]
    assert flights["origin"] == {"$ref": "#/$defs/copied_text"} and "Oslo" in span_enum and "Lima" in span_enum
    assert flights["passengers"]["enum"] == [3]  # "A-1" is a code, not the number 1; 9.5 is no integer
    invoice = variant(schema, "store_invoice")["properties"]["arguments"]["properties"]["invoice_data"]
    assert invoice == {"enum": [{"invoice_number": "A-1", "total": 9.5}]}
    # the answer stays free text
    assert schema["anyOf"][-1]["properties"]["answer"]["type"] == "string"
    # a correct call validates against the copy-constrained schema; an invented value does not
    good = {"type": "flights", "tool": "search_flights", "arguments": {"origin": "Oslo", "destination": "Lima", "passengers": 3}}
    invented = {**good, "arguments": {**good["arguments"], "origin": "Bergen"}}
    resolved = _inline(schema)
    assert not validate(good, resolved)
    assert validate(invented, resolved)


def test_numbers_copied_keep_their_type():
    assert smallmodel.numbers(["Convert 2044.02 CHF, a 5-minute timer, -3 degrees, v1.2"]) == [2044.02, 5, -3]
    schema = smallmodel.call_schema([FLIGHTS], ["Flights from Oslo to Lima for 2.5 or 4 people"], answer=False)
    assert schema["properties"]["arguments"]["properties"]["passengers"] == {"type": "integer", "enum": [4]}


def test_an_optional_number_with_nothing_to_copy_is_left_to_its_default():
    schema = smallmodel.call_schema([FLIGHTS], ["Find flights from Oslo to Lima"], answer=False)
    assert "passengers" not in schema["properties"]["arguments"]["properties"]
    required_number = smallmodel.call_schema([CURRENCY], ["Convert some USD to EUR"], answer=False)
    assert required_number["properties"]["arguments"]["properties"]["amount"] == {"type": "number"}


def test_enum_values_are_narrowed_to_those_mentioned_when_enough_are():
    both = smallmodel.call_schema([CURRENCY], ["Is 20 gbp more than 25 EUR?"], answer=False)["properties"]["arguments"]["properties"]
    assert both["from_currency"]["enum"] == ["EUR", "GBP"] == both["to_currency"]["enum"]
    pinned = smallmodel.call_schema([CURRENCY], ["How much is 20 gbp in EUR?"], answer=False)["properties"]["arguments"]["properties"]
    assert pinned["from_currency"]["enum"] == ["GBP"] and pinned["to_currency"]["enum"] == ["EUR"]  # "in EUR": target
    one = smallmodel.call_schema([CURRENCY], ["How much is 20 of those in EUR?"], answer=False)["properties"]["arguments"]["properties"]
    assert one["from_currency"]["enum"] == ["USD", "EUR", "GBP"]  # one mention for two arguments: no narrowing
    unit = smallmodel.call_schema([WEATHER], ["Weather in Oslo in Fahrenheit"], answer=False)["properties"]["arguments"]["properties"]
    assert unit["unit"]["enum"] == ["fahrenheit"]


def test_an_optional_enum_the_request_names_is_required_and_one_it_does_not_name_keeps_its_default():
    named = smallmodel.call_schema([WEATHER], ["Weather in Oslo in Fahrenheit"], answer=False)["properties"]["arguments"]
    assert named["required"] == ["city", "unit"] and named["properties"]["unit"]["enum"] == ["fahrenheit"]
    unnamed = smallmodel.call_schema([WEATHER], ["Weather in Oslo"], answer=False)["properties"]["arguments"]
    assert "unit" not in unnamed["properties"] and unnamed["required"] == ["city"]


def test_a_tool_that_needs_an_object_waits_until_the_conversation_holds_one():
    def names(schema):
        variants = schema.get("anyOf", [schema])
        return {v["properties"].get(smallmodel.NAME_KEY, {}).get("const") for v in variants} - {None}

    assert names(smallmodel.call_schema([WEATHER, INVOICE], ["Store the invoice INV-1 from ACME"])) == {"get_weather"}
    found = smallmodel.call_schema([WEATHER, INVOICE], ['Result of extract: {"invoice_number": "INV-1"}'])
    assert names(found) == {"get_weather", "store_invoice"}
    assert variant(found, "store_invoice")["properties"]["arguments"]["properties"]["invoice_data"] == {
        "enum": [{"invoice_number": "INV-1"}]}
    alone = smallmodel.call_schema([INVOICE], ["Store the invoice INV-1"])  # nothing else to call: left free
    assert names(alone) == {"store_invoice"}


def test_spans_stop_once_past_the_limit():
    text = " ".join(f"w{i}" for i in range(400))
    assert len(smallmodel.spans([text], limit=5)) == 6
    assert smallmodel.spans([text], limit=5) == smallmodel.spans([text])[:6]


def test_too_much_text_to_copy_leaves_strings_free(monkeypatch):
    monkeypatch.setattr(copying, "MAX_SPANS", 10)
    schema = smallmodel.call_schema([WEATHER], ["a b c d e f g h i j k l m n o p"], answer=False)
    assert "$defs" not in schema
    assert schema["properties"]["arguments"]["properties"]["city"]["type"] == "string"


def test_copy_sources_are_the_user_and_tool_texts():
    messages = [{"role": "system", "content": "rules"}, {"role": "user", "content": "Weather in Oslo?"},
                {"role": "assistant", "content": "{...}"}, {"role": "tool", "content": '{"t": 3}'},
                {"role": "user", "content": None}]
    assert smallmodel.copy_sources(messages) == ["Weather in Oslo?", '{"t": 3}']


def test_copy_sources_are_the_request_and_the_latest_results_however_long_the_conversation():
    results = [{"role": "user", "content": f"Result of add: {n}"} for n in range(50)]
    sources = smallmodel.copy_sources([{"role": "user", "content": "Add numbers"}, *results], recent=3)
    assert sources == ["Add numbers", "Result of add: 47", "Result of add: 48", "Result of add: 49"]


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab \"'\\.,?!{}:0123456789")), max_size=40))
def test_no_span_breaks_the_grammar_converter(text):
    for span in smallmodel.spans([text]):
        assert span and span == span.strip()
        assert '"' not in span and "\\" not in span


def test_the_schema_compiles_to_a_well_formed_llama_cpp_grammar():
    gbnf_module = pytest.importorskip("llama_cpp.llama_grammar")
    request = "Translate 'Good morning, it's 9.30' into German and store {\"id\": \"x-1\", \"n\": 2}"
    gbnf = gbnf_module.json_schema_to_gbnf(json.dumps(smallmodel.call_schema(TOOLS, [request])))
    assert "copied-text ::=" in gbnf
    for line in gbnf.splitlines():
        rest = re.sub(r'"(?:[^"\\]|\\.)*"', "", line)  # drop well-formed literals: no quote may remain
        assert '"' not in rest, line


def _inline(schema):
    """The schema with its local $refs replaced (the core's validator does not follow $ref)."""
    definitions = schema.get("$defs", {})

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return walk(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {k: walk(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)
