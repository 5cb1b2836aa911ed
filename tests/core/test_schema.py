"""lmstudio_agent.model.schema: self-contained compact schemas, and the small validator."""

from __future__ import annotations

from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from lmstudio_agent.model.schema import inline_refs, json_type_name, validate


class Vendor(BaseModel):
    name: str
    address: str = ""


class LineItem(BaseModel):
    description: str
    quantity: float


class Invoice(BaseModel):
    title: str = Field(description="the invoice's title line")
    vendor: Vendor
    backup_vendor: Optional[Vendor] = None
    line_items: list[LineItem] = []


class TreeNode(BaseModel):
    value: int
    children: list[TreeNode] = []


INVOICE_SCHEMA = {
    "type": "object",
    "required": ["invoice_number", "date", "total_amount"],
    "properties": {
        "invoice_number": {"type": "string"},
        "date": {"type": "string"},
        "total_amount": {"type": "number"},
        "vendor": {"type": "object", "properties": {"name": {"type": "string"}, "address": {"type": "string"}}},
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "quantity": {"type": "number"},
                    "unit_price": {"type": "number"},
                    "total": {"type": "number"},
                },
            },
        },
    },
}


# ---------------------------------------------------------------------------------------------- inline_refs


def test_inline_refs_resolves_nested_models_and_drops_defs_and_titles():
    schema = inline_refs(Invoice.model_json_schema())
    vendor = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "address": {"type": "string", "default": ""}},
        "required": ["name"],
    }
    assert schema == {
        "type": "object",
        "properties": {
            # A property called "title" survives; pydantic's "title" keywords do not.
            "title": {"type": "string", "description": "the invoice's title line"},
            "vendor": vendor,
            "backup_vendor": {"anyOf": [vendor, {"type": "null"}], "default": None},
            "line_items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"description": {"type": "string"}, "quantity": {"type": "number"}},
                    "required": ["description", "quantity"],
                },
                "default": [],
            },
        },
        "required": ["title", "vendor"],
    }
    assert "$defs" not in repr(schema) and "$ref" not in repr(schema)


def test_inline_refs_keeps_title_inside_data_keywords():
    schema = {
        "title": "Thing",
        "type": "object",
        "properties": {"title": {"title": "Title", "type": "string", "default": {"title": "kept"}}},
        "examples": [{"title": "also kept"}],
    }
    assert inline_refs(schema) == {
        "type": "object",
        "properties": {"title": {"type": "string", "default": {"title": "kept"}}},
        "examples": [{"title": "also kept"}],
    }


def test_inline_refs_description_beside_ref_wins():
    schema = {
        "$defs": {"V": {"type": "string", "description": "generic"}},
        "type": "object",
        "properties": {"v": {"$ref": "#/$defs/V", "description": "specific"}},
    }
    assert inline_refs(schema)["properties"]["v"] == {"type": "string", "description": "specific"}


def test_inline_refs_puts_type_first_for_readability():
    schema = inline_refs({"required": ["a"], "properties": {"a": {"type": "integer"}}, "type": "object"})
    assert list(schema) == ["type", "properties", "required"]


def test_inline_refs_rejects_recursive_model():
    with pytest.raises(ValueError, match="recursive"):
        inline_refs(TreeNode.model_json_schema())


def test_inline_refs_rejects_unresolvable_ref():
    with pytest.raises(ValueError, match="cannot resolve"):
        inline_refs({"type": "object", "properties": {"a": {"$ref": "https://example.com/schema.json"}}})


def test_inline_refs_does_not_mutate_input():
    original = Invoice.model_json_schema()
    snapshot = repr(original)
    inline_refs(original)
    assert repr(original) == snapshot


def test_inline_refs_shared_definition_used_twice_is_not_recursion():
    class Pair(BaseModel):
        left: Vendor
        right: Vendor

    schema = inline_refs(Pair.model_json_schema())
    assert schema["properties"]["left"] == schema["properties"]["right"]
    assert schema["properties"]["left"]["properties"]["name"] == {"type": "string"}


# ---------------------------------------------------------------------------------------------- validate


def test_valid_invoice_has_no_errors():
    invoice = {
        "invoice_number": "INV-1",
        "date": "2024-01-02",
        "total_amount": 12,
        "vendor": {"name": "ACME"},
        "line_items": [{"description": "bolt", "quantity": 2, "unit_price": 1.5, "total": 3.0}],
    }
    assert validate(invoice, INVOICE_SCHEMA) == []


def test_error_paths_point_at_the_bad_value():
    invoice = {
        "invoice_number": 7,
        "date": "d",
        "line_items": [{"quantity": 1}, {"quantity": "two"}],
    }
    assert validate(invoice, INVOICE_SCHEMA) == [
        "$.total_amount: required property is missing",
        "$.invoice_number: expected string, got integer",
        "$.line_items[1].quantity: expected number, got string",
    ]


