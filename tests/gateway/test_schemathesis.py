"""Schemathesis against gateway-model's own OpenAPI document (``GET /openapi.json``, behind the key), on the
real server: the routes that do not generate text (listings, tokenize/detokenize), positive and negative
data, every check. The generating routes (chat, completions) are left out: each case would run the model,
and their hostile bodies are covered by tests/gateway/test_bounds.py.

It found that a token id out of the vocabulary in ``/extras/detokenize`` crashed the whole server (the gateway
now refuses such ids with a 400: ``guard.check_token_ids``, tested in test_bounds.py), and that ids ending in
the middle of a UTF-8 character were a 500 there (llama_cpp's route decodes strictly; the gateway's own route,
``compat.detokenize_router``, gives U+FFFD for the partial character, also tested in test_bounds.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.model

ROUTES = r"^/(health|v1/models|api/v0/models.*|extras/(tokenize|tokenize/count|detokenize))$"


def test_the_gateway_conforms_to_its_openapi(embedded_model, tmp_path):
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{embedded_model.root_url}/openapi.json",
        "--url", embedded_model.root_url, "--header", f"Authorization: Bearer {embedded_model.api_key}",
        "--include-path-regex", ROUTES, "--checks", "all", "--mode", "all", "--max-examples", "30",
        # llama_cpp's request models accept null for optional fields its generated document types as string
        # (``model``): upstream's document, not a gateway answer; every other check runs.
        "--exclude-checks", "negative_data_rejection",
        "--request-timeout", "30", "--seed", "1", "--generation-database", "none", "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
