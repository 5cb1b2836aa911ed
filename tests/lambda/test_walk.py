"""The walk of one request (issue 21, item 4): the files a Lambda ``instruction`` crosses on its way to the
model, read off the call stack at the moment the model's request is sent, and the request's one validation
(in contract.py, which the router calls before it hands the request on). README lists the same files."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import httpx
import pytest

from lmstudio_agent.endpoint.contract import ExecuteRequest
from tests.support.openai_stub import text

from tests.endpoints.conftest import CLIENT_KEY

ROOT = Path(__file__).resolve().parents[2]
MAX_FILES = 8
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


@pytest.mark.parametrize("tool_mode", ["native", "constrained"])
def test_a_lambda_instruction_reaches_the_model_through_at_most_eight_files_validated_once(
        make_lambda, openai_stub, monkeypatch, tool_mode):
    walks: list[list[str]] = []
    validations: list[object] = []
    send, validate = httpx.AsyncClient.send, ExecuteRequest.model_validate

    async def recording_send(self, request, *args, **kwargs):
        if request.url.path.endswith("/chat/completions"):
            files = []
            for frame in traceback.extract_stack():
                path = Path(frame.filename).resolve()
                # the project's own files: not the tests, not what a venv inside the clone installed
                if (path.is_file() and path.is_relative_to(ROOT)
                        and not {"tests", ".venv"} & set(path.relative_to(ROOT).parts)):
                    rel = str(path.relative_to(ROOT))
                    if rel not in files:
                        files.append(rel)
            walks.append(files)
        return await send(self, request, *args, **kwargs)

    def counting_validate(data, *args, **kwargs):
        validations.append(data)
        return validate(data, *args, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "send", recording_send)
    monkeypatch.setattr(ExecuteRequest, "model_validate", counting_validate)
    handler = make_lambda(tool_mode=tool_mode)
    openai_stub.enqueue(text("Hello."))
    response = handler.request("POST", "/execute", headers=AUTH, body=json.dumps({"instruction": "Say hello"}))
    assert response.status == 200, response.body
    assert walks
    for walk in walks:  # each round's request to the model
        print("the walk:", *walk, sep="\n  ")
        assert walk[0] == "lambda/app.py" and walk[-1].endswith("client.py"), walk
        assert len(walk + ["core/src/lmstudio_agent/endpoint/contract.py"]) <= MAX_FILES, walk
    assert len(validations) == 1
