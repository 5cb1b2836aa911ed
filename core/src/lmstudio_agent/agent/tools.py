"""Tools from plain typed functions: schemas, argument validation, context injection and registries.

A tool is an ordinary function (sync or async). Its JSON schema comes from the signature through pydantic,
its descriptions from the docstring (Google-style ``Args:``, :mod:`.docstrings`). A parameter named
``action_context`` (or annotated :class:`ActionContext`) receives the run's context and ``action_agent`` the running
agent (:mod:`.injection`); neither appears in the schema, so the model can never supply them. How a model's
arguments are prepared and their problems worded is :mod:`._arguments`.
"""

from __future__ import annotations

import inspect
import typing
from dataclasses import dataclass, field
from typing import Any, overload
from collections.abc import Callable, Iterable, Iterator, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from ..errors import AgentError, ErrorCode
from ..model.schema import inline_refs, json_type_name, validate
from ._arguments import accepted_names, decode_json_strings, describe_validation_error, strip_root
from .docstrings import parse_docstring
from .injection import AGENT_PARAM as AGENT_PARAM
from .injection import CONTEXT_PARAM as CONTEXT_PARAM
from .injection import ActionContext, injected_params

__all__ = [
    "ActionContext",
    "Tool",
    "ToolArgumentError",
    "ToolRegistry",
    "default_registry",
    "parse_docstring",
    "register_tool",
    "tool_from_function",
]

NO_DESCRIPTION = "No description provided."
MAX_DESCRIPTION_CHARS = 1024
_MAX_REPORTED_ERRORS = 6


class ToolArgumentError(AgentError):
    """Arguments a model supplied do not fit the tool; the message says which and why, briefly.

    Args:
        tool: The tool's name.
        problems: One line per bad argument.
    """

    def __init__(self, tool: str, problems: list[str]) -> None:
        """Build the error; only the first few problems are spelled out in the message, all stay in ``details``."""
        shown = problems[:_MAX_REPORTED_ERRORS]
        more = len(problems) - len(shown)
        text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        super().__init__(
            ErrorCode.TOOL_EXECUTION_FAILED,
            f"Invalid arguments for tool '{tool}': {text}",
            details={"tool": tool, "errors": problems},
        )
        self.tool = tool
        self.problems = problems


# ---------------------------------------------------------------------------------------------- the tool


