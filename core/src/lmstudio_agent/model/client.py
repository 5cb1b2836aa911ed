"""An async OpenAI-compatible chat client over httpx, with the habits LM Studio needs.

- every call has a timeout, clamped by the run's :class:`Deadline`;
- connect errors, 429 and 5xx are retried a bounded number of times with backoff, honouring ``Retry-After``;
- assistant messages go out with ``content: ""``, never null, and ``tool_choice`` only as a string;
- every failure becomes an :class:`AgentError` with a code; the token never appears in a message or a log.

The request body is built by :mod:`._chat_request`; the answer is read by :mod:`.completions` (``ChatResponse``,
``Usage`` and ``TokenLogprob`` are re-exported here).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from typing import TYPE_CHECKING, Any
from collections.abc import AsyncIterator

from ..deadline import Deadline
from ..errors import AgentError, ErrorCode
from ._chat_request import TOOL_CHOICES as TOOL_CHOICES  # re-exported
from ._chat_request import _chat_body
from .completions import ChatResponse as ChatResponse, TokenLogprob as TokenLogprob, Usage as Usage  # re-exported
from .completions import _error_detail, _json_or_error, _read_completion, _sse_data, _StreamAssembler, _whole_events

if TYPE_CHECKING:  # httpx is imported on first use: it pulls in its CLI's deps (rich, click) when installed
    import httpx

logger = logging.getLogger("lmstudio_agent.client")

DEFAULT_BASE_URL = "http://localhost:1234/v1"
DEFAULT_MODEL = "lmstudio-community/LFM2-350M-Instruct-GGUF"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class ChatClient:
    """Async client for ``/v1/chat/completions`` and the model listings of LM Studio-like servers.

    ``transport`` is the seam for tests (any ``httpx.AsyncBaseTransport``); production uses the default.
    One client keeps one connection pool (at most ``max_connections``): create it once and reuse it.

    Args:
        base_url: The server's OpenAI-compatible base URL, with ``/v1``.
        api_key: Sent as ``Authorization: Bearer`` (None: no header).
        model: The model id used when a call names none.
        timeout: Seconds one HTTP call may take (cut further by a run's deadline).
        connect_timeout: Seconds to open a connection.
        max_retries: Retries after a connect error, 429 or 5xx (each after a backoff).
        backoff_seconds: The first retry's delay; it doubles with each retry.
        max_backoff_seconds: The longest delay between retries (a ``Retry-After`` is honoured up to this).
        max_connections: The size of the connection pool.
        transport: An ``httpx.AsyncBaseTransport`` to use instead of real connections (tests).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        model: str = DEFAULT_MODEL,
        *,
        timeout: float = 120.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        backoff_seconds: float = 0.5,
        max_backoff_seconds: float = 8.0,
        max_connections: int = 4,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Keep the configuration; the HTTP connection pool is opened on the first call."""
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self._api_key = api_key or None
        self._max_connections = max_connections
        self._transport = transport
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:  # never show the key
        return f"ChatClient(base_url={self.base_url!r}, model={self.model!r})"

    # ------------------------------------------------------------------------------------------ plumbing

    def _client(self) -> httpx.AsyncClient:
        import httpx

        loop = asyncio.get_running_loop()
        if self._http is None or self._http.is_closed or self._http_loop is not loop:
            # A pool belongs to one event loop: the sync wrappers run each call in a fresh loop.
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
            self._http = httpx.AsyncClient(
                headers=headers,
                transport=self._transport,
                limits=httpx.Limits(max_connections=self._max_connections, max_keepalive_connections=2),
                timeout=httpx.Timeout(self.timeout, connect=self.connect_timeout),
            )
            self._http_loop = loop
        return self._http

    async def aclose(self) -> None:
        """Close the connection pool; a later call opens a new one."""
        if self._http is not None and not self._http.is_closed:
            await self._http.aclose()
        self._http = None

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @property
    def server_root(self) -> str:
        """The server's root URL: the base URL without its ``/v1`` suffix (LM Studio's native API lives there)."""
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url

    def _timeout(self, deadline: Deadline | None, timeout: float | None = None) -> httpx.Timeout:
        import httpx

        total = timeout if timeout is not None else self.timeout
        if deadline is not None:
            total = deadline.clamp(total)
        return httpx.Timeout(total, connect=min(self.connect_timeout, total))

    async def _request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        deadline: Deadline | None = None,
        timeout: float | None = None,
        retries: int | None = None,
    ) -> httpx.Response:
        """Send with bounded retries; return a 2xx response or raise AgentError."""
        response = await self._send(method, url, json_body=json_body, deadline=deadline, timeout=timeout,
                                    retries=retries)
        if response.is_success:
            return response
        raise self._status_error(response)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        deadline: Deadline | None = None,
        timeout: float | None = None,
        retries: int | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """Send with bounded retries (connect errors, 429 and 5xx); the last response, whatever its status
        (with ``stream``, its head only: the caller reads the body and closes it). Raises AgentError when the
        server cannot be reached or does not answer in time."""
        import httpx

        retries = self.max_retries if retries is None else retries
        attempt = 0
        while True:
            request = self._client().build_request(method, url, json=json_body, timeout=self._timeout(deadline, timeout))
            try:
                response = await self._client().send(request, stream=stream)
            except httpx.TimeoutException as exc:
                if isinstance(exc, httpx.ConnectTimeout) and attempt < retries:
                    attempt += 1
                    await self._sleep_before_retry(attempt, None, deadline)
                    continue
                raise AgentError(
                    ErrorCode.UPSTREAM_TIMEOUT, f"The model server at {self.base_url} did not answer in time"
                ) from None
            except httpx.TransportError as exc:
                if attempt < retries:
                    attempt += 1
                    await self._sleep_before_retry(attempt, None, deadline)
                    continue
                raise AgentError(
                    ErrorCode.CONNECTION_FAILED,
                    f"Cannot reach the model server at {self.base_url} ({type(exc).__name__})",
                ) from None
            if response.status_code in RETRY_STATUSES and attempt < retries:
                await response.aclose()
                attempt += 1
                await self._sleep_before_retry(attempt, response.headers.get("retry-after"), deadline)
                continue
            return response

    async def _sleep_before_retry(self, attempt: int, retry_after: str | None, deadline: Deadline | None) -> None:
        delay = min(self.max_backoff_seconds, self.backoff_seconds * 2 ** (attempt - 1))
        delay *= 0.5 + random.random() / 2  # jitter, so many clients do not retry in step
        hinted = _parse_retry_after(retry_after)
        if hinted is not None:
            delay = min(max(hinted, 0.0), 60.0)
        if deadline is not None:
            left = deadline.remaining()
            if left is not None and delay >= left:
                raise AgentError(
                    ErrorCode.UPSTREAM_TIMEOUT,
                    f"The model server asked to retry after {delay:.1f}s, beyond the run's deadline",
                )
        logger.debug("retrying in %.2fs (attempt %d)", delay, attempt)
        await asyncio.sleep(delay)

    def _status_error(self, response: httpx.Response) -> AgentError:
        status = response.status_code
        detail = _error_detail(response)
        if status in (401, 403):
            return AgentError(
                ErrorCode.UPSTREAM_ERROR, f"The model server refused the credentials (HTTP {status}); check LM_API_TOKEN"
            )
        if status == 404 and "model" in detail.lower():
            return AgentError(ErrorCode.MODEL_NOT_LOADED, f"The model server does not have the model: {detail}")
        if status == 404:
            return AgentError(
                ErrorCode.UPSTREAM_ERROR, f"HTTP 404 from the model server: is the base URL right ({self.base_url})?"
            )
        return AgentError(ErrorCode.UPSTREAM_ERROR, f"HTTP {status} from the model server: {detail}")

    # ------------------------------------------------------------------------------------------- the API

    async def chat(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        response_format: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        logprobs: bool = False,
        top_logprobs: int | None = None,
        extra: dict[str, Any] | None = None,
        deadline: Deadline | None = None,
        timeout: float | None = None,
    ) -> ChatResponse:
        """One chat completion. Raises AgentError (CONNECTION_FAILED, UPSTREAM_TIMEOUT, UPSTREAM_ERROR, ...).

        Args:
            messages: The conversation (OpenAI format); keys starting with ``_`` are not sent and a null
                ``content`` goes out as ``""``.
            model: The model id (default: the client's model).
            tools: Tool definitions (OpenAI format); sent only when not empty.
            tool_choice: ``none``, ``auto`` or ``required`` (LM Studio rejects the object form: ValueError);
                sent only with ``tools``.
            response_format: OpenAI's ``response_format`` (e.g. a JSON schema the reply must follow).
            max_tokens: The most tokens the reply may have.
            temperature: The sampling temperature.
            logprobs: Ask for the tokens' log-probabilities (:attr:`ChatResponse.logprobs`).
            top_logprobs: With ``logprobs``: how many alternatives to report at each position.
            extra: More body fields, merged in last (they override the ones above).
            deadline: The run's deadline (every wait, retries included, is clamped to it).
            timeout: Seconds this call may take, instead of the client's ``timeout``.
        """
        body = _chat_body(messages, model=model or self.model, tools=tools, tool_choice=tool_choice,
                               response_format=response_format, max_tokens=max_tokens, temperature=temperature,
                               logprobs=logprobs, top_logprobs=top_logprobs, extra=extra, stream=False)
        started = time.perf_counter()
        response = await self._request("POST", f"{self.base_url}/chat/completions", json_body=body, deadline=deadline,
                                       timeout=timeout)
        return _read_completion(response, time.perf_counter() - started)

    async def chat_stream(
        self,
        messages: list[dict[str, Any]],
        *,
        model: str | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        response_format: dict[str, Any] | None = None,
        max_tokens: int = 512,
        temperature: float = 0.0,
        extra: dict[str, Any] | None = None,
        deadline: Deadline | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[str | ChatResponse]:
        """One chat completion with ``stream: true``: yields the content's text deltas as they arrive, then
        exactly one :class:`ChatResponse` (the same one :meth:`chat` would give, assembled from the chunks).

        Every read waits at most the client's timeout (clamped by ``deadline``), and the whole stream ends by
        the deadline. Connect errors, 429 and 5xx before the first byte are retried as in :meth:`chat`; a
        server that ignores ``stream`` and answers JSON is read as one delta. Raises AgentError like :meth:`chat`.

        Args:
            messages: The conversation (OpenAI format), sent as by :meth:`chat`.
            model: The model id (default: the client's model).
            tools: Tool definitions (OpenAI format); sent only when not empty.
            tool_choice: ``none``, ``auto`` or ``required``; sent only with ``tools``.
            response_format: OpenAI's ``response_format``.
            max_tokens: The most tokens the reply may have.
            temperature: The sampling temperature.
            extra: More body fields, merged in last.
            deadline: The run's deadline: each read is clamped to it and the stream ends by it.
            timeout: Seconds each read may wait, instead of the client's ``timeout``.
        """
        import httpx

        body = _chat_body(messages, model=model or self.model, tools=tools, tool_choice=tool_choice,
                               response_format=response_format, max_tokens=max_tokens, temperature=temperature,
                               logprobs=False, top_logprobs=None, extra=extra, stream=True)
        started = time.perf_counter()
        response = await self._open_stream(body, deadline, timeout)
        try:
            if not response.is_success:
                await response.aread()
                raise self._status_error(response)
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                await response.aread()
                reply = _read_completion(response, time.perf_counter() - started)
                if reply.content:
                    yield reply.content
                yield reply
                return
            assembler = _StreamAssembler()
            left = deadline.remaining() if deadline is not None else None
            try:
                async with asyncio.timeout(left):
                    async for data in _sse_data(response.aiter_lines()):
                        if data.strip() == "[DONE]":
                            break
                        delta = assembler.add(data)
                        if delta:
                            yield delta
            except TimeoutError:
                raise AgentError(ErrorCode.UPSTREAM_TIMEOUT,
                                 f"The model server at {self.base_url} did not finish within the run's deadline") from None
            except httpx.TimeoutException:
                raise AgentError(ErrorCode.UPSTREAM_TIMEOUT,
                                 f"The model server at {self.base_url} stopped sending mid-answer") from None
            except httpx.TransportError as exc:
                raise AgentError(ErrorCode.CONNECTION_FAILED,
                                 f"The model server at {self.base_url} dropped the stream ({type(exc).__name__})") from None
            yield assembler.response(time.perf_counter() - started)
        finally:
            await response.aclose()

    async def _open_stream(self, body: dict[str, Any], deadline: Deadline | None,
                           timeout: float | None = None) -> httpx.Response:
        """``POST /chat/completions`` sent for streaming: the response, its head read (any status); connect
        errors, 429 and 5xx are retried as in :meth:`chat`."""
        return await self._send("POST", f"{self.base_url}/chat/completions", json_body=body, deadline=deadline,
                                timeout=timeout, stream=True)

    async def forward_chat(self, body: dict[str, Any], *, deadline: Deadline | None = None) -> Any:
        """A chat-completions body sent upstream as it is (the OpenAI-compatible pass-through): the answer's
        JSON. Raises AgentError like :meth:`chat`.

        Args:
            body: The request body, ``model`` included (``stream`` false or absent).
            deadline: The run's deadline (every wait is clamped to it).
        """
        response = await self._request("POST", f"{self.base_url}/chat/completions", json_body=body, deadline=deadline)
        return _json_or_error(response)

    async def forward_chat_stream(self, body: dict[str, Any], *, deadline: Deadline | None = None) -> AsyncIterator[bytes]:
        """A chat-completions body with ``stream: true`` sent upstream as it is: the upstream's Server-Sent
        Events as they come, one whole event per piece. A refusal before the first byte raises AgentError here
        (so it can still be an HTTP error); a failure mid-stream ends the stream with an ``{"error": ...}`` event.

        Args:
            body: The request body (``stream: true``).
            deadline: The run's deadline; the stream ends by it.
        """
        response = await self._open_stream(body, deadline)
        if not response.is_success:
            try:
                await response.aread()
                raise self._status_error(response)
            finally:
                await response.aclose()

        return _whole_events(response, deadline, self.base_url)

    async def list_models(self, *, deadline: Deadline | None = None) -> list[str]:
        """Ids from ``GET /v1/models``.

        Args:
            deadline: The run's deadline (the call also waits at most 10 s).
        """
        response = await self._request("GET", f"{self.base_url}/models", deadline=deadline, timeout=10.0)
        data = _json_or_error(response)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise AgentError(ErrorCode.UPSTREAM_ERROR, "The model server's /models answer has no 'data' list")
        return [str(m.get("id")) for m in items if isinstance(m, dict) and m.get("id")]

    async def model_info(self, model: str | None = None, *, deadline: Deadline | None = None) -> dict[str, Any] | None:
        """LM Studio's ``/api/v0/models`` entry for the model (with ``capabilities``), or None where the server
        has no such listing or does not list the model. Tried once, without retries.

        Args:
            model: The model id or path (default: the client's model).
            deadline: The run's deadline (the call also waits at most 10 s).
        """
        model = model or self.model
        try:
            response = await self._request(
                "GET", f"{self.server_root}/api/v0/models", deadline=deadline, timeout=10.0, retries=0
            )
            items = _json_or_error(response).get("data", [])
        except AgentError as exc:
            if exc.code in (ErrorCode.CONNECTION_FAILED, ErrorCode.UPSTREAM_TIMEOUT):
                raise
            return None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and model in (item.get("id"), item.get("path")):
                return item
        return None

    async def request_load(self, model: str | None = None, *, deadline: Deadline | None = None) -> bool:
        """Ask LM Studio (0.4+) to load the model through its native REST API; False where unsupported.

        Args:
            model: The model to load (default: the client's model).
            deadline: The run's deadline (loading may take minutes: the call waits at most 300 s).
        """
        try:
            await self._request(
                "POST", f"{self.server_root}/api/v1/models/load", json_body={"model": model or self.model},
                deadline=deadline, timeout=300.0, retries=0,
            )
            return True
        except AgentError as exc:
            if exc.code in (ErrorCode.CONNECTION_FAILED, ErrorCode.UPSTREAM_TIMEOUT):
                raise
            return False


# ------------------------------------------------------------------------------------------------ helpers


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()
