"""The scoring rule: numbers as numbers, trimmed strings, defaults for omitted optional arguments, extras fail."""

from __future__ import annotations

import enum

from hypothesis import given
from hypothesis import strategies as st

from lmstudio_eval.scoring import compare_arguments, score_call, to_plain, values_equal, with_defaults
from lmstudio_eval.suite_tools import suite_registry

REGISTRY = suite_registry()
WEATHER = REGISTRY.get("get_weather").parameters
TIMER = REGISTRY.get("set_timer").parameters


def test_numbers_compare_as_numbers_not_as_text():
    assert values_equal(250, 250.0)
    assert values_equal(0.1 + 0.2, 0.3)
    assert not values_equal(250, "250")
    assert not values_equal(1, True)  # a boolean is not a number
    assert not values_equal(250, 251)


def test_strings_compare_exactly_after_trimming():
    assert values_equal("Paris", "  Paris\n")
    assert not values_equal("Paris", "paris")
    assert not values_equal("Paris", "Paris, France")


def test_nested_values_follow_the_same_rules():
    assert values_equal({"total": 10, "id": " A-1"}, {"id": "A-1", "total": 10.0})
    assert not values_equal({"total": 10}, {"total": 10, "extra": 1})
    assert values_equal([1, "a "], [1.0, "a"])
    assert not values_equal([1, 2], [2, 1])
    assert values_equal(None, None) and not values_equal(None, "")


def test_an_omitted_optional_argument_equals_its_default():
    assert with_defaults({"city": "Oslo"}, WEATHER) == {"city": "Oslo", "unit": "celsius"}
    assert compare_arguments({"city": "Oslo"}, {"city": "Oslo", "unit": "celsius"}, WEATHER) == ""
    assert compare_arguments({"city": "Oslo", "unit": "celsius"}, {"city": "Oslo"}, WEATHER) == ""
    # a None default too: label omitted == label null
    assert compare_arguments({"minutes": 5}, {"minutes": 5, "label": None}, TIMER) == ""


def test_a_non_default_optional_value_or_an_unknown_argument_fails():
    assert "unit" in compare_arguments({"city": "Oslo"}, {"city": "Oslo", "unit": "fahrenheit"}, WEATHER)
    assert compare_arguments({"city": "Oslo"}, {"city": "Oslo", "country": "NO"}, WEATHER) == "extra argument 'country'"
    assert compare_arguments({"city": "Oslo"}, {}, WEATHER) == "missing argument 'city'"


def test_score_call_separates_name_from_exact():
    ok = score_call("get_weather", {"city": "Oslo"}, "get_weather", {"city": "Oslo "}, WEATHER)
    assert ok.name_ok and ok.exact and ok.reason == ""
    wrong_args = score_call("get_weather", {"city": "Oslo"}, "get_weather", {"city": "Bergen"}, WEATHER)
    assert wrong_args.name_ok and not wrong_args.exact and "Bergen" in wrong_args.reason
    wrong_tool = score_call("get_weather", {"city": "Oslo"}, "terminate", {"message": "Oslo"}, WEATHER)
    assert not wrong_tool.name_ok and not wrong_tool.exact and "terminate" in wrong_tool.reason
    invalid = score_call("get_weather", {"city": "Oslo"}, "get_weather", None, WEATHER, "city: missing")
    assert invalid.name_ok and not invalid.exact and invalid.reason == "city: missing"
    nothing = score_call("get_weather", {"city": "Oslo"}, None, None, WEATHER)
    assert not nothing.name_ok and nothing.reason == "no tool call"


def test_validated_arguments_become_plain_values():
    class Colour(enum.Enum):
        RED = "red"

    assert to_plain({"c": Colour.RED, "xs": (1, Colour.RED)}) == {"c": "red", "xs": [1, "red"]}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(json_values)
def test_every_value_equals_itself(value):
    assert values_equal(value, value)


@given(st.dictionaries(st.sampled_from(["city", "unit", "other"]), json_values, max_size=3),
       st.dictionaries(st.sampled_from(["city", "unit", "other"]), json_values, max_size=3))
def test_comparison_is_symmetric(left, right):
    assert (compare_arguments(left, right, WEATHER) == "") == (compare_arguments(right, left, WEATHER) == "")
