"""The constrained grammar: normalised values next to copied words, the answer without a tool, and the tool
schema's own constraints (lmstudio_agent.model.smallmodel)."""

from __future__ import annotations

import json
from typing import Literal

import pytest

from lmstudio_agent.model import grammar_bounds, smallmodel
from lmstudio_agent.agent.loop import TERMINATE
from lmstudio_agent.builtins import builtin_registry
from lmstudio_agent.model.client import ChatResponse, Usage
from lmstudio_agent.model.modes import ConstrainedStrategy
from lmstudio_agent.model.policy import SmallModelPolicy
from lmstudio_agent.agent.rounds import RoundContext
from lmstudio_agent.model.schema import validate
from lmstudio_agent.agent.tools import Tool, tool_from_function


def _tool(name: str, properties: dict, required: list[str] | None = None, description: str = "A tool.") -> Tool:
    return Tool(name=name, description=description, function=lambda **_: None, parameters={
        "type": "object", "properties": properties,
        "required": list(properties) if required is None else required})


def args_of(tool: Tool, request: str) -> dict:
    """The argument schema the grammar allows for ``tool`` given ``request``, with the span list inlined."""
    schema = smallmodel.call_schema([tool], [request], answer=False)
    spans = schema.get("$defs", {}).get("copied_text", {}).get("enum", [])

    def walk(node):
        if isinstance(node, dict):
            if node.get("$ref") == "#/$defs/copied_text":
                return {"type": "string", "enum": spans}
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema["properties"]["arguments"])


def allows(tool: Tool, request: str, arguments: dict) -> bool:
    return not validate(arguments, args_of(tool, request))


# ---------------------------------------------------------------------------------------------- values

BMI = _tool("calculate_bmi", {"weight_kg": {"type": "number"}, "height_m": {"type": "number"}})
INTEREST = _tool("compound_interest", {
    "principal": {"type": "number"}, "rate": {"type": "number", "description": "Annual rate as a decimal fraction."},
    "years": {"type": "integer"}})
TIP = _tool("split_bill", {"total": {"type": "number"}, "people": {"type": "integer"},
                           "tip_percent": {"type": "number", "description": "Tip as a percentage, e.g. 15."}})
BOOK = _tool("book_table", {"restaurant": {"type": "string"}, "date": {"type": "string", "format": "date"},
                            "time": {"type": "string", "format": "time"}})
TAX = _tool("sales_tax", {"state": {"type": "string", "pattern": "^[A-Z]{2}$"}, "amount": {"type": "number"}})
FX = _tool("exchange_rate", {"base": {"type": "string", "pattern": "^[A-Z]{3}$"},
                             "target": {"type": "string", "pattern": "^[A-Z]{3}$"}})
FOOD = _tool("order_food", {"dish": {"type": "string"}, "quantity": {"type": "integer", "default": 1}}, ["dish"])
CITY = _tool("city_population", {"city": {"type": "string"}})


def test_numbers_glued_to_units_and_signs_can_be_written():
    assert allows(BMI, "I weigh 70kg and I'm 1.75m tall", {"weight_kg": 70, "height_m": 1.75})
    assert allows(TAX, "Sales tax on $25 in California", {"state": "CA", "amount": 25})


def test_thousands_separators_give_the_whole_number_not_its_parts():
    allowed = args_of(INTEREST, "Grow 2,000,000 for 20 years at 3%")["properties"]["principal"]["enum"]
    assert 2000000 in allowed and 0 not in allowed


def test_a_percentage_is_a_fraction_or_a_percent_as_the_argument_says():
    rate = args_of(INTEREST, "Invest $10,000 at 8% for 5 years")["properties"]["rate"]["enum"]
    assert 0.08 in rate and 8 not in rate  # "as a decimal fraction"
    tip = args_of(TIP, "Split $120 between 4 people with an 18% tip")["properties"]["tip_percent"]["enum"]
    assert 18 in tip and 0.18 not in tip  # "as a percentage"


def test_number_words_and_implied_values():
    assert allows(FOOD, "Order three portions of pasta carbonara", {"dish": "pasta carbonara", "quantity": 3})
    assert allows(FOOD, "A dozen chicken wings please", {"dish": "chicken wings", "quantity": 12})
    velocity = _tool("final_velocity", {"initial_velocity": {"type": "number"}, "time": {"type": "number"}})
    assert allows(velocity, "A car starts from rest; after 10 seconds?", {"initial_velocity": 0, "time": 10})


