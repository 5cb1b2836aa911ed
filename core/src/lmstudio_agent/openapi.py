"""The OpenAPI document of the HTTP contract, generated from the contract's pydantic models."""

from __future__ import annotations

import json
from typing import Any

from pydantic.json_schema import models_json_schema

from .contract import MAX_BODY_BYTES, ErrorResponse, ExecuteRequest, ExecuteResponse, HealthResponse
from .errors import HTTP_STATUS

REF = "#/components/schemas/{model}"


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 for ``GET /health`` and ``POST /execute``, as served by the Lambda, the Worker and the hub."""
    _, schemas = models_json_schema(
        [(m, "validation") for m in (ExecuteRequest, ExecuteResponse, ErrorResponse, HealthResponse)],
        ref_template=REF,
    )

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": REF.format(model=name)}

    def error(description: str) -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": ref("ErrorResponse")}}}

    statuses = sorted(set(HTTP_STATUS.values()) - {404, 405})
    codes_by_status = {s: sorted(c.value for c, st in HTTP_STATUS.items() if st == s) for s in statuses}
    execute_errors = {str(s): error("Error codes: " + ", ".join(codes_by_status[s])) for s in statuses}
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
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": ref("ExecuteRequest")}}},
                    "responses": {
                        "200": {"description": "The agent's transcript",
                                "content": {"application/json": {"schema": ref("ExecuteResponse")}}},
                        **execute_errors,
                    },
                }
            },
        },
    }


def openapi_json() -> str:
    return json.dumps(openapi_document(), indent=2, sort_keys=False) + "\n"
