"""The OpenAPI document of the HTTP contract, generated from the contract's pydantic models."""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from .contract import MAX_BODY_BYTES, ErrorResponse, ExecuteRequest, ExecuteResponse, HealthResponse
from ..errors import HTTP_STATUS
from .conversation import ChatRequest
from ..agent.events import RunEvent
from .openai_api import AGENT_MODEL, ChatCompletionRequest, OpenAIError
from .run_state import RunCreated, RunView
from .streaming import HEARTBEAT_SECONDS, PROTOCOL_VERSION

REF = "#/components/schemas/{model}"


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 for ``GET /health`` and ``POST /execute``, as served by the Lambda, the Worker and the hub."""
    _, schemas = models_json_schema(
        [(m, "validation") for m in (ExecuteRequest, ExecuteResponse, ErrorResponse, HealthResponse, RunCreated,
                                     RunView, RunEvent, ChatRequest, ChatCompletionRequest, OpenAIError)],
        ref_template=REF,
    )

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": REF.format(model=name)}

    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref("ErrorResponse")}}}

    def openai_error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref("OpenAIError")}}}

    statuses = sorted(set(HTTP_STATUS.values()) - {404, 405})
    codes_by_status = {s: sorted(c.value for c, st in HTTP_STATUS.items() if st == s) for s in statuses}
    execute_errors = {str(s): error("Error codes: " + ", ".join(codes_by_status[s])) for s in statuses}
    keyed: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
    run_id = {"name": "run_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^run_[0-9a-f]{32}$"}}
    not_found = {"404": error("NOT_FOUND: no such run for this key (or it expired)")}
    auth_errors = {"401": error("UNAUTHORIZED"), "403": error("FORBIDDEN")}
    event_stream: dict[str, Any] = {
        "description": (
            f"Server-Sent Events in the Vercel AI SDK UI message stream protocol (AI SDK 5; header "
            f"x-vercel-ai-ui-message-stream: {PROTOCOL_VERSION}). Each event is `data: <chunk JSON>`: start, "
            "start-step / finish-step per model round, text-start / text-delta / text-end, tool-input-available, "
            "tool-output-available (output: the JSON value the tool returned) or tool-output-error, data-agent-error "
            "(a recovered error), message-metadata (success: false, code) then error (errorText '<CODE>: <message>') "
            "for a failed run, finish (messageMetadata: success, cached, code), then `data: [DONE]`. A comment "
            f"line (`: keep-alive`) every {HEARTBEAT_SECONDS:g} s keeps proxies from cutting an idle stream. "
            "See docs/readme/streaming.md."),
        "headers": {"x-vercel-ai-ui-message-stream": {"schema": {"type": "string", "const": PROTOCOL_VERSION}}},
        # One schema per event (what an SSE parser yields): data is a UI message stream chunk as JSON, or [DONE].
        "content": {"text/event-stream": {"schema": {
            "type": "object",
            "properties": {"data": {"type": "string"}, "event": {"type": "string"}, "id": {"type": "string"},
                           "retry": {"type": "integer"}},
        }}},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "LM Studio Agent API",
            "version": "1.0.0",
            "description": "Run a tool-using agent on a small local model. Every route except /health needs the "
                           "client key (Authorization: Bearer <key> or X-Api-Key). Send 'Cache-Control: no-cache' "
                           f"to skip the result cache. Bodies are limited to {MAX_BODY_BYTES} bytes.",
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            },
        },
        "paths": {
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Health check (no key needed)",
                    "security": [],
                    "responses": {"200": {"description": "Service is healthy",
                                          "content": {"application/json": {"schema": ref("HealthResponse")}}}},
                }
            },
            "/execute": {
                "post": {
                    "operationId": "execute",
                    "summary": "Execute an agent instruction",
                    "security": [{"bearer": []}, {"apiKey": []}],
                    "description": "Answers JSON, or streams the run as Server-Sent Events when the request has "
                                   "'Accept: text/event-stream' or \"stream\": true, or is the body the AI SDK's "
                                   "useChat sends by default (ChatRequest: messages as UI messages; the last user "
                                   "message is the instruction, the conversation so far is context). The Lambda "
                                   "sends the stream whole, once the run is over. A request refused before the run "
                                   "starts gets the JSON error either way.",
                    "parameters": [{"name": "Accept", "in": "header", "required": False,
                                    "schema": {"type": "string", "example": "text/event-stream"}}],
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": {
                                        "oneOf": [ref("ExecuteRequest"), ref("ChatRequest")]}}}},
                    "responses": {
                        "200": {"description": "The agent's transcript (JSON), or the run as it happens (SSE)",
                                "headers": event_stream["headers"],
                                "content": {"application/json": {"schema": ref("ExecuteResponse")},
                                            **event_stream["content"]}},
                        **execute_errors,
                    },
                }
            },
            "/v1/models": {
                "get": {
                    "operationId": "listModels",
                    "summary": "OpenAI-compatible: the agent and the models behind the deployment",
                    "security": keyed,
                    "responses": {
                        "200": {"description": f"The models: {AGENT_MODEL!r} first, then those passed through",
                                "content": {"application/json": {"schema": {
                                    "type": "object", "required": ["object", "data"],
                                    "properties": {"object": {"const": "list"}, "data": {"type": "array", "items": {
                                        "type": "object", "required": ["id", "object", "owned_by"],
                                        "properties": {"id": {"type": "string"}, "object": {"const": "model"},
                                                       "created": {"type": "integer"},
                                                       "owned_by": {"type": "string"}}}}}}}}},
                        "401": openai_error("UNAUTHORIZED"), "403": openai_error("FORBIDDEN"),
                        "500": openai_error("INTERNAL_ERROR (a secret could not be read)"),
                    },
                }
            },
            "/v1/chat/completions": {
                "post": {
                    "operationId": "chatCompletions",
                    "summary": "OpenAI-compatible chat completions: the agent, or a model behind the deployment",
                    "description": f"model {AGENT_MODEL!r}: the agent runs on the deployment's tools (client "
                                   "'tools' are refused) and answers as one assistant message. Any other model "
                                   "GET /v1/models lists: the request passes through to it as sent, tool calls "
                                   "and streaming preserved. stream: true answers chat.completion.chunk events "
                                   "(a failure mid-stream is an {\"error\": ...} event), then data: [DONE]. "
                                   "Errors are OpenAI's shape; code is the contract's error code.",
                    "security": keyed,
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": ref("ChatCompletionRequest")}}},
                    "responses": {
                        "200": {"description": "A chat.completion (JSON), or chat.completion.chunk events (SSE)",
                                "content": {"application/json": {"schema": {"type": "object"}},
                                            **event_stream["content"]}},
                        **{str(s): openai_error("Error codes: " + ", ".join(codes_by_status[s])) for s in statuses},
                        "404": openai_error("NOT_FOUND: a model the deployment does not serve (param: model)"),
                    },
                }
            },
            "/runs": {
                "post": {
                    "operationId": "createRun",
                    "summary": "Start an async run (the /execute body); it goes on past this request",
                    "security": keyed,
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": ref("ExecuteRequest")}}},
                    "responses": {
                        "202": {"description": "Queued; poll GET /runs/{run_id} or follow its events",
                                "headers": {"Location": {"schema": {"type": "string"}}},
                                "content": {"application/json": {"schema": ref("RunCreated")}}},
                        "400": error("INVALID_REQUEST, INVALID_INSTRUCTION, UNKNOWN_TOOL"),
                        **auth_errors,
                    },
                }
            },
            "/runs/{run_id}": {
                "parameters": [run_id],
                "get": {
                    "operationId": "getRun",
                    "summary": "A run's status, its events so far and, once over, its result in /execute's shape",
                    "security": keyed,
                    "responses": {"200": {"description": "The run",
                                          "content": {"application/json": {"schema": ref("RunView")}}},
                                  **auth_errors, **not_found},
                },
                "delete": {
                    "operationId": "cancelRun",
                    "summary": "Cancel a queued or running run (a finished one is left as it is)",
                    "security": keyed,
                    "responses": {"200": {"description": "The run's status after the request",
                                          "content": {"application/json": {"schema": {
                                              "type": "object", "required": ["run_id", "status"],
                                              "properties": {"run_id": {"type": "string"},
                                                             "status": {"type": "string"}}}}}},
                                  **auth_errors, **not_found},
                },
            },
            "/runs/{run_id}/events": {
                "parameters": [run_id],
                "get": {
                    "operationId": "runEvents",
                    "summary": "A run's events as the UI message stream, from the start or after Last-Event-ID",
                    "description": "Every event carries an `id:` (its number from 0); send the last one you saw as "
                                   "Last-Event-ID to resume. On the Lambda the answer holds the events there are "
                                   "now and ends with `retry:` until the run is over (EventSource reconnects).",
                    "security": keyed,
                    "parameters": [{"name": "Last-Event-ID", "in": "header", "required": False,
                                    "schema": {"type": "string", "pattern": "^[0-9]+$"}}],
                    "responses": {"200": event_stream, "400": error("INVALID_REQUEST (a malformed Last-Event-ID)"),
                                  **auth_errors, **not_found},
                },
            },
        },
    }


def openapi_json() -> str:
    """:func:`openapi_document` as indented JSON text with a final newline (the committed ``openapi.json``)."""
    return json.dumps(openapi_document(), indent=2, sort_keys=False) + "\n"
