"""Routing: which offered tools a request's current step names (lmstudio_agent.model.smallmodel.routing), how the constrained
grammar uses it, and the value rules that go with it (ordinal references, switches nobody mentioned)."""

from __future__ import annotations

from lmstudio_agent.model import smallmodel
from lmstudio_agent.model.smallmodel import routing, values
from lmstudio_agent.model.modes import ConstrainedStrategy
from lmstudio_agent.agent.rounds import RoundContext
from lmstudio_agent.agent.tools import Tool


def _tool(name: str, description: str, properties: dict | None = None, required: list[str] | None = None) -> Tool:
    properties = properties or {"id": {"type": "string"}}
    return Tool(name=name, description=description, function=lambda **_: None, parameters={
        "type": "object", "properties": properties, "required": list(properties) if required is None else required})


# Near neighbours on one object: only the verb tells them apart.
GET = _tool("get_parcel_details", "Get the details and status of a parcel by its ID.")
UPDATE = _tool("update_parcel", "Update a parcel delivery.")
CANCEL = _tool("cancel_parcel", "Cancel a parcel delivery.")
SEARCH = _tool("search_parcels", "Search parcels by recipient.", {"recipient": {"type": "string"}})
WEATHER = _tool("get_weather", "Current weather for a city.", {"city": {"type": "string"}})
PARCELS = [GET, UPDATE, CANCEL, SEARCH, WEATHER]


def names(tools: list[Tool]) -> list[str]:
    return [t.name for t in tools]


def test_the_verb_picks_among_tools_on_the_same_object():
    assert names(routing.shortlist(PARCELS, "Please cancel parcel PX-1")) == ["cancel_parcel"]
    assert names(routing.shortlist(PARCELS, "What's the status of parcel PX-1?")) == ["get_parcel_details"]
    # an everyday verb that means the tool's ("change" is "update")
    assert names(routing.shortlist(PARCELS, "Change parcel PX-1 to next Monday")) == ["update_parcel"]
    assert names(routing.shortlist(PARCELS, "Find my parcels for Ana")) == ["search_parcels"]
    assert names(routing.shortlist(PARCELS, "Is it raining in Oslo? Check the weather")) == ["get_weather"]


def test_no_word_in_common_or_no_request_leaves_every_tool_to_the_model():
    assert routing.shortlist(PARCELS, "Sing me a song") == PARCELS
    assert routing.shortlist(PARCELS, None) == PARCELS
    # tools the request's words cannot tell apart stay offered together
    assert names(routing.shortlist(PARCELS, "Parcel PX-1 please")) == [
        "get_parcel_details", "update_parcel", "cancel_parcel", "search_parcels"]


def test_a_request_of_several_steps_is_routed_one_step_per_successful_call():
    request = "Go ahead and search for parcels to Ana, and cancel the first result."
    assert routing.steps(request, routing.leading_verbs(PARCELS)) == [
        "Go ahead", "search for parcels to Ana", "cancel the first result"]
    assert names(routing.shortlist(PARCELS, request)) == ["search_parcels"]
    assert names(routing.shortlist(PARCELS, request, ["search_parcels"])) == ["cancel_parcel"]
    assert routing.steps("Look up the parcel, then update it; after that cancel it") == [
        "Look up the parcel", "update it", "cancel it"]
    # "and" before a word that starts no tool's name does not split: "Ana and Bo" is one recipient
    assert routing.steps("search parcels for Ana and Bo", routing.leading_verbs(PARCELS)) == [
        "search parcels for Ana and Bo"]


def test_once_every_step_is_done_a_tool_that_succeeded_is_not_offered_again():
    assert names(routing.shortlist(PARCELS, "Cancel parcel PX-1", ["cancel_parcel"])) == [
        "get_parcel_details", "update_parcel", "search_parcels", "get_weather"]
    assert routing.shortlist([CANCEL], "Cancel parcel PX-1", ["cancel_parcel"]) == []


