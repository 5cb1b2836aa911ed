"""The limits every uvicorn this project runs gets (gateway-model, the bridge hub's HTTP API).

* **Slow headers.** uvicorn times out only an idle keep-alive connection; a client that sends a request head
  a byte at a time holds its connection for ever. :func:`header_timeout_protocol` is uvicorn's own h11
  protocol with one timer more: the head of each request must arrive within ``HEADER_TIMEOUT_SECONDS`` of
  the connection opening (or of the previous response), or the connection is closed.
* **Head size.** h11's limit on an incomplete request head (``MAX_HEADER_BYTES``): a larger one is a 400.
* **Query strings in logs.** A client may put a key in the query string (``?api_key=...``); uvicorn's access
  log writes the full path. :class:`RedactQueryStrings` cuts every query string from it.

uvicorn is imported only by :func:`header_timeout_protocol`, so importing this module costs nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

HEADER_TIMEOUT_SECONDS = 10.0
MAX_HEADER_BYTES = 16 * 1024
KEEP_ALIVE_SECONDS = 5
ACCESS_LOGGER = "uvicorn.access"


class RedactQueryStrings(logging.Filter):
    """Drops the query string from uvicorn's access-log lines (``"GET /v1/models?<redacted> HTTP/1.1" 200``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Strip query strings from the record's message and arguments; always keeps the record.

        Args:
            record: A log record.
        """
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(_strip_query(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str) and "?" in record.msg:
            record.msg = _strip_query(record.msg)
        return True


def _strip_query(text: str) -> str:
    path, sep, _ = text.partition("?")
    return f"{path}?<redacted>" if sep else text


def install_access_log_redaction() -> None:
    """Put :class:`RedactQueryStrings` on uvicorn's access logger (idempotent). Call it after uvicorn has
    configured logging (after ``uvicorn.Config(...)``), since a logging config may replace handlers."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQueryStrings) for f in logger.filters):
        logger.addFilter(RedactQueryStrings())
    for handler in logger.handlers:
        if not any(isinstance(f, RedactQueryStrings) for f in handler.filters):
            handler.addFilter(RedactQueryStrings())


def header_timeout_protocol(timeout: float = HEADER_TIMEOUT_SECONDS) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol class, closing a connection whose request head is not in after ``timeout`` s.

    Args:
        timeout: Seconds a client has to send a request's head.
    """
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutH11Protocol(H11Protocol):
        _head_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_head_timer()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_head_timer()  # the next request on this connection gets the same limit

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_timer()
            super().connection_lost(exc)

        def _arm_head_timer(self) -> None:
            self._disarm_head_timer()
            if not self.transport.is_closing():
                self._head_timer = self.loop.call_later(timeout, self._on_head_timeout, self.cycle)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _on_head_timeout(self, cycle_when_armed: Any) -> None:
            self._head_timer = None
            if self.cycle is not cycle_when_armed and self.cycle is not None:
                return  # a new request's head arrived: its response re-arms the timer
            if self.transport.is_closing():
                return
            self.logger.info("closing a connection whose request head did not arrive within %gs", timeout)
            self.transport.close()

    return HeaderTimeoutH11Protocol


def uvicorn_limits() -> dict[str, Any]:
    """The keyword arguments for ``uvicorn.Config`` that apply these limits."""
    return {
        "http": header_timeout_protocol(),
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
    }
