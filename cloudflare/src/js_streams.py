"""A streamed answer on Workers: a ``Response`` over a TransformStream's readable side, written by a task as
the chunks come (the pattern of the SDK's own ASGI adapter). Used by the Worker's streamed ``/execute`` and by
an agent's Durable Object for a streamed task. The Workers runtime keeps the request alive while its body is
being written; a reader that goes away makes the next write fail, which stops the body (``aclose``).
"""

from __future__ import annotations

import asyncio
import logging

from workers import Response

from lmstudio_agent.endpoint.streaming import StreamResponse

logger = logging.getLogger("lmstudio_agent.worker")

# Streams being written: a task that nothing references can be collected before it finishes.
_PUMPS: set[asyncio.Task[None]] = set()


def to_stream_response(result: StreamResponse) -> Response:
    """A streamed answer: a ``Response`` over a TransformStream's readable side, written by a task as the
    chunks come (the pattern of the SDK's own ASGI adapter). The Workers runtime keeps the request alive while
    its body is being written; a client that goes away makes the next write fail, which stops the run."""
    from js import TextEncoder, TransformStream  # the Workers runtime's JS globals

    pipe = TransformStream.new()
    writer = pipe.writable.getWriter()
    encoder = TextEncoder.new()

    async def pump() -> None:
        try:
            async for chunk in result.body:
                await writer.write(encoder.encode(chunk.decode("utf-8")))
        except Exception:  # the client left (the write rejected) or the run broke: stop, say nothing more
            logger.info("a streamed answer stopped early", exc_info=True)
        finally:
            aclose = getattr(result.body, "aclose", None)
            if aclose is not None:
                await aclose()
            try:
                await writer.close()
            except Exception:
                pass

    task = asyncio.ensure_future(pump())
    _PUMPS.add(task)
    task.add_done_callback(_PUMPS.discard)
    return Response(pipe.readable, status=result.status, headers=result.all_headers())