def test_the_constrained_grammar_follows_the_route_and_counts_only_successful_calls():
    strategy = ConstrainedStrategy()
    request = {"role": "user", "content": "Find parcels for Ana, then cancel the first one."}
    start = RoundContext.start(request["content"], PARCELS)

    def offered(messages, succeeded=(), just_succeeded=False):
        # the loop hands the strategy what succeeded (RoundContext): nothing is parsed back from the messages
        context = RoundContext(request=start.request, plan=start.plan, succeeded=tuple(succeeded),
                               results=tuple((n, "{}") for n in succeeded), first=len(messages) == 1,
                               just_succeeded=just_succeeded)
        schema = strategy.request(PARCELS, messages, context)["response_format"]["json_schema"]["schema"]
        return [v["properties"].get("tool", v["properties"]["type"])["const"] for v in schema.get("anyOf", [schema])]

    assert offered([request]) == ["search_parcels"]
    failed = [request, {"role": "assistant", "content": "{}"},
              {"role": "user", "content": smallmodel.format_result("search_parcels", "Error: the service is down")}]
    assert offered(failed) == ["search_parcels", "answer"]  # the failed step is tried again, or explained
    done = [request, {"role": "assistant", "content": "{}"},
            {"role": "user", "content": smallmodel.format_result("search_parcels", '{"ids": ["PX-1"]}')}]
    assert offered(done, ["search_parcels"], True) == ["cancel_parcel"]  # the cancel is still to do: no answer yet
    both = done + [{"role": "assistant", "content": "{}"},
                   {"role": "user", "content": smallmodel.format_result("cancel_parcel", '{"ok": true}')}]
    assert offered(both, ["search_parcels", "cancel_parcel"], True) == ["answer"]  # both steps done: the answer
    # the system prompt lists the tools the plan's steps name; with no request, or none named, all of them
    listing = strategy.system_prompt(PARCELS, start)
    assert [t.name for t in PARCELS if f'"{t.name}"' in listing] == ["cancel_parcel", "search_parcels"]
    assert all(f'"{t.name}"' in strategy.system_prompt(PARCELS) for t in PARCELS)
    assert all(f'"{t.name}"' in strategy.system_prompt(PARCELS, RoundContext.start("Sing me a song", PARCELS))
               for t in PARCELS)


def test_an_ordinal_that_points_at_a_result_is_no_number_to_copy():
    assert values.numbers(["Search parcels, then cancel the first one."]) == []
    assert values.numbers(["and show me the second result"]) == []
    assert values.numbers(["the parcel on the fifth floor, for one person"]) == [5, 1]


def test_a_switch_the_request_never_mentions_keeps_its_default():
    lookup = _tool("get_parcel_details", "Get a parcel.", {
        "parcel_id": {"type": "string"}, "include_history": {"type": "boolean", "default": False}}, ["parcel_id"])

    def arguments(request):
        return smallmodel.call_schema([lookup], [request], answer=False)["properties"]["arguments"]

    quiet = arguments("Show parcel PX-1")
    assert "include_history" not in quiet["properties"]
    said = arguments("Show parcel PX-1 with its full history")
    assert said["properties"]["include_history"]["type"] == "boolean" and "include_history" in said["required"]
    assert "include_history" in arguments("Show parcel PX-1 without history")["required"]


