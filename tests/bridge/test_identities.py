"""Agent identities on the hub: per-agent tokens bound to tools, the cache keyed by the tools' owners, and
revoking one agent (the agents file re-read on change, or on SIGHUP) without touching the others."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus

from lmstudio_agent.endpoint.cache import MemoryCacheStore
from lmstudio_agent.endpoint.contract import ExecuteOptions
from lmstudio_hub import Identities, IdentityError, IdentitySource, parse_identities
from lmstudio_hub.http import HubHttpApp, HubHttpServer

from .helpers import raw_connect, recv_json, register_frame, send_json
from .test_cli_and_real_agents import CLI, free_port, wait_for_line

ALICE = "alice-token-0123456789abcdef"
MALLORY = "mallory-token-0123456789abcd"
CLIENT_KEY = "client-key-for-identity-tests"
AGENTS = f"""
# agent_id: token  tools
alice: {ALICE}  extract_data,analyze_sentiment
mallory: {MALLORY} analyze_sentiment
"""


async def register(url: str, token: str, agent_id: str, **data):
    conn = await raw_connect(url, token=token)
    await send_json(conn, register_frame(agent_id, **data))
    return conn, await recv_json(conn)


async def expect_closed(conn, code: int, timeout: float = 5.0) -> None:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await asyncio.wait_for(conn.recv(), timeout)
    assert info.value.rcvd is not None and info.value.rcvd.code == code


def test_the_identity_list_format():
    alice, mallory = parse_identities(AGENTS)
    assert (alice.agent_id, alice.tools) == ("alice", frozenset({"extract_data", "analyze_sentiment"}))
    assert mallory.tools == frozenset({"analyze_sentiment"}) and ALICE not in repr(alice)
    (anyone,) = parse_identities(f"gpu-box: {MALLORY} *")
    assert anyone.tools is None
    assert len(parse_identities(f"a: {ALICE} x; b: {MALLORY} y")) == 2  # ';' separates entries in the variable
    for bad, why in [(f"alice {ALICE} x", "agent_id: token tools"), ("alice: short x", "at least 16"),
                     (f"alice: {ALICE}", "token and the tools"), (f"alice: {ALICE} bad!name", "tools must be")]:
        with pytest.raises(IdentityError, match=why) as info:
            parse_identities(bad)
        assert ALICE not in str(info.value)
    with pytest.raises(IdentityError, match="same token"):
        Identities(tuple(parse_identities(f"a: {ALICE} x\nb: {ALICE} y")))


async def test_an_agent_registers_only_its_own_id_and_its_own_tools(make_hub):
    hub = await make_hub(identities=Identities(tuple(parse_identities(AGENTS))))
    # A wrong token never reaches registration.
    with pytest.raises(InvalidStatus) as info:
        await raw_connect(hub.url, token=ALICE[:-1])  # the key minus one character
    assert info.value.response.status_code == 403
    # Mallory's token cannot register as alice, nor offer a tool she is not bound to.
    conn, reply = await register(hub.url, MALLORY, "alice", tools=["analyze_sentiment"])
    assert reply["type"] == "registration:error" and reply["data"]["code"] == "FORBIDDEN"
    assert "belongs to agent 'mallory'" in reply["data"]["error"]
    await expect_closed(conn, 1008)
    conn, reply = await register(hub.url, MALLORY, "mallory", tools=["analyze_sentiment", "extract_data"])
    assert reply["type"] == "registration:error" and "may not offer tool(s): extract_data" in reply["data"]["error"]
    await expect_closed(conn, 1008)
    conn, reply = await register(hub.url, MALLORY, "mallory", tools=["analyze_sentiment"])
    assert reply == {"type": "registration:success", "data": {"agent_id": "mallory"}}
    assert [a.agent_id for a in hub.agents()] == ["mallory"]
    await conn.close()


async def test_the_shared_token_still_works_beside_per_agent_tokens(make_hub):
    shared = "shared-token-0123456789abcdef"
    hub = await make_hub(identities=Identities(tuple(parse_identities(AGENTS)), shared))
    conn, reply = await register(hub.url, shared, "anyone", tools=["store_invoice"])
    assert reply["type"] == "registration:success"
    assert hub.owner_of(["store_invoice"]) == "*shared*"
    assert hub.owner_of(["analyze_sentiment"]) == "alice,mallory,*shared*"
    assert hub.owner_of(["extract_data"]) == "alice,*shared*"
    await conn.close()


async def test_the_cache_is_keyed_by_the_tools_owner(make_hub, tmp_path):
    """An answer cached for tools only alice may serve is never served once mallory may serve them too."""
    hub = await make_hub(identities=Identities(tuple(parse_identities(AGENTS))))
    cache = MemoryCacheStore()
    server = HubHttpServer(HubHttpApp(hub, api_key=CLIENT_KEY, cache=cache, options=ExecuteOptions(deadline_seconds=5)))
    await server.start("127.0.0.1", 0)
    alice, _ = await register(hub.url, ALICE, "alice", tools=["extract_data", "analyze_sentiment"])
    served: list[str] = []

    async def serve_alice() -> None:
        while True:
            frame = await recv_json(alice, timeout=30)
            if frame["type"] == "task:execute":
                served.append(frame["data"]["task_id"])
                await send_json(alice, {"type": "task:result", "data": {
                    "task_id": frame["data"]["task_id"], "status": "success",
                    "result": [{"type": "result", "content": f"alice {len(served)}"}]}})

    answering = asyncio.create_task(serve_alice())
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=10, headers={"X-Api-Key": CLIENT_KEY}) as client:
            async def execute(tools):
                response = await client.post("/execute", json={"instruction": "same words", "tools": tools})
                assert response.status_code == 200, response.text
                return response.json()

            assert (await execute(["extract_data"]))["cached"] is False
            assert (await execute(["extract_data"]))["cached"] is True
            assert len(cache._items) == 1
            # Mallory is now allowed extract_data too: the tools have new owners, and an answer cached when
            # only alice could serve them is not served for a task mallory may now answer.
            widened = AGENTS.replace("analyze_sentiment\n", "analyze_sentiment,extract_data\n", 2)
            assert hub.set_identities(Identities(tuple(parse_identities(widened)))) == []  # alice unchanged
            assert hub.owner_of(["extract_data"]) == "alice,mallory"
            assert (await execute(["extract_data"]))["cached"] is False
            assert len(cache._items) == 2 and len(served) == 2
    finally:
        answering.cancel()
        await alice.close()
        await server.stop()


async def test_revoking_one_agent_closes_only_its_connection(make_hub, tmp_path: Path):
    agents_file = tmp_path / "agents"
    agents_file.write_text(AGENTS)
    hub = await make_hub(identities=IdentitySource(agents_file=agents_file), identity_poll_seconds=0.1)
    alice, _ = await register(hub.url, ALICE, "alice", tools=["extract_data"])
    mallory, _ = await register(hub.url, MALLORY, "mallory", tools=["analyze_sentiment"])
    assert sorted(a.agent_id for a in hub.agents()) == ["alice", "mallory"]
    agents_file.write_text("\n".join(line for line in AGENTS.splitlines() if not line.startswith("mallory")))
    await expect_closed(mallory, 1008)  # the watcher noticed the file changed
    await send_json(alice, {"type": "heartbeat", "data": {}})
    assert (await recv_json(alice))["type"] == "heartbeat:ack"  # alice is untouched
    assert [a.agent_id for a in hub.agents()] == ["alice"]
    with pytest.raises(InvalidStatus) as info:
        await raw_connect(hub.url, token=MALLORY)
    assert info.value.response.status_code == 403
    # A malformed file is refused: the hub keeps the list it has.
    agents_file.write_text("alice: short tools\n")
    await asyncio.sleep(0.3)
    assert hub.identities.get("alice") is not None
    await alice.close()


async def test_narrowing_an_agents_tools_revokes_its_connection(make_hub):
    hub = await make_hub(identities=Identities(tuple(parse_identities(AGENTS))))
    alice, _ = await register(hub.url, ALICE, "alice", tools=["extract_data", "analyze_sentiment"])
    revoked = hub.set_identities(Identities(tuple(parse_identities(f"alice: {ALICE} analyze_sentiment"))))
    assert revoked == ["alice"]
    await expect_closed(alice, 1008)


def test_sighup_reloads_the_agents_file(tmp_path: Path):
    agents_file = tmp_path / "agents"
    agents_file.write_text(AGENTS)
    ws_port, http_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    env.update(BRIDGE_AGENTS_FILE=str(agents_file), BRIDGE_API_KEY=CLIENT_KEY, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([*CLI, "bridge", "serve", "--port", str(ws_port), "--http-port", str(http_port),
                             "--log-level", "info"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_line(proc, r"AI Bridge hub: agents ws://")

        async def scenario() -> None:
            url = f"ws://127.0.0.1:{ws_port}"
            mallory, reply = await register(url, MALLORY, "mallory", tools=["analyze_sentiment"])
            assert reply["type"] == "registration:success"
            # Revoke mallory: rewrite the file keeping its mtime and size stamp irrelevant, then SIGHUP.
            agents_file.write_text(AGENTS.replace(MALLORY, "mallory-new-token-0123456789"))
            proc.send_signal(signal.SIGHUP)
            await expect_closed(mallory, 1008)

        asyncio.run(scenario())
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=15)[0]
        assert proc.returncode == 0
        assert "mallory: its identity was revoked" in output
        for secret in (ALICE, MALLORY, CLIENT_KEY):
            assert secret not in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