def test_dates_and_times_in_the_schemas_format():
    request = "Book Chez Panisse on August 16, 2022 at 7:30 pm"
    allowed = args_of(BOOK, request)["properties"]
    assert allowed["date"] == {"type": "string", "enum": ["2022-08-16"]}
    assert allowed["time"] == {"type": "string", "enum": ["19:30:00"]}
    assert allows(BOOK, request, {"restaurant": "Chez Panisse", "date": "2022-08-16", "time": "19:30:00"})
    # nothing to copy: the format is left to the grammar (llama.cpp writes a valid date)
    assert args_of(BOOK, "Book Chez Panisse")["properties"]["date"]["format"] == "date"


def test_codes_for_names_pass_the_schemas_pattern():
    assert args_of(TAX, "Sales tax on $25 in California")["properties"]["state"] == {"type": "string", "enum": ["CA"]}
    assert allows(FX, "Rate from US dollars to euros", {"base": "USD", "target": "EUR"})
    assert not allows(FX, "Rate from US dollars to euros", {"base": "US dollars", "target": "EUR"})


def test_enum_values_are_found_by_name_code_unit_or_inflection():
    def convert(value: float, from_unit: Literal["kg", "lb"], to_unit: Literal["kg", "lb"]) -> None:
        """Convert a mass."""

    def adopt(species: Literal["dog", "cat", "rabbit"]) -> None:
        """Find a pet."""

    units = args_of(tool_from_function(convert), "How many pounds is 70kg?")["properties"]
    assert units["from_unit"]["enum"] == ["kg", "lb"] and units["value"]["enum"] == [70]
    assert args_of(tool_from_function(adopt), "Show me cats for adoption")["properties"]["species"]["enum"] == ["cat"]


def test_whole_names_and_quotations_are_spans_their_pieces_are_not():
    spans = smallmodel.spans(["Find a hotel in Buenos Aires, then book Rio de Janeiro"])
    assert {"Buenos Aires", "Rio de Janeiro"} <= set(spans)
    assert not {"Buenos", "Aires", "Rio", "Janeiro", "Rio de"} & set(spans)
    quoted = smallmodel.spans(["Save a note that says 'milk, eggs and bread' now"])
    assert "milk, eggs and bread" in quoted and "eggs and bread" not in quoted and "milk" not in quoted
    # no value ends with an article or preposition, none starts with a preposition
    assert not [s for s in smallmodel.spans(["Remind me to water the plants at 12:15"])
                if s.split()[-1] in ("the", "at", "to") or s.split()[0] in ("at", "to")]
    assert allows(CITY, "How many people live in Rio de Janeiro?", {"city": "Rio de Janeiro"})
    assert not allows(CITY, "How many people live in Rio de Janeiro?", {"city": "Rio"})


def test_free_values_switches():
    def arguments(tool, request, policy):
        schema = smallmodel.call_schema([tool], [request], answer=False, policy=policy)
        return schema["properties"]["arguments"]["properties"]
    free_numbers = SmallModelPolicy(copy_numbers=False)
    assert arguments(BMI, "I weigh 70kg", free_numbers)["weight_kg"] == {"type": "number"}
    assert arguments(BMI, "I weigh 70kg", SmallModelPolicy())["weight_kg"] == {"type": "number", "enum": [70]}
    free_strings = SmallModelPolicy(copy_strings=False)
    assert arguments(CITY, "Population of Oslo", free_strings)["city"]["type"] == "string"
    assert "enum" not in arguments(CITY, "Population of Oslo", free_strings)["city"]


# ---------------------------------------------------------------------------------------------- constraints


def test_string_constraints_filter_the_copied_words():
    code = _tool("track", {"number": {"type": "string", "minLength": 10, "maxLength": 20}})
    allowed = args_of(code, "Where is parcel 1Z999AA10123456784 sent on Monday")["properties"]["number"]["enum"]
    assert "1Z999AA10123456784" in allowed and all(10 <= len(s) <= 20 for s in allowed)


def test_an_unanchored_pattern_with_nothing_to_copy_is_left_to_validation():
    tool = _tool("lookup", {"sku": {"type": "string", "pattern": "[0-9]{6}"}})
    assert "pattern" not in args_of(tool, "Look up the blue chair")["properties"]["sku"]


def test_arrays_copy_their_items_and_keep_their_bounds():
    tool = _tool("recipes", {"ingredients": {"type": "array", "items": {"type": "string"}, "minItems": 1}})
    allowed = args_of(tool, "Recipes with chicken, rice and broccoli")["properties"]["ingredients"]
    assert allowed["minItems"] == 1 and allowed["maxItems"] == grammar_bounds.DEFAULT_MAX_ITEMS
    assert {"chicken", "rice", "broccoli"} <= set(allowed["items"]["enum"])