@pytest.mark.parametrize(
    ("value", "type_name", "ok"),
    [
        ("x", "string", True),
        (1, "string", False),
        (3, "integer", True),
        (3.0, "integer", True),  # JSON does not tell 3 from 3.0
        (3.5, "integer", False),
        (True, "integer", False),  # booleans are not integers
        (False, "number", False),
        (2.5, "number", True),
        (2, "number", True),
        (True, "boolean", True),
        (0, "boolean", False),
        ([1], "array", True),
        ({}, "array", False),
        ({}, "object", True),
        ([], "object", False),
        (None, "null", True),
        ("", "null", False),
    ],
)
def test_types(value, type_name, ok):
    assert (validate(value, {"type": type_name}) == []) is ok


def test_type_lists():
    schema = {"type": ["string", "null"]}
    assert validate(None, schema) == []
    assert validate("a", schema) == []
    assert validate(1, schema) == ["$: expected string or null, got integer"]


def test_enum_and_const_respect_json_types():
    assert validate("red", {"enum": ["red", "blue"]}) == []
    assert validate("green", {"enum": ["red", "blue"]}) == ["$: 'green' is not one of: 'red', 'blue'"]
    assert validate(True, {"enum": [1, 2]}) != []  # True is not 1 in JSON
    assert validate(1.0, {"enum": [1, 2]}) == []
    assert validate("x", {"const": "x"}) == []
    assert validate("y", {"const": "x"}) == ["$: must be 'x', got 'y'"]


def test_additional_properties_false_and_schema():
    closed = {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}
    assert validate({"a": "x"}, closed) == []
    assert validate({"a": "x", "b": 1}, closed) == ["$: unexpected property 'b' (allowed: a)"]
    typed = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert validate({"x": 1, "y": 2}, typed) == []
    assert validate({"x": 1, "y": "2"}, typed) == ["$.y: expected integer, got string"]


def test_any_of_and_one_of():
    nullable = {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert validate(None, nullable) == []
    assert validate("a", nullable) == []
    errors = validate(3, nullable)
    assert len(errors) == 1 and errors[0].startswith("$: matches none of the allowed forms")
    assert "expected string, got integer" in errors[0]
    one = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    assert validate(2.5, one) == []
    assert validate(2, one) == ["$: matches 2 of the oneOf forms, exactly one is allowed"]


def test_numeric_string_and_array_bounds():
    assert validate(5, {"type": "integer", "minimum": 1, "maximum": 10}) == []
    assert validate(0, {"type": "integer", "minimum": 1}) == ["$: must be at least 1, got 0"]
    assert validate(11, {"type": "integer", "maximum": 10}) == ["$: must be at most 10, got 11"]
    assert validate("ab", {"type": "string", "minLength": 3}) == ["$: must be at least 3 characters, got 2"]
    assert validate("abcd", {"type": "string", "maxLength": 3}) == ["$: must be at most 3 characters, got 4"]
    assert validate([], {"type": "array", "minItems": 1}) == ["$: must have at least 1 items, got 0"]
    assert validate([1, 2, 3], {"type": "array", "maxItems": 2}) == ["$: must have at most 2 items, got 3"]


def test_default_is_ignored_and_boolean_schemas():
    assert validate("anything", {"type": "string", "default": 5}) == []
    assert validate({"a": 1}, True) == []
    assert validate({"a": 1}, False) == ["$: no value is allowed here"]


def test_unusual_property_names_are_quoted_in_paths():
    schema = {"type": "object", "properties": {"first name": {"type": "string"}}}
    assert validate({"first name": 1}, schema) == ["$['first name']: expected string, got integer"]


def test_local_refs_are_followed():
    schema = {
        "$defs": {"Item": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
        "type": "array",
        "items": {"$ref": "#/$defs/Item"},
    }
    assert validate([{"n": 1}, {}], schema) == ["$[1].n: required property is missing"]


def test_validates_pydantic_schema_after_inlining():
    schema = inline_refs(Invoice.model_json_schema())
    good = Invoice(title="t", vendor=Vendor(name="v")).model_dump()
    assert validate(good, schema) == []
    assert validate({"title": "t", "vendor": {"name": 3}}, schema) == ["$.vendor.name: expected string, got integer"]


def test_json_type_name():
    assert [json_type_name(v) for v in (None, True, 1, 1.5, "s", [], {})] == [
        "null", "boolean", "integer", "number", "string", "array", "object",
    ]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
)


@given(json_values)
def test_validate_never_raises_and_empty_schema_accepts_everything(value):
    assert validate(value, {}) == []
    assert isinstance(validate(value, INVOICE_SCHEMA), list)
