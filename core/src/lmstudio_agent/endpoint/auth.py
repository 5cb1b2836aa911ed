"""A request's headers and its client key: the headers combined once (:func:`header_map`), the one rule for a
credential sent twice (:func:`credential_headers`), the key a request presents (:func:`presented_key`) and the
constant-time check of it against the deployment's (:func:`authorize`, :func:`key_refusal`).

:mod:`.contract` re-exports every name here, where the adapters have always imported them from.
"""

from __future__ import annotations

import hmac
import logging
from typing import Optional, Union
from collections.abc import Callable, Iterable, Mapping

from ..errors import AgentError, ErrorCode
from .responses import HttpResponse, error_response

logger = logging.getLogger("lmstudio_agent.endpoint.contract")  # the contract's log name, as before this module


Headers = Union[Mapping[str, str], Iterable[tuple[str, str]]]
CREDENTIAL_HEADERS = ("authorization", "x-api-key")


class HeaderMap(dict[str, str]):
    """A request's headers once :func:`header_map` has combined them: lower-case names, repeats joined."""


def header_map(headers: Headers) -> HeaderMap:
    """Headers as a dict with lower-case names. Accepts a mapping or (name, value) pairs; a name that repeats
    gets its values joined with ", ", as HTTP intermediaries and the Fetch API's ``Headers`` combine them.
    Runs once per request: a :class:`HeaderMap` (its own result) is returned as it is.

    Args:
        headers: The request headers: a mapping or (name, value) pairs.
    """
    if isinstance(headers, HeaderMap):
        return headers
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    combined = HeaderMap()
    for name, value in pairs:
        key = str(name).lower()
        combined[key] = f"{combined[key]}, {value}" if key in combined else str(value)
    return combined


def credential_headers(headers: Headers) -> dict[str, str]:
    """:func:`header_map`, after the one rule for a credential sent twice that every server here applies.

    A credential header (``Authorization``, ``X-Api-Key``) that repeats, as two headers or as one whose value
    is a comma-joined list (how proxies and the Fetch API pass repeats on), is ambiguous: AgentError
    (UNAUTHORIZED). Keys never hold a comma (a bearer token's alphabet has none), so a comma means two values.

    Args:
        headers: The request headers: a mapping or (name, value) pairs.
    """
    lowered = header_map(headers)
    for name in CREDENTIAL_HEADERS:
        if "," in lowered.get(name, ""):
            raise AgentError(
                ErrorCode.UNAUTHORIZED, f"Ambiguous credentials: send the {name.title()} header once, with one key"
            )
    return lowered


def presented_key(headers: Headers) -> str | None:
    """The client key from ``Authorization: Bearer <key>`` or ``X-Api-Key``, if any; AgentError(UNAUTHORIZED)
    for a credential sent twice (:func:`credential_headers`) or two different keys in the two headers.

    Args:
        headers: The request headers: a mapping or (name, value) pairs.
    """
    lowered = credential_headers(headers)
    auth = lowered.get("authorization", "").strip()
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    key = lowered.get("x-api-key", "").strip()
    if bearer and key and not hmac.compare_digest(bearer.encode(), key.encode()):
        raise AgentError(ErrorCode.UNAUTHORIZED,
                         "Ambiguous credentials: Authorization and X-Api-Key carry different keys; send one")
    return bearer or key or None


def authorize(headers: Headers, expected_key: str | None) -> HttpResponse | None:
    """None when the request carries the expected key; otherwise the 401/403 response to send.

    Compared in constant time. With no key configured the endpoint refuses everything (fails closed).

    Args:
        headers: The request headers: a mapping or (name, value) pairs.
        expected_key: The deployment's client key (None or empty: none is configured, so 403 for every key).
    """
    try:
        key = presented_key(headers)
    except AgentError as exc:
        return error_response(exc.code, exc.message, {"WWW-Authenticate": "Bearer"})
    if key is None:
        return error_response(
            ErrorCode.UNAUTHORIZED,
            "Missing API key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'",
            {"WWW-Authenticate": "Bearer"},
        )
    if not expected_key:
        logger.error("no client API key is configured: refusing every authenticated route")
        return error_response(ErrorCode.FORBIDDEN, "Invalid API key")
    if not hmac.compare_digest(key.encode(), expected_key.encode()):
        return error_response(ErrorCode.FORBIDDEN, "Invalid API key")
    return None


# The client key a deployment expects: the key itself, or a function that looks it up (a secret store), called
# only for a keyed route so that /health never reads a secret. AgentError from it is answered with its code.
KeySource = Union[str, None, Callable[[], Optional[str]]]


def key_refusal(headers: Headers, api_key: KeySource) -> HttpResponse | None:
    """The key check of a keyed route, with the expected key looked up (a secret store) only now: None when
    the request carries it, else the 401/403 (or the lookup's own error) to send.

    Args:
        headers: The request headers.
        api_key: The key the deployment expects, or a function that looks it up.
    """
    try:
        expected = api_key() if callable(api_key) else api_key
    except AgentError as exc:
        return error_response(exc.code, exc.message)
    return authorize(headers, expected)