def test_nested_objects_are_closed_and_copied():
    tool = _tool("ship", {"address": {"type": "object", "properties": {"city": {"type": "string"},
                                                                      "zip": {"type": "string"}},
                                      "required": ["city"]}})
    address = args_of(tool, "Ship it to Lisbon 1000-001")["properties"]["address"]
    assert address["additionalProperties"] is False and address["required"] == ["city"]
    assert "Lisbon" in address["properties"]["city"]["enum"]


def test_extract_data_cannot_be_called_with_an_empty_schema():
    extract = builtin_registry().get("extract_data")
    assert extract.parameters["properties"]["schema"]["minProperties"] == 1
    request = "Extract the name and age from: John Smith is 42 years old"
    allowed = args_of(extract, request)
    assert validate({"text": "John Smith is 42 years old", "schema": {}}, allowed)
    assert not validate({"text": "John Smith is 42 years old", "schema": {"name": "string", "age": "number"}}, allowed)


def test_the_schema_compiles_with_llama_cpp_including_the_answer():
    gbnf_module = pytest.importorskip("llama_cpp.llama_grammar")
    tools = [BMI, INTEREST, TIP, BOOK, TAX, FX, FOOD, CITY, builtin_registry().get("extract_data"), TERMINATE]
    request = "Book 'Chez Panisse' on August 16, 2022 at 7pm for three; 8% of $2,000 in California; extract name"
    for schema in (smallmodel.call_schema(tools, [request]), smallmodel.call_schema([])):
        assert "root ::=" in gbnf_module.json_schema_to_gbnf(json.dumps(schema))


# ---------------------------------------------------------------------------------------------- the answer


def _response(content: str) -> ChatResponse:
    return ChatResponse(content, [], "stop", Usage(), None, 0.1, {})


def test_the_grammar_has_an_answer_branch_and_the_reader_returns_no_call():
    schema = smallmodel.call_schema([BMI, TERMINATE], ["Write a haiku"])
    assert schema["anyOf"][-1] == smallmodel.answer_schema()
    text = smallmodel.format_answer("I cannot write poems with these tools.")
    assert json.loads(text) == {"type": "answer", "answer": "I cannot write poems with these tools."}
    assert not validate(json.loads(text), schema["anyOf"][-1])
    turn = ConstrainedStrategy().read(_response(text), [BMI, TERMINATE])
    assert turn.calls == [] and turn.errors == [] and turn.text == "I cannot write poems with these tools."


def test_the_last_round_offers_only_the_answer_in_words():
    strategy = ConstrainedStrategy()
    request = strategy.request([], [{"role": "user", "content": "Weather in Oslo?"}])
    assert request["response_format"]["json_schema"]["schema"] == smallmodel.answer_schema()
    assert smallmodel.format_answer("...") in strategy.system_prompt([])
    # what comes back is words, never a serialized call
    turn = strategy.read(_response(smallmodel.format_answer("It is sunny in Oslo.")), [])
    assert turn.text == "It is sunny in Oslo." and not turn.calls


def test_a_call_is_still_read_as_a_call():
    turn = ConstrainedStrategy().read(_response(smallmodel.format_call(BMI, {"weight_kg": 70, "height_m": 1.75})),
                                      [BMI, TERMINATE])
    assert [(c.name, c.arguments) for c in turn.calls] == [("calculate_bmi", {"weight_kg": 70, "height_m": 1.75})]


def test_first_messages_are_what_the_first_turn_sends():
    from lmstudio_agent.agent.loop import Agent
    from lmstudio_agent.model.client import ChatClient

    agent = Agent(client=ChatClient("http://127.0.0.1:9/v1"), tools=[BMI], mode="constrained")
    system, user = agent.first_messages("What is my BMI?")
    assert user == {"role": "user", "content": "What is my BMI?"}
    assert smallmodel.describe_tools([BMI]) in system["content"]
    assert smallmodel.format_answer("...") in system["content"]


def test_a_long_conversation_keeps_the_schema_inside_the_grammar_bounds():
    """The spans of many long results would make an enum no server accepts (gateway-model refuses what
    schema_problem names): the spans get shorter, then strings go free, and the schema always fits."""
    from lmstudio_agent.model.grammar_bounds import MAX_ENUM_VALUES, schema_problem
    from lmstudio_agent.model.smallmodel import call_schema

    def note(text: str, title: str) -> str:
        """Write a note."""
        return text

    tool = tool_from_function(note)
    prose = " ".join(f"Word{i} lives in City{i} near River{i} and owns {i} boats" for i in range(60))
    sources = ["Write a note about the rivers"] + [prose] * 3
    schema = call_schema([tool], sources)
    assert schema_problem(schema) is None
    enum = schema.get("$defs", {}).get("copied_text", {}).get("enum", [])
    assert len(enum) <= MAX_ENUM_VALUES


