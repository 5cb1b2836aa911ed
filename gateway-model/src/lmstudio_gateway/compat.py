"""The parts of LM Studio's API that the core client meets, on top of llama_cpp.server.

* Structured output: LM Studio (and OpenAI) take ``{"type": "json_schema", "json_schema": {"name", "schema"}}``;
  llama_cpp.server takes ``{"type": "json_object", "schema": ...}`` and rejects the former.
  :func:`translate_response_format` rewrites one into the other (applied by ``body.RequestBodyMiddleware``).
* ``GET /api/v0/models``: LM Studio's legacy listing, with ``capabilities`` (empty: the embedded model has
  no native tool use, so the core's auto-detection falls back to grammar-constrained JSON).
* ``GET /health``: open, for probes and start-up waits.
* ``POST /extras/detokenize``: llama_cpp.server's route decodes the token bytes strictly, so ids that end in
  the middle of a UTF-8 character (a prefix of an emoji's tokens) were a 500; :func:`detokenize_router`
  serves the same route decoding with ``errors="replace"`` (U+FFFD for the partial character), as Hugging
  Face tokenizers' ``decode`` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from llama_cpp.server.app import authenticate, get_llama_proxy
from llama_cpp.server.model import LlamaProxy
from llama_cpp.server.types import DetokenizeInputRequest, DetokenizeInputResponse
from llama_cpp.llama_grammar import json_schema_to_gbnf
from lmstudio_agent.endpoint.contract import health_response

from lmstudio_gateway.errors import openai_error
from lmstudio_gateway.gguf_info import describe


class ResponseFormatError(ValueError):
    """A ``response_format`` that cannot be served; the message goes back to the client."""


def translate_response_format(response_format: Any) -> Any:
    """LM Studio's ``json_schema`` form as llama-cpp-python's grammar-constrained ``json_object`` form.

    Other forms pass unchanged. The schema is compiled to a grammar here because llama-cpp-python, when
    it cannot compile one, silently falls back to unconstrained JSON; a client asking for a schema
    should get either that schema or a clear 400.
    """
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return response_format
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        raise ResponseFormatError("response_format.json_schema must be an object with a 'schema' field")
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        raise ResponseFormatError("response_format.json_schema.schema must be a JSON schema object")
    try:
        json_schema_to_gbnf(json.dumps(schema))
    except Exception as exc:  # the converter raises bare Exceptions/KeyErrors on what it does not support
        raise ResponseFormatError(
            f"unsupported JSON schema in response_format: {exc or type(exc).__name__}"
        ) from None
    return {"type": "json_object", "schema": schema}


@dataclass(frozen=True)
class ServedModel:
    """The one model this server hosts, as its listings describe it."""

    alias: str
    path: Path
    n_ctx: int

    def lmstudio_entry(self) -> dict[str, Any]:
        """The model as LM Studio's ``GET /api/v0/models`` lists it."""
        info = describe(self.path)
        return {
            "id": self.alias,
            "object": "model",
            "type": "llm",
            "publisher": info.organization or "local",
            "arch": info.architecture,
            "compatibility_type": "gguf",
            "quantization": info.quantization,
            "state": "loaded",
            "max_context_length": info.context_length or self.n_ctx,
            "loaded_context_length": self.n_ctx,
            # No "tool_use": the model has no native tool-call template, so clients use structured output.
            "capabilities": [],
        }


DETOKENIZE_PATH = "/extras/detokenize"


def detokenize_router() -> APIRouter:
    """llama_cpp.server's ``POST /extras/detokenize`` (same request, response, key check and model lock), whose
    text is decoded with ``errors="replace"``: ids that end mid-character give U+FFFD for that character
    rather than a 500. It replaces llama_cpp's route (``server.build_app``)."""
    router = APIRouter()

    @router.post(DETOKENIZE_PATH, summary="Detokenize", dependencies=[Depends(authenticate)], tags=["Extras"],
                 description="The text of the token ids. A character whose bytes the ids only begin (ids that "
                             "end in the middle of a UTF-8 character) is U+FFFD.")
    async def detokenize(body: DetokenizeInputRequest,
                         llama_proxy: Annotated[LlamaProxy, Depends(get_llama_proxy)]) -> DetokenizeInputResponse:
        text = llama_proxy(body.model).detokenize(body.tokens).decode("utf-8", errors="replace")
        return DetokenizeInputResponse(text=text)

    return router


def lmstudio_router(model: ServedModel) -> APIRouter:
    """``GET /health`` and LM Studio's ``GET /api/v0/models[/{id}]`` for the served model."""
    router = APIRouter()
    entry = model.lmstudio_entry()  # read once: the file does not change while it is served

    @router.get("/health", tags=["Gateway"])
    async def health() -> dict[str, Any]:
        return {**health_response().body, "model": model.alias}

    @router.get("/api/v0/models", tags=["LM Studio"])
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [entry]}

    @router.get("/api/v0/models/{model_id:path}", tags=["LM Studio"], response_model=None)
    async def get_model(model_id: str) -> dict[str, Any] | JSONResponse:
        if model_id != model.alias:
            error = openai_error(f"Model '{model_id}' not found.", type_="invalid_request_error", code="model_not_found")
            return JSONResponse(error, status_code=404)
        return entry

    return router
