"""The endpoint backend split by lifetime: the service (settings, registry, detected modes) lives for the
process; each backend (the HTTP client) for one request. Real HTTP to the loopback OpenAI-protocol stub."""

from __future__ import annotations

import pytest

from lmstudio_agent.endpoint.contract import ToolSelection
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.model.modes import ToolMode
from lmstudio_agent.endpoint.backend import (
    AgentBackend,
    EndpointService,
    EndpointSettings,
    SettingsCache,
    UnconfiguredBackend,
    load_settings,
)
from tests.support.openai_stub import MODEL_ID, text
from tests.support.tools import echo_and_email


def model_listings(stub) -> int:
    return sum(1 for r in stub.requests if r["method"] == "GET" and "models" in r["path"])


async def test_the_mode_is_detected_once_per_model_across_requests(openai_stub):
    service = EndpointService(EndpointSettings(lm_studio_url=openai_stub.base_url, model=MODEL_ID, tool_mode="auto"))
    openai_stub.enqueue(text("one"), text("two"))
    for _ in range(2):  # two requests, each with its own backend (HTTP client), as a Worker runs them
        backend = service.backend()
        try:
            transcript = await backend.run("Say something", ToolSelection((), False), MODEL_ID, Deadline(5))
        finally:
            await backend.aclose()
        assert transcript[-1].type == "result"
    assert model_listings(openai_stub) == 1
    assert service.remembered_models() == [MODEL_ID]


async def test_remembered_modes_are_bounded_least_recently_used_first_out(openai_stub):
    service = EndpointService(EndpointSettings(lm_studio_url=openai_stub.base_url, tool_mode="auto"), max_models=2)
    backend = service.backend()
    try:
        for name in ("a-model", "b-model", "a-model", "c-model"):
            await service.mode_for(backend.client, name)
    finally:
        await backend.aclose()
    assert service.remembered_models() == ["a-model", "c-model"]
    assert model_listings(openai_stub) == 3  # a, b, c: the second a was remembered


async def test_a_configured_mode_is_never_detected(openai_stub):
    service = EndpointService(EndpointSettings(lm_studio_url=openai_stub.base_url, tool_mode="parsed"))
    backend = service.backend()
    assert await service.mode_for(backend.client, "anything") is ToolMode.PARSED
    assert model_listings(openai_stub) == 0 and service.remembered_models() == []


def test_backends_share_the_services_registry_and_scope():
    service = EndpointService(EndpointSettings(allowed_tools=["analyze_sentiment"]))
    first, second = service.backend(), service.backend()
    assert first.registry is second.registry is service.registry
    assert first.client is not second.client
    assert first.cache_scope() == second.cache_scope() == service.cache_scope()
    assert service.registry.names() == ["analyze_sentiment"]
    # The one-argument form still builds its own service from settings.
    assert AgentBackend(EndpointSettings()).cache_scope() == EndpointService(EndpointSettings()).cache_scope()


def test_the_deadline_clamp():
    settings = EndpointSettings(deadline_seconds=25)
    assert settings.options().deadline_seconds == 25
    assert settings.options(limit_seconds=90).deadline_seconds == 25
    assert settings.options(limit_seconds=7.5).deadline_seconds == 7.5
    assert settings.options(limit_seconds=-3).deadline_seconds == 1.0  # never below a second


def test_bad_settings_name_the_fields_and_never_a_value(caplog):
    with pytest.raises(AgentError) as info:
        load_settings({"EXECUTE_DEADLINE_SECONDS": "soon", "LM_TOOL_MODE": "telepathy",
                       "LM_STUDIO_TOKEN": "secret-token-value"})
    assert info.value.code is ErrorCode.INTERNAL_ERROR
    assert "deadline_seconds" in info.value.message and "tool_mode" in info.value.message
    assert "soon" not in info.value.message and "telepathy" not in info.value.message
    assert "secret-token-value" not in caplog.text


