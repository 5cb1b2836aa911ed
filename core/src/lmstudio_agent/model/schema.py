"""JSON-schema helpers: make pydantic's schemas self-contained and compact, and validate the subset we use.

Small models read these schemas in their prompt, so :func:`inline_refs` drops what they do not need
(``$defs``, pydantic's ``title`` keys). :func:`validate` covers the keywords our generated schemas and the
schemas users hand to ``prompt_llm_for_json`` use; it is not a full JSON-Schema implementation (no
``jsonschema`` dependency: the core has to run under Pyodide with pydantic and httpx only).
"""

from __future__ import annotations

import math
import re
from typing import Any, TypeVar, cast
from collections.abc import Callable


T = TypeVar("T", dict[str, Any], list[Any])

__all__ = ["inline_refs", "validate", "json_type_name"]

# Keywords whose value is a schema, a list of schemas, or a mapping of names to schemas. Only these are
# walked: "default", "enum", "const" and "examples" hold data, and a "title" inside them is data too.
_SCHEMA_KEYS = frozenset({"items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else"})
_SCHEMA_LIST_KEYS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_SCHEMA_MAP_KEYS = frozenset({"properties", "patternProperties", "dependentSchemas"})
_DROPPED_KEYS = frozenset({"title", "$defs", "definitions"})
# The order a model reads best: what it is first, then its parts.
_KEY_ORDER = ("type", "description", "enum", "const", "properties", "required", "items", "anyOf", "oneOf")


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """Return ``schema`` with every local ``$ref`` replaced by its definition, without ``$defs`` or titles.

    Raises ``ValueError`` for a recursive definition (it cannot be inlined) or a ``$ref`` that is not local.

    Args:
        schema: A JSON schema, e.g. pydantic's ``model_json_schema()``.
    """
    defs: dict[str, Any] = {}
    for key in ("definitions", "$defs"):
        found = schema.get(key)
        if isinstance(found, dict):
            defs.update({f"#/{key}/{name}": value for name, value in found.items()})
    return cast(dict[str, Any], _inline(schema, defs, ()))


def _inline(node: Any, defs: dict[str, Any], stack: tuple[str, ...]) -> Any:
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str):
        if ref not in defs:
            raise ValueError(f"cannot resolve $ref {ref!r}: only local #/$defs references are supported")
        if ref in stack:
            raise ValueError(f"recursive schema: {ref!r} refers to itself; recursive models cannot be inlined")
        resolved = _inline(defs[ref], defs, (*stack, ref))
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        # A description next to the $ref describes this use, so it wins over the definition's own.
        return _ordered({**resolved, **_inline(siblings, defs, stack)})
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS:  # a property called "title" lives in a properties map, never here
            continue
        if key == "additionalProperties" and value is True:  # the default; says nothing, costs tokens
            continue
        if key in _SCHEMA_KEYS:
            out[key] = _inline(value, defs, stack) if isinstance(value, dict) else value
        elif key in _SCHEMA_LIST_KEYS and isinstance(value, list):
            out[key] = [_inline(item, defs, stack) for item in value]
        elif key in _SCHEMA_MAP_KEYS and isinstance(value, dict):
            out[key] = {name: _inline(sub, defs, stack) for name, sub in value.items()}
        else:
            out[key] = value
    return _ordered(out)


def _ordered(node: dict[str, Any]) -> dict[str, Any]:
    first = {key: node[key] for key in _KEY_ORDER if key in node}
    return {**first, **{key: value for key, value in node.items() if key not in first}}


# --------------------------------------------------------------------------------------------- validate