def test_the_agents_own_notes_are_never_copied_from():
    from lmstudio_agent.model.smallmodel import agent_note, copy_sources

    messages = [{"role": "user", "content": "Weather in Oslo"},
                agent_note("Your reply could not be read as a tool call or an answer."),
                {"role": "user", "content": "Result of get_weather: 21 degrees"}]
    assert copy_sources(messages) == ["Weather in Oslo", "Result of get_weather: 21 degrees"]


def test_the_first_round_offers_the_answer_only_for_a_request_no_tool_speaks_of():
    strategy = ConstrainedStrategy()
    tools = [BMI, FOOD, TERMINATE]
    def branches(request, history=(), succeeded=()):
        context = RoundContext.start(request, tools)
        if history:
            context = RoundContext(request=request, plan=context.plan, succeeded=succeeded, first=False,
                                   results=tuple((name, "ok") for name in succeeded), just_succeeded=bool(succeeded))
        schema = strategy.request(tools, [{"role": "user", "content": request}, *history], context)[
            "response_format"]["json_schema"]["schema"]
        return [v["properties"].get("tool", v["properties"]["type"])["const"] for v in schema.get("anyOf", [schema])]
    assert smallmodel.related("Order three pizzas", tools) and not smallmodel.related("Write a haiku", tools)
    assert smallmodel.related("Compute the BMI for 70kg", tools)
    assert branches("Order three pizzas") == ["order_food"]  # routed: only the tool the request names
    # no tool named: every tool the request can fill, and the answer (calculate_bmi needs numbers, none written)
    assert branches("Write a haiku about rain") == ["order_food", "answer"]
    assert branches("Write a haiku about 2 cats and 3 dogs") == ["calculate_bmi", "order_food", "answer"]
    # after a tool result the model may always finish in words; a tool that succeeded is not offered again, nor
    # one the request did not name
    history = [{"role": "assistant", "content": "{}"}, {"role": "user", "content": "Result of order_food: ok"}]
    assert branches("Order three pizzas", history, ("order_food",)) == ["answer"]
    strategy = ConstrainedStrategy(SmallModelPolicy(answer_first_round="always"))  # a model trained to hold back
    assert branches("Order three pizzas") == ["order_food", "answer"]


def test_an_argument_in_a_unit_takes_the_numbers_written_with_that_unit():
    bmi = _tool("calculate_bmi", {"weight_kg": {"type": "number", "description": "Weight in kilograms."},
                                  "height_m": {"type": "number", "description": "Height in meters."}})
    allowed = args_of(bmi, "I am 1.82 m tall and weigh 95 kg")["properties"]
    assert allowed["weight_kg"]["enum"] == [95] and allowed["height_m"]["enum"] == [1.82]
    rent = _tool("estimate_rent", {"bedrooms": {"type": "integer"}, "square_meters": {"type": "number"}})
    assert args_of(rent, "a 2 bedroom, 75 m² flat")["properties"]["square_meters"]["enum"] == [75]
    # a compound unit is not its first part; "acceleration" is no "ratio"
    motion = _tool("final_velocity", {"acceleration": {"type": "number", "description": "Acceleration in m/s^2."},
                                      "time": {"type": "number", "description": "Time in seconds."}})
    allowed = args_of(motion, "accelerates at 3 m/s^2 for 10 seconds")["properties"]
    assert 3 in allowed["acceleration"]["enum"] and allowed["time"]["enum"] == [10]


def test_percent_and_fraction_arguments_take_the_percentages_written():
    allowed = args_of(TIP, "Split $120 between four people with an 18% tip")["properties"]
    assert allowed["tip_percent"]["enum"] == [18] and 4 in allowed["people"]["enum"]
    loan = _tool("loan", {"principal": {"type": "number"},
                          "annual_rate": {"type": "number", "description": "Annual interest rate as a fraction."},
                          "years": {"type": "integer"}})
    allowed = args_of(loan, "A $250,000 mortgage at 6.5% over thirty years")["properties"]
    assert allowed["annual_rate"]["enum"] == [0.065] and 30 in allowed["years"]["enum"]


def test_numbers_inside_a_date_are_not_counts():
    allowed = args_of(BOOK_FOR, "Book a table for 4 at Chez Panisse on August 16, 2022")["properties"]
    assert allowed["party_size"]["enum"] == [4]