async def test_an_unconfigured_backend_answers_every_execute_with_the_reason():
    error = AgentError(ErrorCode.INTERNAL_ERROR, "The endpoint is misconfigured: invalid model")
    backend = UnconfiguredBackend(error)
    with pytest.raises(AgentError, match="invalid model"):
        backend.select_tools([])
    with pytest.raises(AgentError, match="invalid model"):
        await backend.run("x", ToolSelection((), False), "m", Deadline(1))


def test_one_conversion_of_a_validation_error_for_every_layer():
    from pydantic import BaseModel, ValidationError, field_validator

    from lmstudio_agent.errors import validation_problems

    class Body(BaseModel):
        count: int
        name: str

        @field_validator("name")
        @classmethod
        def _name(cls, value: str) -> str:
            if not value:
                raise ValueError("must not be empty")
            return value

    with pytest.raises(ValidationError) as info:
        Body.model_validate({"count": "secret-looking-input", "name": ""})
    text = validation_problems(info.value, root="body")
    assert text == "count: Input should be a valid integer, unable to parse string as an integer; name: must not be empty"
    assert "secret-looking-input" not in text
    assert validation_problems(info.value, limit=1).startswith("count:") and ";" not in validation_problems(info.value, limit=1)
    with pytest.raises(ValidationError) as top:
        Body.model_validate("not an object")
    assert validation_problems(top.value, root="body").startswith("body: ")
    assert validation_problems(top.value).startswith("Input should be")


# ---------------------------------------------------------------- the rules where they live (issue 21, item 9)




def test_allowed_tools_is_read_from_the_environment_and_narrows_what_a_request_may_select():
    settings = EndpointSettings.from_env({"ALLOWED_TOOLS": " echo , ,"})
    assert settings.allowed_tools == ["echo"]
    service = EndpointService(settings, echo_and_email())
    assert service.registry.names() == ["echo"]
    assert service.select_tools([]).names == ("echo",)
    with pytest.raises(AgentError) as info:
        service.select_tools(["send_email"])  # registered, but not on the allow-list
    assert info.value.code is ErrorCode.UNKNOWN_TOOL
    assert EndpointService(EndpointSettings.from_env({"ALLOWED_TOOLS": ""}), echo_and_email()).registry.names() == \
        ["echo", "send_email"]  # unset (empty): every registered tool


def test_no_tools_selects_the_whole_allow_list_with_its_side_effects():
    service = EndpointService(EndpointSettings(), echo_and_email())
    everything = service.select_tools([])
    assert set(everything.names) == {"echo", "send_email"} and everything.has_side_effects
    assert not service.select_tools(["echo"]).has_side_effects
    narrowed = EndpointService(EndpointSettings(allowed_tools=["echo"]), echo_and_email())
    assert not narrowed.select_tools([]).has_side_effects  # the side effect is off the allow-list
    # The selection is made once: the backend's run takes the registry it carries.
    assert everything.tools is not None and everything.tools.names() == list(everything.names)


def test_settings_are_validated_once_per_process_and_a_bad_one_stays_a_clear_error(caplog):
    cache = SettingsCache()
    env = {"LM_STUDIO_URL": "http://127.0.0.1:1/v1", "MAX_ROUNDS": "3"}
    first = cache.load_settings(env)
    assert cache.load_settings(dict(env)) is first  # the same values: not validated again
    assert cache.load_settings({**env, "MAX_ROUNDS": "5"}).max_rounds == 5
    bad = {**env, "MAX_ROUNDS": "many", "LM_STUDIO_TOKEN": "sk-secret"}
    for _ in range(2):
        with pytest.raises(AgentError) as info:
            cache.load_settings(bad)
        assert info.value.code is ErrorCode.INTERNAL_ERROR and "max_rounds" in info.value.message
        assert "sk-secret" not in info.value.message
    assert caplog.text.count("configuration is invalid") == 1