@dataclass
class Tool:
    """A callable the model may request: its name, description, JSON schema and function."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    terminal: bool = False
    tags: list[str] = field(default_factory=list)
    side_effects: bool = False
    # How arguments are checked: a pydantic model built from the signature, or (None) the JSON schema.
    args_model: type[BaseModel] | None = field(default=None, repr=False, compare=False)
    # Parameters filled by the runtime rather than the model: name -> "context" | "agent".
    injected: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.tags = list(self.tags or [])
        if not self.injected:
            self.injected = injected_params(self.function)

    def to_openai(self) -> dict[str, Any]:
        """The tool in OpenAI ``tools`` format (description cut to 1024 characters, as the notebook does)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": (self.description or "")[:MAX_DESCRIPTION_CHARS],
                "parameters": self.parameters,
            },
        }

    def validate_arguments(self, args: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check the model's arguments; return the keyword arguments to call with (Enums and models built).

        Raises :class:`ToolArgumentError` naming each bad field.

        Args:
            args: The arguments as the model sent them (None: no arguments).
        """
        if args is None:
            args = {}
        if not isinstance(args, Mapping):
            raise ToolArgumentError(self.name, [f"arguments must be an object, got {json_type_name(args)}"])
        args = dict(args)
        injected = sorted(name for name in args if name in self.injected)
        if injected:
            raise ToolArgumentError(self.name, [f"{name}: is supplied by the runtime, not the caller" for name in injected])
        args = decode_json_strings(args, self.parameters)
        if self.args_model is None:
            return self._validate_with_schema(args)
        try:
            instance = self.args_model.model_validate(args)
        except ValidationError as exc:
            raise ToolArgumentError(self.name, describe_validation_error(exc, self.parameters)) from None
        fields = self.args_model.model_fields
        # Only what the caller gave: the function's own defaults apply to the rest.
        return {fields[key].alias or key: getattr(instance, key) for key in instance.model_fields_set}

    def _validate_with_schema(self, args: dict[str, Any]) -> dict[str, Any]:
        problems = validate(args, self.parameters)
        accepted = accepted_names(self.function)
        if accepted is not None:
            problems += [f"{name}: unknown argument" for name in args if name not in accepted]
        if problems:
            raise ToolArgumentError(self.name, [strip_root(problem) for problem in problems])
        return args

    async def call(self, args: Mapping[str, Any] | None, context: ActionContext | None = None) -> Any:
        """Validate ``args`` (:meth:`validate_arguments`), then :meth:`run` the validated values.

        Args:
            args: The arguments as the model sent them.
            context: What the function receives as its injected ``action_context``/``agent`` (default: an empty one).
        """
        return await self.run(self.validate_arguments(args), context)

    async def run(self, kwargs: Mapping[str, Any], context: ActionContext | None = None) -> Any:
        """Run the function with ``kwargs`` as :meth:`validate_arguments` returned them (they are not checked
        again), the context injected; awaited when the function is async.

        Args:
            kwargs: The validated keyword arguments.
            context: What the function receives as its injected ``action_context``/``agent`` (default: an empty one).
        """
        values = dict(kwargs)
        for name, kind in self.injected.items():
            if kind == "agent":
                values[name] = context.agent if context is not None else None
            else:
                values[name] = context if context is not None else ActionContext()
        result = self.function(**values)
        if inspect.isawaitable(result):
            result = await result
        return result


def _resolve_annotation(func: Callable[..., Any], name: str, annotation: Any) -> Any:
    """One parameter's annotation with string (postponed) annotations resolved in the function's module."""
    if annotation is inspect.Parameter.empty:
        return str  # unannotated parameters are strings, as in the notebook
    if not isinstance(annotation, str):
        return annotation
    holder = lambda: None  # noqa: E731 - a bare function to carry one annotation for get_type_hints
    holder.__annotations__ = {name: annotation}
    try:
        return typing.get_type_hints(holder, globalns=getattr(func, "__globals__", {}), include_extras=True)[name]
    except Exception as exc:  # NameError for a name the module cannot see, SyntaxError for a bad string
        raise TypeError(f"cannot resolve the annotation {annotation!r} of parameter '{name}': {exc}") from None


def tool_from_function(
    func: Callable[..., Any],
    *,
    name: str | None = None,
    description: str | None = None,
    parameters_override: dict[str, Any] | None = None,
    terminal: bool = False,
    tags: Iterable[str] | None = None,
    side_effects: bool = False,
) -> Tool:
    """Build a :class:`Tool` from a typed function (schema from the signature, descriptions from the docstring).

    Args:
        func: The function; its parameters typed, ``action_context``/``agent`` parameters injected at run time.
        name: The tool's name (default: the function's ``__name__``).
        description: The tool's description (default: the docstring's, before its sections).
        parameters_override: A JSON schema to use instead of the one built from the signature (arguments are then
            checked against it, not against a model).
        terminal: Calling the tool ends the run (its result is the answer).
        tags: Labels for :meth:`ToolRegistry.by_tag` and :meth:`ToolRegistry.select`.
        side_effects: The tool changes something outside the run (requests that offer it skip the cache).
    """
    if not callable(func):
        raise TypeError(f"a tool must be callable, got {type(func).__name__}")
    tool_name = name or getattr(func, "__name__", None)
    if not tool_name or tool_name == "<lambda>":
        raise TypeError("this callable has no usable __name__: pass name=...")
    doc_description, param_docs = parse_docstring(inspect.getdoc(func))
    tool_description = (description or doc_description or NO_DESCRIPTION).strip()
    injected = injected_params(func)
    signature = inspect.signature(func)

    if parameters_override is not None:
        if any(p.kind is p.VAR_POSITIONAL for p in signature.parameters.values()):
            raise TypeError(f"tool '{tool_name}': *args cannot be passed by keyword; use named parameters")
        return Tool(
            name=tool_name, description=tool_description, parameters=dict(parameters_override), function=func,
            terminal=terminal, tags=list(tags or []), side_effects=side_effects, args_model=None,
            injected=injected,
        )

    fields: dict[str, Any] = {}
    for index, (param_name, param) in enumerate(signature.parameters.items()):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind is param.VAR_POSITIONAL else "**"
            raise TypeError(
                f"tool '{tool_name}': {star}{param_name} is not supported; declare each argument as a named, "
                "typed parameter (or pass parameters_override)"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"tool '{tool_name}': positional-only parameter '{param_name}' cannot take a keyword")
        if param_name in injected:
            continue
        annotation = _resolve_annotation(func, param_name, param.annotation)
        default = ... if param.default is inspect.Parameter.empty else param.default
        info = Field(default, alias=param_name, description=param_docs.get(param_name) or None)
        # Internal field names avoid clashes with BaseModel attributes and leading underscores.
        fields[f"p{index}"] = (annotation, info)

    config = ConfigDict(extra="forbid", coerce_numbers_to_str=True, populate_by_name=False)
    try:
        model = create_model(f"{tool_name}_arguments", __config__=config, **fields)
        parameters = inline_refs(model.model_json_schema())
    except ValueError as exc:
        raise TypeError(f"tool '{tool_name}': {exc}") from None
    except Exception as exc:  # pydantic's schema-generation errors for types it cannot describe
        raise TypeError(f"tool '{tool_name}': unsupported parameter type ({exc})") from None
    parameters.setdefault("properties", {})
    return Tool(
        name=tool_name, description=tool_description, parameters=parameters, function=func, terminal=terminal,
        tags=list(tags or []), side_effects=side_effects, args_model=model, injected=injected,
    )


# ---------------------------------------------------------------------------------------------- registries


class ToolRegistry:
    """An ordered set of tools by name. Registries are independent; select() and merged() make new ones.

    Args:
        tools: Tools to register at once (names must be unique).
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        """Register ``tools`` in order."""
        self._tools: dict[str, Tool] = {}
        for item in tools:
            self.register(item)

    def register(
        self,
        func_or_tool: Callable[..., Any] | Tool,
        *,
        name: str | None = None,
        description: str | None = None,
        parameters_override: dict[str, Any] | None = None,
        terminal: bool = False,
        tags: Iterable[str] | None = None,
        side_effects: bool = False,
        replace: bool = False,
        tool_name: str | None = None,
    ) -> Tool:
        """Add a function (made into a :class:`Tool`) or a ready Tool. A taken name is an error unless ``replace``.

        ``tool_name`` is the notebook's spelling of ``name``.

        Args:
            func_or_tool: A typed function, or a :class:`Tool` taken as it is (then no other option may be given).
            name: The tool's name (default: the function's ``__name__``).
            description: The tool's description (default: from the docstring).
            parameters_override: A JSON schema to use instead of the one built from the signature.
            terminal: Calling the tool ends the run.
            tags: Labels for :meth:`by_tag` and :meth:`select`.
            side_effects: The tool changes something outside the run (requests that offer it skip the cache).
            replace: Replace a tool registered under the same name instead of raising.
            tool_name: The notebook's spelling of ``name``.
        """
        if isinstance(func_or_tool, Tool):
            if name or tool_name or description or parameters_override is not None or terminal or tags or side_effects:
                raise TypeError("register(Tool) takes the tool as it is; build it with the options instead")
            built = func_or_tool
        else:
            built = tool_from_function(
                func_or_tool, name=name or tool_name, description=description,
                parameters_override=parameters_override, terminal=terminal, tags=tags, side_effects=side_effects,
            )
        if built.name in self._tools and not replace:
            raise ValueError(f"a tool named '{built.name}' is already registered (pass replace=True to replace it)")
        self._tools[built.name] = built
        return built

    @overload
    def tool(self, func: Callable[..., Any], /) -> Callable[..., Any]: ...

    @overload
    def tool(self, func: str | None = None, /, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...

    def tool(self, func: Any = None, /, **options: Any) -> Any:
        """Decorator registering the function; usable bare (``@r.tool``) or with options (``@r.tool(tags=[...])``).

        Returns the function unchanged, so tools can still call each other directly.

        Args:
            func: The function when used bare; a string is taken as the tool's name (the notebook's
                ``@register_tool("name")``).
            options: The keyword options of :meth:`register`.
        """
        if isinstance(func, str):  # @register_tool("name"), the notebook's first positional argument
            options.setdefault("name", func)
            func = None

        def decorator(target: Callable[..., Any]) -> Callable[..., Any]:
            self.register(target, **options)
            return target

        return decorator(func) if func is not None else decorator

    def get(self, name: str) -> Tool | None:
        """The tool registered as ``name``, or None.

        Args:
            name: The tool's name.
        """
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def __repr__(self) -> str:
        return f"ToolRegistry({self.names()!r})"

    def names(self) -> list[str]:
        """The registered names, in registration order."""
        return list(self._tools)

    def by_tag(self, tag: str) -> list[Tool]:
        """The tools carrying ``tag``, in registration order.

        Args:
            tag: The label to look for.
        """
        return [item for item in self._tools.values() if tag in item.tags]

    def select(self, names: Iterable[str] | None = None, tags: Iterable[str] | None = None) -> ToolRegistry:
        """A new registry with the named tools (all must exist) that carry any of ``tags`` (when given).

        Args:
            names: The tools to keep (None: all).
            tags: Keep only tools with at least one of these labels (None: no filter).
        """
        wanted = None if names is None else list(dict.fromkeys(names))
        if wanted is not None:
            unknown = [item for item in wanted if item not in self._tools]
            if unknown:
                available = ", ".join(self._tools) or "none"
                raise AgentError(
                    ErrorCode.UNKNOWN_TOOL,
                    f"Unknown tool(s): {', '.join(unknown)}. Available: {available}",
                    details={"unknown": unknown, "available": list(self._tools)},
                )
        tag_set = None if tags is None else set(tags)
        chosen = [
            item
            for item in self._tools.values()
            if (wanted is None or item.name in wanted) and (not tag_set or tag_set.intersection(item.tags))
        ]
        return ToolRegistry(chosen)

    def to_openai_tools(self) -> list[dict[str, Any]]:
        """Every tool in OpenAI ``tools`` format, in registration order."""
        return [item.to_openai() for item in self._tools.values()]

    def merged(self, other: ToolRegistry | Iterable[Tool]) -> ToolRegistry:
        """A new registry with this one's tools, then ``other``'s; on a shared name ``other``'s tool wins.

        Args:
            other: A registry or tools to add.
        """
        result = ToolRegistry(self._tools.values())
        for item in other:
            result.register(item, replace=True)
        return result

    def copy(self) -> ToolRegistry:
        """A new registry with the same tools (the tools themselves are shared)."""
        return ToolRegistry(self._tools.values())


default_registry = ToolRegistry()


@overload
def register_tool(func: Callable[..., Any], /) -> Callable[..., Any]: ...


@overload
def register_tool(func: str | None = None, /, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...


def register_tool(func: Any = None, /, **options: Any) -> Any:
    """The notebook's decorator: register into :data:`default_registry`; bare or with options.

    Args:
        func: The function when used bare, or the tool's name as a string.
        options: The keyword options of :meth:`ToolRegistry.register`.
    """
    return default_registry.tool(func, **options)