BOOK_FOR = _tool("book_restaurant", {"restaurant": {"type": "string"}, "party_size": {"type": "integer"},
                                     "date": {"type": "string", "format": "date"}})


def test_a_plain_amount_takes_neither_percentages_nor_numbers_with_units():
    allowed = args_of(INTEREST, "Grow 2,000,000 at an annual rate of 3.5 percent over twenty years")["properties"]
    assert allowed["principal"]["enum"] == [2000000] and allowed["rate"]["enum"] == [0.035]
    temperature = _tool("convert", {"value": {"type": "number"}})
    assert args_of(temperature, "Convert 100 degrees Fahrenheit")["properties"]["value"]["enum"] == [100]


def test_a_from_to_pair_follows_the_words_to_and_in():
    def convert(value: float, from_scale: Literal["celsius", "fahrenheit", "kelvin"],
                to_scale: Literal["celsius", "fahrenheit", "kelvin"]) -> None:
        """Convert a temperature."""

    tool = tool_from_function(convert)
    allowed = args_of(tool, "Convert 100 degrees Fahrenheit to Celsius")["properties"]
    assert allowed["from_scale"]["enum"] == ["fahrenheit"] and allowed["to_scale"]["enum"] == ["celsius"]
    allowed = args_of(tool, "What is 300 kelvin in celsius?")["properties"]
    assert allowed["from_scale"]["enum"] == ["kelvin"] and allowed["to_scale"]["enum"] == ["celsius"]
    unclear = args_of(tool, "celsius or kelvin for 300?")["properties"]  # the text does not say: both stay open
    assert unclear["from_scale"]["enum"] == ["celsius", "kelvin"] == unclear["to_scale"]["enum"]


def test_an_optional_number_the_request_writes_is_not_left_out():
    assert args_of(FOOD, "Order three portions of pasta carbonara")["required"] == ["dish", "quantity"]
    assert args_of(FOOD, "Get me a margherita pizza")["required"] == ["dish"]  # nothing written: the default
    hotel = _tool("search_hotels", {"city": {"type": "string"}, "nights": {"type": "integer"},
                                    "guests": {"type": "integer", "default": 2}}, ["city", "nights"])
    assert args_of(hotel, "Hotels in Oslo, 2 nights, 4 guests")["required"] == ["city", "nights", "guests"]
    assert "guests" not in args_of(hotel, "Hotels in Oslo for three nights")["properties"]


def test_a_tool_is_never_offered_its_own_result_as_input():
    """store_invoice just answered {"status": "success", ...}: that object is no invoice to store again; the
    extracted invoice still is."""
    from lmstudio_agent.builtins import builtin_registry

    tools = list(builtin_registry().select(tags=["invoices"]))
    invoice = {"invoice_number": "RE-1", "date": "2023-11-07"}
    sources = ["Process the invoice", smallmodel.format_result("extract_invoice_data", json.dumps(invoice)),
               smallmodel.format_result("store_invoice", '{"status": "success", "invoice_number": "RE-1"}')]
    # the loop says which tool each result came from (RoundContext.results): nothing is parsed back from text
    results = [("extract_invoice_data", json.dumps(invoice)),
               ("store_invoice", '{"status": "success", "invoice_number": "RE-1"}')]
    schema = smallmodel.call_schema(tools, sources, results=results)
    (store,) = [v for v in schema["anyOf"] if v["properties"].get("tool", {}).get("const") == "store_invoice"]
    assert store["properties"]["arguments"]["properties"]["invoice_data"] == {"enum": [invoice]}


def test_patterns_are_written_as_llama_cpp_can_compile_them():
    """llama.cpp's converter copies a pattern's escapes into GBNF literals, which know only \\n \\r \\t \\\\ \\":
    a \\d there made LM Studio and gateway-model fail (gateway-model went down with it)."""
    from lmstudio_agent.model.grammar_bounds import gbnf_pattern
    from lmstudio_agent.model.smallmodel.copying import _grammar_safe

    assert gbnf_pattern(r"^\d{4}-\d{2}-\d{2}$") == "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
    assert gbnf_pattern(r"^\w+\.\w+$") == "^[A-Za-z0-9_]+[.][A-Za-z0-9_]+$"
    assert gbnf_pattern(r"\bword") is None
    assert _grammar_safe({"type": "string", "pattern": r"^\d+$"}) == {"type": "string", "pattern": "^[0-9]+$"}
    assert _grammar_safe({"type": "string", "pattern": r"^\bx$"}) == {"type": "string"}  # left to validation
