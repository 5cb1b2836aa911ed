"""lmstudio_agent.agent.tools: schemas from signatures, docstrings, validation, context injection, registries.

This module uses postponed annotations on purpose: tool modules often do, and the schema must still resolve.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Any, Literal, Optional

import pytest
from pydantic import BaseModel

from lmstudio_agent.agent import tools as tools_module
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.model.schema import validate
from lmstudio_agent.agent.tools import (
    ActionContext,
    Tool,
    ToolArgumentError,
    ToolRegistry,
    parse_docstring,
    register_tool,
    tool_from_function,
)


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Priority(int, Enum):
    LOW = 1
    HIGH = 2


class Address(BaseModel):
    street: str
    city: str = "Paris"


class Person(BaseModel):
    name: str
    address: Address
    nicknames: list[str] = []


def params_of(func, **kwargs) -> dict[str, Any]:
    return tool_from_function(func, **kwargs).parameters


def prop(func, name: str) -> dict[str, Any]:
    return params_of(func)["properties"][name]


# ---------------------------------------------------------------------------------------------- schemas


def test_scalar_types_and_required():
    def f(s: str, i: int, x: float, b: bool, d: int = 3):
        """Scalars."""

    assert params_of(f) == {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "i": {"type": "integer"},
            "x": {"type": "number"},
            "b": {"type": "boolean"},
            "d": {"type": "integer", "default": 3},
        },
        "required": ["s", "i", "x", "b"],
        "additionalProperties": False,
    }


def test_containers():
    def f(a: list[int], b: list, c: dict, d: dict[str, float], e: list[dict[str, str]]):
        """Containers."""

    assert prop(f, "a") == {"type": "array", "items": {"type": "integer"}}
    assert prop(f, "b") == {"type": "array", "items": {}}
    assert prop(f, "c") == {"type": "object"}
    assert prop(f, "d") == {"type": "object", "additionalProperties": {"type": "number"}}
    assert prop(f, "e") == {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}}}


def test_optional_is_nullable():
    def f(a: Optional[int] = None, b: str | None = None):
        """Optionals."""

    assert prop(f, "a") == {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None}
    assert prop(f, "b") == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
    assert params_of(f).get("required", []) == []


def test_literal_and_enum_become_enum_values():
    def f(mode: Literal["fast", "slow"], only: Literal["x"], color: Color = Color.BLUE, level: Priority = Priority.LOW):
        """Choices."""

    assert prop(f, "mode") == {"type": "string", "enum": ["fast", "slow"]}
    assert prop(f, "only") == {"type": "string", "const": "x"}
    assert prop(f, "color") == {"type": "string", "enum": ["red", "blue"], "default": "blue"}
    assert prop(f, "level") == {"type": "integer", "enum": [1, 2], "default": 1}


def test_nested_models_are_inlined_without_titles():
    def f(person: Person):
        """Nested."""

    schema = params_of(f)
    assert schema["properties"]["person"] == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "address": {
                "type": "object",
                "properties": {"street": {"type": "string"}, "city": {"type": "string", "default": "Paris"}},
                "required": ["street"],
            },
            "nicknames": {"type": "array", "items": {"type": "string"}, "default": []},
        },
        "required": ["name", "address"],
    }
    assert "$defs" not in repr(schema) and "title" not in repr(schema)


def test_unannotated_parameters_are_strings():
    def f(a, b=None):
        """Untyped."""

    assert params_of(f)["properties"]["a"] == {"type": "string"}
    assert params_of(f)["required"] == ["a"]


def test_no_parameters_gives_empty_object():
    def ping():
        """Ping."""

    assert params_of(ping) == {"type": "object", "properties": {}, "additionalProperties": False}


def test_parameter_names_that_clash_with_pydantic_are_fine():
    def f(json: str, schema: int = 1, model_config: bool = False, _private: str = "p"):
        """Awkward names."""

    schema_ = params_of(f)
    assert list(schema_["properties"]) == ["json", "schema", "model_config", "_private"]
    result = asyncio.run(tool_from_function(f).call({"json": "j", "_private": "q"}, None))
    assert result is None


def test_star_args_and_kwargs_are_rejected():
    def f(*items: str):
        """Var."""

    def g(a: int, **extra: Any):
        """Var kw."""

    with pytest.raises(TypeError, match=r"\*items is not supported"):
        tool_from_function(f)
    with pytest.raises(TypeError, match=r"\*\*extra is not supported"):
        tool_from_function(g)


def test_unresolvable_annotation_is_a_clear_type_error():
    class Local(BaseModel):  # invisible to the postponed annotation below
        a: int

    def f(x: Local):
        """Local type."""

    with pytest.raises(TypeError, match="cannot resolve the annotation 'Local' of parameter 'x'"):
        tool_from_function(f)


def test_recursive_model_is_rejected():
    with pytest.raises(TypeError, match="recursive"):
        tool_from_function(takes_tree)


class Tree(BaseModel):
    children: list[Tree] = []


def takes_tree(tree: Tree):
    """Recursive."""


def test_unsupported_type_is_a_type_error():
    def f(handle: asyncio.AbstractEventLoop):
        """Not describable."""

    with pytest.raises(TypeError, match="unsupported parameter type"):
        tool_from_function(f)


# ---------------------------------------------------------------------------------------------- docstrings


def test_docstring_description_and_multiline_args():
    def book(city: str, nights: int = 1, note: str = "") -> dict:
        """
        Book a hotel room.

        Picks the cheapest room available.

        Args:
            city: The city to book in,
                spelled in English.
            nights (int): How many nights.
            note: Free text.

        Returns:
            The booking.

        Raises:
            ValueError: never.
        """

    tool = tool_from_function(book)
    assert tool.description == "Book a hotel room.\n\nPicks the cheapest room available."
    assert tool.parameters["properties"]["city"] == {
        "type": "string",
        "description": "The city to book in, spelled in English.",
    }
    assert tool.parameters["properties"]["nights"]["description"] == "How many nights."
    assert tool.parameters["properties"]["note"]["description"] == "Free text."


def test_docstring_variants():
    assert parse_docstring(None) == ("", {})
    assert parse_docstring("One line.") == ("One line.", {})
    assert parse_docstring("Do it.\n\n:param a: the a\n:param int b: the b\n    more\n:returns: x") == (
        "Do it.",
        {"a": "the a", "b": "the b more"},
    )
    text = "Summary.\n\nParameters:\n    func (function): The function.\n    tool_name (str, optional): The name.\n"
    assert parse_docstring(text) == ("Summary.", {"func": "The function.", "tool_name": "The name."})


def test_missing_docstring_and_overrides():
    def f(a: int):
        pass

    assert tool_from_function(f).description == "No description provided."
    tool = tool_from_function(f, name="renamed", description="Custom.")
    assert (tool.name, tool.description) == ("renamed", "Custom.")


def test_to_openai_cuts_description_at_1024_chars():
    def f(a: int):
        pass

    tool = tool_from_function(f, description="x" * 2000, tags=["t"], terminal=True, side_effects=True)
    spec = tool.to_openai()
    assert spec == {
        "type": "function",
        "function": {"name": "f", "description": "x" * 1024, "parameters": tool.parameters},
    }
    assert (tool.terminal, tool.tags, tool.side_effects) == (True, ["t"], True)


# ---------------------------------------------------------------------------------------------- context


def test_context_parameters_are_hidden_and_injected():
    seen: dict[str, Any] = {}

    def store(action_context: ActionContext, action_agent, key: str, value: int) -> str:
        """Store a value."""
        seen["context"], seen["agent"] = action_context, action_agent
        action_context.get("storage")[key] = value
        return "ok"

    tool = tool_from_function(store)
    assert list(tool.parameters["properties"]) == ["key", "value"]
    assert tool.parameters["required"] == ["key", "value"]
    storage: dict[str, int] = {}
    agent = object()
    context = ActionContext({"storage": storage}, agent=agent)
    assert asyncio.run(tool.call({"key": "k", "value": 2}, context)) == "ok"
    assert storage == {"k": 2}
    assert seen["context"] is context and seen["agent"] is agent


def test_context_detected_by_annotation_under_any_name():
    def f(ctx: ActionContext, a: int) -> Any:
        """Uses ctx."""
        return ctx.get("x")

    tool = tool_from_function(f)
    assert list(tool.parameters["properties"]) == ["a"]
    assert asyncio.run(tool.call({"a": 1}, ActionContext({"x": 42}))) == 42


def test_missing_context_gets_an_empty_one():
    def f(action_context: ActionContext) -> Any:
        """Reads context."""
        return action_context.get("anything", "fallback")

    assert asyncio.run(tool_from_function(f).call({}, None)) == "fallback"


def test_model_cannot_supply_the_context():
    calls: list[Any] = []

    def f(action_context: ActionContext, a: int):
        """Ctx."""
        calls.append(a)

    with pytest.raises(ToolArgumentError, match="action_context: is supplied by the runtime"):
        asyncio.run(tool_from_function(f).call({"a": 1, "action_context": {"x": 1}}, ActionContext()))
    assert calls == []


def test_action_context_accessors():
    llm, memory = object(), object()
    context = ActionContext({"invoice_storage": {"a": 1}}, llm=llm, memory=memory)
    assert context.get("invoice_storage", {}) == {"a": 1}
    assert context.get("missing", {}) == {}
    assert context.get("llm") is llm and context.llm is llm
    assert context.get("memory") is memory and context.memory is memory
    assert context.get("agent") is None and context.get("agent", "d") == "d"
    assert context["invoice_storage"] == {"a": 1}
    assert "invoice_storage" in context and "llm" in context and "agent" not in context
    with pytest.raises(KeyError):
        context["nope"]
    assert ActionContext().properties == {}


# ---------------------------------------------------------------------------------------------- validation


def order(item: str, quantity: int, color: Color = Color.RED, address: Optional[Address] = None) -> dict:
    """Order an item."""
    return {"item": item, "quantity": quantity, "color": color, "address": address}


def test_arguments_are_coerced_to_declared_types():
    tool = tool_from_function(order)
    kwargs = tool.validate_arguments({"item": 123, "quantity": "3", "color": "blue", "address": {"street": "Main"}})
    assert kwargs["item"] == "123"  # small models write numbers for string ids
    assert kwargs["quantity"] == 3
    assert kwargs["color"] is Color.BLUE
    assert kwargs["address"] == Address(street="Main", city="Paris")
    assert isinstance(kwargs["address"], Address)


def test_omitted_arguments_use_the_functions_own_defaults():
    tool = tool_from_function(order)
    assert tool.validate_arguments({"item": "a", "quantity": 1}) == {"item": "a", "quantity": 1}
    result = asyncio.run(tool.call({"item": "a", "quantity": 1}, None))
    assert result["color"] is Color.RED and result["address"] is None


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"quantity": 1}, "item: missing required argument"),
        ({"item": "a", "quantity": "lots"}, "quantity: Input should be a valid integer"),
        ({"item": "a", "quantity": 1, "color": "green"}, "color: Input should be 'red' or 'blue' (got 'green')"),
        ({"item": "a", "quantity": 1, "colour": "red"}, "colour: unknown argument (allowed: item, quantity, color, address)"),
        ({"item": "a", "quantity": 1, "address": {"city": "Rome"}}, "address.street: missing required argument"),
    ],
)
def test_bad_arguments_raise_readable_errors_before_the_call(args, expected):
    called: list[Any] = []

    def spy(**kwargs: Any) -> None:
        called.append(kwargs)

    tool = tool_from_function(order)
    tool.function = spy  # any call at all would be recorded
    with pytest.raises(ToolArgumentError) as caught:
        asyncio.run(tool.call(args, None))
    error = caught.value
    assert isinstance(error, AgentError)
    assert error.code is ErrorCode.TOOL_EXECUTION_FAILED
    assert error.message.startswith("Invalid arguments for tool 'order': ")
    assert expected in error.message
    assert "\n" not in error.message and "pydantic" not in error.message
    assert called == []


def test_error_lists_every_bad_field_in_details():
    with pytest.raises(ToolArgumentError) as caught:
        tool_from_function(order).validate_arguments({"quantity": "x", "extra": 1})
    assert caught.value.details["tool"] == "order"
    assert sorted(caught.value.details["errors"]) == sorted(
        [
            "item: missing required argument",
            "quantity: Input should be a valid integer, unable to parse string as an integer (got 'x')",
            "extra: unknown argument (allowed: item, quantity, color, address)",
        ]
    )


def test_json_strings_are_decoded_only_where_a_container_is_expected():
    def g(data: dict, ids: list[int], text: str, maybe: Optional[dict] = None) -> tuple:
        """Containers written as strings."""
        return data, ids, text, maybe

    tool = tool_from_function(g)
    result = asyncio.run(tool.call({"data": '{"a": 1}', "ids": "[1, 2]", "text": "[1]", "maybe": '{"b": null}'}, None))
    assert result == ({"a": 1}, [1, 2], "[1]", {"b": None})
    with pytest.raises(ToolArgumentError, match="data: Input should be a valid dictionary"):
        tool.validate_arguments({"data": "{not json", "ids": [], "text": ""})
    override = tool_from_function(g, parameters_override={"type": "object", "properties": {"data": {"type": "object"}}})
    assert override.validate_arguments({"data": '{"x": [1]}'}) == {"data": {"x": [1]}}


def test_bound_methods_become_tools():
    class Counter:
        def __init__(self) -> None:
            self.total = 0

        def add(self, amount: int) -> int:
            """Add to the counter."""
            self.total += amount
            return self.total

    counter = Counter()
    tool = tool_from_function(counter.add)
    assert tool.name == "add" and list(tool.parameters["properties"]) == ["amount"]
    assert asyncio.run(tool.call({"amount": 4}, None)) == 4 and counter.total == 4


def test_non_object_arguments_are_rejected():
    with pytest.raises(ToolArgumentError, match="arguments must be an object, got array"):
        tool_from_function(order).validate_arguments([1, 2])  # type: ignore[arg-type]


def test_none_arguments_mean_no_arguments():
    def ping() -> str:
        """Ping."""
        return "pong"

    assert asyncio.run(tool_from_function(ping).call(None, None)) == "pong"


# ---------------------------------------------------------------------------------------------- calling


async def test_async_tools_are_awaited():
    async def slow_add(a: int, b: int) -> int:
        """Add slowly."""
        await asyncio.sleep(0)
        return a + b

    assert await tool_from_function(slow_add).call({"a": 2, "b": "3"}, None) == 5


async def test_sync_tools_run_directly_in_the_loop():
    import threading

    def where() -> str:
        """Thread name."""
        return threading.current_thread().name

    assert await tool_from_function(where).call({}, None) == threading.current_thread().name


async def test_tool_exceptions_propagate_unchanged():
    def boom(a: int) -> None:
        """Fails."""
        raise ValueError("bad invoice")

    with pytest.raises(ValueError, match="bad invoice"):
        await tool_from_function(boom).call({"a": 1}, None)


# ---------------------------------------------------------------------------------------------- parameters_override


OVERRIDE = {
    "type": "object",
    "properties": {"query": {"type": "string", "minLength": 1}, "limit": {"type": "integer", "maximum": 10}},
    "required": ["query"],
}


def test_parameters_override_is_the_schema_and_validates():
    received: list[dict[str, Any]] = []

    def search(action_context: ActionContext, query, limit=5):
        """Search."""
        received.append({"query": query, "limit": limit})
        return len(received)

    tool = tool_from_function(search, parameters_override=OVERRIDE)
    assert tool.parameters == OVERRIDE
    assert asyncio.run(tool.call({"query": "cats", "limit": 3}, None)) == 1
    assert received == [{"query": "cats", "limit": 3}]
    for bad, expected in [
        ({"limit": 3}, "query: required property is missing"),
        ({"query": ""}, "query: must be at least 1 characters, got 0"),
        ({"query": "x", "limit": 11}, "limit: must be at most 10, got 11"),
        ({"query": "x", "limit": "3"}, "limit: expected integer, got string"),
        ({"query": "x", "other": 1}, "other: unknown argument"),
    ]:
        with pytest.raises(ToolArgumentError) as caught:
            asyncio.run(tool.call(bad, None))
        assert expected in caught.value.message, caught.value.message
    assert len(received) == 1


def test_parameters_override_allows_kwargs_functions():
    def anything(**kwargs: Any) -> dict:
        """Echo."""
        return kwargs

    tool = tool_from_function(anything, parameters_override=OVERRIDE)
    assert asyncio.run(tool.call({"query": "q", "free": True}, None)) == {"query": "q", "free": True}


def test_tool_built_directly_validates_with_its_schema():
    tool = Tool(name="echo", description="Echo.", parameters=OVERRIDE, function=lambda query, limit=1: query)
    assert asyncio.run(tool.call({"query": "hi"}, None)) == "hi"
    with pytest.raises(ToolArgumentError, match="query: required property is missing"):
        asyncio.run(tool.call({}, None))


def test_generated_schema_agrees_with_validation():
    schema = tool_from_function(order).parameters
    assert validate({"item": "a", "quantity": 2, "color": "red", "address": None}, schema) == []
    assert validate({"item": "a", "quantity": 2, "surprise": 1}, schema) != []


# ---------------------------------------------------------------------------------------------- registries


def make_registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def alpha(a: int) -> int:
        """Alpha."""
        return a

    @registry.tool(tags=["invoices", "storage"], side_effects=True)
    def beta(b: str) -> str:
        """Beta."""
        return b

    @registry.tool(tags=["invoices"], terminal=True, name="gamma_tool")
    def gamma() -> None:
        """Gamma."""

    return registry


def test_decorator_forms_return_the_original_function():
    registry = ToolRegistry()

    def plain(a: int) -> int:
        """Plain."""
        return a * 2

    assert registry.tool(plain) is plain
    assert registry.tool(tags=["x"], terminal=True)(plain_two) is plain_two
    assert plain(2) == 4  # still an ordinary function
    assert registry.names() == ["plain", "plain_two"]
    assert registry.get("plain_two").terminal and registry.get("plain_two").tags == ["x"]


def plain_two() -> None:
    """Second."""


def test_registry_lookup_order_and_tags():
    registry = make_registry()
    assert registry.names() == ["alpha", "beta", "gamma_tool"]
    assert [tool.name for tool in registry] == ["alpha", "beta", "gamma_tool"]
    assert len(registry) == 3
    assert "beta" in registry and "nope" not in registry
    assert registry.get("nope") is None
    assert registry.get("gamma_tool").terminal is True
    assert registry.get("beta").side_effects is True
    assert [tool.name for tool in registry.by_tag("invoices")] == ["beta", "gamma_tool"]
    assert registry.by_tag("none") == []
    assert [spec["function"]["name"] for spec in registry.to_openai_tools()] == ["alpha", "beta", "gamma_tool"]


def test_duplicate_names_need_replace():
    registry = make_registry()

    def alpha(x: str) -> str:
        """New alpha."""
        return x

    with pytest.raises(ValueError, match="'alpha' is already registered"):
        registry.register(alpha)
    replaced = registry.register(alpha, replace=True)
    assert registry.get("alpha") is replaced
    assert list(replaced.parameters["properties"]) == ["x"]
    assert registry.names() == ["alpha", "beta", "gamma_tool"]


def test_register_accepts_ready_tools_and_notebook_spelling():
    registry = ToolRegistry()
    tool = tool_from_function(order, name="place_order")
    assert registry.register(tool) is tool
    with pytest.raises(TypeError):
        registry.register(tool, tags=["x"])

    def helper(a: int) -> int:
        """Help."""
        return a

    registry.register(helper, tool_name="assist")
    registry.tool("aid")(helper)
    assert registry.names() == ["place_order", "assist", "aid"]


def test_select_by_names_and_tags():
    registry = make_registry()
    assert registry.select().names() == ["alpha", "beta", "gamma_tool"]
    assert registry.select(names=["gamma_tool", "alpha"]).names() == ["alpha", "gamma_tool"]
    assert registry.select(tags=["storage"]).names() == ["beta"]
    assert registry.select(tags=["storage", "invoices"]).names() == ["beta", "gamma_tool"]
    assert registry.select(names=["alpha", "beta"], tags=["invoices"]).names() == ["beta"]
    assert registry.select(names=[]).names() == []


def test_select_unknown_names_is_an_unknown_tool_error():
    registry = make_registry()
    with pytest.raises(AgentError) as caught:
        registry.select(names=["alpha", "rm_rf", "shell"])
    assert caught.value.code is ErrorCode.UNKNOWN_TOOL
    assert caught.value.message == "Unknown tool(s): rm_rf, shell. Available: alpha, beta, gamma_tool"


def test_registries_are_isolated():
    first, second = make_registry(), ToolRegistry()

    @second.tool
    def only_here() -> None:
        """Only in second."""

    assert "only_here" not in first
    selected = first.select(names=["alpha"])

    @selected.tool
    def added_later() -> None:
        """Added to the selection."""

    assert "added_later" not in first and first.names() == ["alpha", "beta", "gamma_tool"]


def test_merged_keeps_order_and_lets_other_win():
    base = make_registry()
    extra = ToolRegistry()

    @extra.tool(name="beta")
    def better_beta(b: str) -> str:
        """Better beta."""
        return b.upper()

    @extra.tool
    def delta() -> None:
        """Delta."""

    merged = base.merged(extra)
    assert merged.names() == ["alpha", "beta", "gamma_tool", "delta"]
    assert merged.get("beta").function is better_beta
    assert base.get("beta").function is not better_beta and "delta" not in base


def test_register_tool_uses_the_default_registry(monkeypatch):
    fresh = ToolRegistry()
    monkeypatch.setattr(tools_module, "default_registry", fresh)

    @register_tool
    def bare(a: int) -> int:
        """Bare."""
        return a

    @register_tool()
    def empty_parens() -> None:
        """Parens."""

    @register_tool(tool_name="named", tags=["t"], terminal=True)
    def with_args() -> None:
        """Args."""

    assert bare(1) == 1
    assert fresh.names() == ["bare", "empty_parens", "named"]
    assert fresh.get("named").terminal and fresh.by_tag("t")[0].name == "named"


def test_notebook_invoice_tools_work_as_written(monkeypatch):
    """The notebook's tools, verbatim in shape: decorator with tags, ActionContext, dict arguments, .get()."""
    monkeypatch.setattr(tools_module, "default_registry", ToolRegistry())

    @register_tool(tags=["storage", "invoices"])
    def store_invoice(action_context: ActionContext, invoice_data: dict) -> dict:
        """
        Store an invoice in our invoice database. If an invoice with the same number
        already exists, it will be updated.

        Args:
            invoice_data: The processed invoice data to store

        Returns:
            A dictionary containing the storage result and invoice number
        """
        storage = action_context.get("invoice_storage", {})
        invoice_number = invoice_data.get("invoice_number")
        if not invoice_number:
            raise ValueError("Invoice data must contain an invoice number")
        storage[invoice_number] = invoice_data
        return {"status": "success", "message": f"Stored invoice {invoice_number}", "invoice_number": invoice_number}

    @register_tool()
    def prompt_expert(action_context: ActionContext, description_of_expert: str, prompt: str) -> str:
        """
        Generate a response from an expert persona.

        Args:
            description_of_expert: Detailed description of the expert's background and expertise
            prompt: The specific question or task for the expert
        """
        generate_response = action_context.get("llm")
        return generate_response(f"{description_of_expert}|{prompt}")

    registry = tools_module.default_registry.select(tags=["invoices"])
    tool = registry.get("store_invoice")
    assert tool.description == (
        "Store an invoice in our invoice database. If an invoice with the same number\nalready exists, it will be updated."
    )
    assert tool.parameters["properties"] == {
        "invoice_data": {"type": "object", "description": "The processed invoice data to store"}
    }
    storage: dict[str, Any] = {}
    context = ActionContext({"invoice_storage": storage}, llm=lambda text: text.upper())
    result = asyncio.run(tool.call({"invoice_data": {"invoice_number": "INV-9", "total_amount": 5}}, context))
    assert result["invoice_number"] == "INV-9" and storage["INV-9"]["total_amount"] == 5
    expert = tools_module.default_registry.get("prompt_expert")
    assert asyncio.run(expert.call({"description_of_expert": "cfo", "prompt": "hi"}, context)) == "CFO|HI"