def json_type_name(value: Any) -> str:
    """The JSON type of a Python value, as a schema would name it.

    Args:
        value: A Python value decoded from JSON.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        if isinstance(value, bool):
            return False
        return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, (list, tuple))
    if name == "object":
        return isinstance(value, dict)
    return True  # an unknown type name constrains nothing


def _same(a: Any, b: Any) -> bool:
    """JSON equality: ``True`` is not ``1``, ``1`` is ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _child(path: str, key: str) -> str:
    return f"{path}.{key}" if _IDENT.match(key) else f"{path}[{key!r}]"


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate(instance: Any, schema: dict[str, Any] | bool) -> list[str]:
    """Check ``instance`` against ``schema``; return readable errors (``"$.a[0].b: ..."``), empty when valid.

    Args:
        instance: The value to check.
        schema: The JSON schema (``True``/``False`` as JSON Schema's boolean schemas).
    """
    errors: list[str] = []
    _check(instance, schema, "$", schema if isinstance(schema, dict) else {}, errors, 0)
    return errors


def _check(value: Any, schema: Any, path: str, root: dict[str, Any], errors: list[str], depth: int) -> None:
    if schema is True or schema is None:
        return
    if schema is False:
        errors.append(f"{path}: no value is allowed here")
        return
    if not isinstance(schema, dict):
        return
    if depth > 64:
        errors.append(f"{path}: schema nesting too deep")
        return
    ref = schema.get("$ref")
    if isinstance(ref, str):
        target = _resolve(ref, root)
        if target is None:
            errors.append(f"{path}: cannot resolve $ref {ref!r}")
            return
        _check(value, target, path, root, errors, depth + 1)

    expected = schema.get("type")
    if expected is not None:
        names = expected if isinstance(expected, list) else [expected]
        if not any(_is_type(value, name) for name in names):
            wanted = " or ".join(str(name) for name in names)
            errors.append(f"{path}: expected {wanted}, got {json_type_name(value)}")
            return  # further keywords would only repeat the same mistake

    if "enum" in schema and isinstance(schema["enum"], list) and not any(_same(value, o) for o in schema["enum"]):
        options = ", ".join(_short(option, 30) for option in schema["enum"][:12])
        errors.append(f"{path}: {_short(value)} is not one of: {options}")
    if "const" in schema and not _same(value, schema["const"]):
        errors.append(f"{path}: must be {_short(schema['const'])}, got {_short(value)}")

    for key in ("anyOf", "oneOf"):
        forms = schema.get(key)
        if not isinstance(forms, list) or not forms:
            continue
        results = [_sub_errors(value, form, path, root, depth) for form in forms]
        passed = sum(1 for result in results if not result)
        if passed == 0:
            if len(results) == 1:
                errors.extend(results[0])
            else:
                firsts = "; ".join(result[0] for result in results if result)
                errors.append(f"{path}: matches none of the allowed forms ({firsts})")
        elif key == "oneOf" and passed > 1:
            errors.append(f"{path}: matches {passed} of the oneOf forms, exactly one is allowed")
    for option in schema.get("allOf", []) if isinstance(schema.get("allOf"), list) else []:
        _check(value, option, path, root, errors, depth + 1)
    if "not" in schema and not _sub_errors(value, schema["not"], path, root, depth):
        errors.append(f"{path}: must not match the excluded form")

    if isinstance(value, bool):
        pass
    elif isinstance(value, (int, float)):
        _check_number(value, schema, path, errors)
    elif isinstance(value, str):
        _check_string(value, schema, path, errors)
    elif isinstance(value, (list, tuple)):
        _check_array(value, schema, path, root, errors, depth)
    elif isinstance(value, dict):
        _check_object(value, schema, path, root, errors, depth)


def _sub_errors(value: Any, schema: Any, path: str, root: dict[str, Any], depth: int) -> list[str]:
    found: list[str] = []
    _check(value, schema, path, root, found, depth + 1)
    return found


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    if ref == "#":
        return root
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _check_number(value: float, schema: dict[str, Any], path: str, errors: list[str]) -> None:
    bounds: tuple[tuple[str, Callable[[float, float], bool], str], ...] = (
        ("minimum", lambda v, b: v >= b, "at least"),
        ("maximum", lambda v, b: v <= b, "at most"),
        ("exclusiveMinimum", lambda v, b: v > b, "greater than"),
        ("exclusiveMaximum", lambda v, b: v < b, "less than"),
    )
    for key, ok, words in bounds:
        bound = schema.get(key)
        if isinstance(bound, (int, float)) and not isinstance(bound, bool) and not ok(value, bound):
            errors.append(f"{path}: must be {words} {bound}, got {value}")
    step = schema.get("multipleOf")
    if isinstance(step, (int, float)) and step > 0 and not math.isclose(value / step, round(value / step)):
        errors.append(f"{path}: must be a multiple of {step}, got {value}")