def test_an_identifier_takes_the_code_like_words_of_the_request():
    lookup = _tool("cancel_taxi_ride", "Cancel a taxi ride.", {
        "taxi_ride_id": {"type": "string", "description": "Taxi ride ID"}, "reason": {"type": "string"}},
        ["taxi_ride_id"])

    def ids(request):
        schema = smallmodel.call_schema([lookup], [request], answer=False)
        return schema["properties"]["arguments"]["properties"]["taxi_ride_id"]["enum"]

    assert ids("Cancel taxi ride TX-1474 from 12 Baker Street") == ["TX-1474"]
    assert ids("Cancel ride 88231 from 12 Baker Street") == ["88231"]
    assert ids("Cancel ride #88231 at 17:15") == ["88231"]
    # a year, a time or a quantity is no identifier: with nothing else, the tool is not offered
    for request in ("Cancel the ride booked on May 10, 2027", "Cancel the ride at 17:15",
                    "Cancel the ride for 1140000"):
        assert smallmodel.unfilled([lookup], [request]) == ["cancel_taxi_ride"], request
    # no code-like word: the identifier is copied like any string
    schema = smallmodel.call_schema([lookup], ["Cancel the ride called blue"], answer=False)
    assert "blue" in schema["$defs"]["copied_text"]["enum"]


def test_a_tool_whose_required_values_are_not_written_is_not_offered():
    strategy = ConstrainedStrategy()
    bmi = _tool("calculate_bmi", "Body mass index from weight and height.", {
        "weight_kg": {"type": "number"}, "height_m": {"type": "number"}})
    book = _tool("book_table", "Book a restaurant table.", {
        "restaurant": {"type": "string"}, "date": {"type": "string", "format": "date"}})

    def offered(request):
        schema = strategy.request([bmi, book, CANCEL], [{"role": "user", "content": request}])[
            "response_format"]["json_schema"]["schema"]
        return [v["properties"].get("tool", v["properties"]["type"])["const"] for v in schema.get("anyOf", [schema])]

    assert smallmodel.unfilled([bmi, book, CANCEL], ["What is my BMI?"]) == ["calculate_bmi", "book_table", "cancel_parcel"]
    assert offered("What is my BMI?") == ["answer"]  # the model asks for the weight and height
    assert offered("What is my BMI at 70 kg and 1.75 m?") == ["calculate_bmi"]
    assert offered("Book a table at Noma") == ["answer"]  # no date written
    assert offered("Book a table at Noma on 2025-05-04") == ["book_table"]
    assert offered("Cancel my parcel") == ["answer"]  # which one? no identifier written
    assert offered("Cancel parcel PX-1042") == ["cancel_parcel"]


def test_a_date_or_code_is_passed_when_written_and_left_to_its_default_when_not():
    transfer = _tool("send_transfer", "Send money.", {
        "recipient": {"type": "string"}, "currency": {"type": "string", "pattern": "^[A-Z]{3}$", "default": "USD"},
        "on": {"type": "string", "format": "date"}}, ["recipient"])

    def arguments(request):
        return smallmodel.call_schema([transfer], [request], answer=False)["properties"]["arguments"]

    written = arguments("Send Ana 40 in Swiss francs on 2025-03-02")
    assert {"currency", "on"} <= set(written["required"])
    assert written["properties"]["currency"]["enum"] == ["CHF"]
    assert written["properties"]["on"]["enum"] == ["2025-03-02"]
    unwritten = arguments("Send Ana 40")
    assert "on" not in unwritten["properties"]  # no date written: none invented
    assert "currency" not in unwritten.get("required", [])


def test_an_update_carries_at_least_one_change():
    update = _tool("update_parcel", "Update a parcel delivery.", {
        "parcel_id": {"type": "string", "description": "Parcel ID"}, "recipient": {"type": "string"},
        "city": {"type": "string"}}, ["parcel_id"])
    arguments = smallmodel.call_schema([update], ["Change parcel PX-1 to Ana in Oslo"], answer=False)[
        "properties"]["arguments"]
    assert [branch["required"] for branch in arguments["anyOf"]] == [["parcel_id", "recipient"], ["parcel_id", "city"]]
    # a lookup names only what it looks up
    lookup = _tool("get_parcel", "Get a parcel.", {"parcel_id": {"type": "string"}, "full": {"type": "boolean"}},
                   ["parcel_id"])
    assert "anyOf" not in smallmodel.call_schema([lookup], ["Show parcel PX-1"], answer=False)["properties"]["arguments"]
