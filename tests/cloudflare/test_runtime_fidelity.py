"""The runtime stand-ins (tests/cloudflare/runtime.py) against the real Workers Python SDK.

workers-runtime-sdk is installed (mk/worker.mk) but cannot be imported outside the runtime (it imports
``js``), so its source is read with ``ast``: the stand-ins must take the same parameters and offer the same
members the Worker uses, or these tests fail when the SDK changes under them.
"""

from __future__ import annotations

import ast
import inspect
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

from tests.cloudflare import runtime

SDK = "workers-runtime-sdk"
WORKER_DIR = Path(__file__).resolve().parents[2] / "cloudflare"


def sdk_module(relpath: str) -> ast.Module:
    try:
        dist = metadata.distribution(SDK)
    except metadata.PackageNotFoundError:
        pytest.fail(f"{SDK} is not installed: run `make worker-deps` (the $(STAMPS)/worker stamp)")
    return ast.parse(Path(dist.locate_file(relpath)).read_text())


def sdk_class(relpath: str, name: str) -> ast.ClassDef:
    for node in sdk_module(relpath).body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise AssertionError(f"{name} not found in {SDK}'s {relpath}")


def members(cls: ast.ClassDef) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {n.name: n for n in cls.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    return [a.arg for a in fn.args.posonlyargs + fn.args.args]


def test_the_sdk_pin_matches_the_worker_project() -> None:
    pyproject = tomllib.loads((WORKER_DIR / "pyproject.toml").read_text())
    pinned = [d for d in pyproject["dependency-groups"]["dev"] if d.startswith(SDK + "==")]
    assert pinned == [f"{SDK}=={metadata.version(SDK)}"]


def test_response_takes_the_sdks_parameters() -> None:
    real = params(members(sdk_class("workers/response.py", "Response"))["__init__"])
    standin = list(inspect.signature(runtime.Response.__init__).parameters)
    assert standin == real == ["self", "body", "status", "status_text", "headers", "web_socket"]


def test_worker_entrypoint_is_built_with_ctx_and_env() -> None:
    real = members(sdk_class("workers/entrypoints.py", "WorkerEntrypoint"))["__init__"]
    assert params(real) == ["self", "ctx", "env"]
    assert list(inspect.signature(runtime.WorkerEntrypoint.__init__).parameters) == ["self", "ctx", "env"]


def test_request_offers_what_the_sdk_request_offers() -> None:
    real = members(sdk_class("workers/request.py", "Request"))
    for name in ("method", "url", "headers", "body_used", "js_object"):
        assert name in real, name
        assert isinstance(inspect.getattr_static(runtime.Request, name), property), name
    for name in ("text", "json", "bytes"):
        assert isinstance(real[name], ast.AsyncFunctionDef), name
        assert inspect.iscoroutinefunction(getattr(runtime.Request, name)), name
    # The SDK maps the JS method through http.HTTPMethod[...], so the stand-in must too.
    assert "HTTPMethod" in ast.unparse(real["method"])


def test_headers_are_the_sdks_http_message_mapping() -> None:
    real = sdk_class("workers/utils.py", "HTTPMessageMapping")
    assert [ast.unparse(b) for b in real.bases] == ["http.client.HTTPMessage", "Mapping"]
    assert issubclass(runtime.HTTPMessageMapping, runtime.http.client.HTTPMessage)


def test_kv_bindings_pass_python_keywords_through_to_js() -> None:
    """``await env.CACHE.put(key, value, expirationTtl=n)``: the SDK wraps KvNamespace bindings and forwards
    keyword arguments to the JS call (Pyodide turns them into the trailing options object)."""
    env_wrapper = sdk_class("workers/rpc.py", "_EnvWrapper")
    binding_types = next(
        n for n in env_wrapper.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "_BINDING_TYPES"
    )
    assert "KvNamespace" in ast.unparse(binding_types.value)
    invoke = members(sdk_class("workers/rpc.py", "_BindingWrapper"))["_conver_and_invoke"]
    assert "fn(*js_args, **js_kwargs)" in ast.unparse(invoke)


def test_durable_objects_are_built_with_ctx_and_env_and_stubs_fetch_through_the_sdk() -> None:
    real = members(sdk_class("workers/entrypoints.py", "DurableObject"))["__init__"]
    assert params(real) == ["self", "ctx", "env"]
    assert list(inspect.signature(runtime.DurableObject.__init__).parameters) == ["self", "ctx", "env"]
    # A namespace binding's get() gives a fetcher whose fetch() is the SDK's fetch(url, **init) form.
    namespace = members(sdk_class("workers/rpc.py", "_DurableObjectNamespaceWrapper"))
    assert "get" in namespace
    fetcher = members(sdk_class("workers/rpc.py", "_FetcherWrapper"))
    assert "fetch" in fetcher