def _check_string(value: str, schema: dict[str, Any], path: str, errors: list[str]) -> None:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if isinstance(low, int) and len(value) < low:
        errors.append(f"{path}: must be at least {low} characters, got {len(value)}")
    if isinstance(high, int) and len(value) > high:
        errors.append(f"{path}: must be at most {high} characters, got {len(value)}")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            matched = re.search(pattern, value) is not None
        except re.error:
            matched = True  # an ECMA-only pattern Python cannot compile constrains nothing here
        if not matched:
            errors.append(f"{path}: {_short(value)} does not match pattern {pattern!r}")


def _check_array(
    value: list[Any] | tuple[Any, ...], schema: dict[str, Any], path: str, root: dict[str, Any], errors: list[str],
    depth: int,
) -> None:
    low, high = schema.get("minItems"), schema.get("maxItems")
    if isinstance(low, int) and len(value) < low:
        errors.append(f"{path}: must have at least {low} items, got {len(value)}")
    if isinstance(high, int) and len(value) > high:
        errors.append(f"{path}: must have at most {high} items, got {len(value)}")
    prefix = schema.get("prefixItems")
    items = schema.get("items")
    if isinstance(items, list):  # the older tuple form
        prefix, items = items, schema.get("additionalItems", True)
    start = 0
    if isinstance(prefix, list):
        for index, (item, sub) in enumerate(zip(value, prefix, strict=False)):  # items past the prefix come next
            _check(item, sub, f"{path}[{index}]", root, errors, depth + 1)
        start = len(prefix)
    if items is not None and items is not True:
        for index in range(start, len(value)):
            _check(value[index], items, f"{path}[{index}]", root, errors, depth + 1)
    if schema.get("uniqueItems") is True:
        for index, item in enumerate(value):
            if any(_same(item, earlier) for earlier in value[:index]):
                errors.append(f"{path}[{index}]: duplicate item {_short(item)}")
                break


def _member(schema: dict[str, Any], key: str, kind: type[T]) -> T:
    """``schema[key]`` when it is a ``kind`` (a dict or a list), else an empty one."""
    value = schema.get(key)
    return value if isinstance(value, kind) else kind()


def _check_object(
    value: dict[str, Any], schema: dict[str, Any], path: str, root: dict[str, Any], errors: list[str], depth: int
) -> None:
    properties = _member(schema, "properties", dict)
    required = _member(schema, "required", list)
    for name in required:
        if name not in value:
            errors.append(f"{_child(path, str(name))}: required property is missing")
    extra = schema.get("additionalProperties", True)
    patterns = _member(schema, "patternProperties", dict)
    for name, item in value.items():
        key = str(name)
        if key in properties:
            _check(item, properties[key], _child(path, key), root, errors, depth + 1)
            continue
        matched = [sub for pattern, sub in patterns.items() if _search(pattern, key)]
        for sub in matched:
            _check(item, sub, _child(path, key), root, errors, depth + 1)
        if matched:
            continue
        if extra is False:
            allowed = ", ".join(properties) or "none"
            errors.append(f"{path}: unexpected property {key!r} (allowed: {allowed})")
        elif isinstance(extra, dict):
            _check(item, extra, _child(path, key), root, errors, depth + 1)
    low, high = schema.get("minProperties"), schema.get("maxProperties")
    if isinstance(low, int) and len(value) < low:
        errors.append(f"{path}: must have at least {low} properties, got {len(value)}")
    if isinstance(high, int) and len(value) > high:
        errors.append(f"{path}: must have at most {high} properties, got {len(value)}")


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return False
