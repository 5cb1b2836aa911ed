"""`make run`: start the embedded model server and run real agent tasks end to end, streaming the events;
then start an AI Bridge hub with an agent on the same model and point at its playground (GET /).

Interactive (a terminal), the hub stays up until Ctrl-C; otherwise (CI) one streamed request goes through the
hub's /execute to prove the playground's path works, and the hub stops.

Point it at LM Studio instead with LM_STUDIO_API_BASE (and LM_API_TOKEN, LM_STUDIO_MODEL): then no server
is started. Exit status: 0 when the invoice agent got the sample invoice right (every field as expected, stored
once, a short answer in words), 1 when it did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys

import httpx

from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule

from lmstudio_agent import AgentError, LMStudioAgent
from lmstudio_agent.agent.loop import is_words
from lmstudio_agent.builtins import INVOICE_GOALS, INVOICE_INSTRUCTION, builtin_registry
from lmstudio_agent.cli import render_message
from lmstudio_agent.agent.messages import AgentMessage, answered, final_answer

console = Console()

SAMPLE_INVOICE = """ACME Office Supplies Ltd., 12 Market Street, Springfield
INVOICE
Invoice #: INV-2024-0042
Date: 2024-03-15
Bill to: Globex Corporation

Description            Qty   Unit price   Total
A4 paper (box)          10      25.00      250.00
Ink cartridge            4      45.50      182.00

Total due: 432.00 USD"""

# What a right run stores for SAMPLE_INVOICE: the demo checks itself against it.
EXPECTED_INVOICE = {
    "invoice_number": "INV-2024-0042",
    "date": "2024-03-15",
    "total_amount": 432,
    "currency": "USD",
    "vendor": "ACME Office Supplies Ltd.",
    "line_items": [("A4 paper (box)", 10, 25, 250), ("Ink cartridge", 4, 45.5, 182)],
}

class CountingStorage(dict):
    """The invoice storage, counting how many times an invoice was written."""

    writes = 0

    def __setitem__(self, key, value) -> None:
        self.writes += 1
        super().__setitem__(key, value)


def stored_view(invoice: dict) -> dict:
    """A stored invoice in the shape of EXPECTED_INVOICE (the vendor's name, items as tuples)."""
    vendor = invoice.get("vendor") or {}
    return {
        "invoice_number": invoice.get("invoice_number"), "date": invoice.get("date"),
        "total_amount": invoice.get("total_amount"), "currency": invoice.get("currency"),
        "vendor": vendor.get("name") if isinstance(vendor, dict) else vendor,
        "line_items": [(i.get("description"), i.get("quantity"), i.get("unit_price"), i.get("total"))
                       for i in invoice.get("line_items") or []],
    }


def check_invoice_run(transcript: list[AgentMessage], storage: CountingStorage) -> list[str]:
    """What is wrong with an invoice run on SAMPLE_INVOICE (empty when it is right)."""
    problems = []
    if list(storage) != [EXPECTED_INVOICE["invoice_number"]]:
        problems.append(f"stored invoices {sorted(storage)}, expected [{EXPECTED_INVOICE['invoice_number']!r}]")
    else:
        got = stored_view(storage[EXPECTED_INVOICE["invoice_number"]])
        problems += [f"{key}: stored {got[key]!r}, expected {value!r}" for key, value in EXPECTED_INVOICE.items()
                     if got[key] != value]
    if storage.writes != 1:
        problems.append(f"the invoice was stored {storage.writes} times, expected once")
    answer = final_answer(transcript)
    if not answered(transcript) or answer is None:
        problems.append("the run ended without an answer")
    elif not is_words(answer) or len(answer) > 400:
        problems.append(f"the final answer is not a short sentence: {answer[:120]!r}")
    elif EXPECTED_INVOICE["invoice_number"] not in answer:
        problems.append(f"the final answer does not say which invoice was stored: {answer[:120]!r}")
    return problems


@contextlib.contextmanager
def model_server():
    """LM Studio when LM_STUDIO_API_BASE is set; otherwise the embedded SmolLM2-135M server, always stopped."""
    if os.environ.get("LM_STUDIO_API_BASE"):
        yield (os.environ["LM_STUDIO_API_BASE"], os.environ.get("LM_API_TOKEN"),
               os.environ.get("LM_STUDIO_MODEL", "lmstudio-community/LFM2-350M-Instruct-GGUF"))
        return
    from lmstudio_gateway.process import run_in_background

    with contextlib.ExitStack() as stack:
        with console.status("Starting the embedded model server (SmolLM2-135M-Instruct) ...", spinner="dots"):
            server = stack.enter_context(run_in_background())
        console.print(f"[dim]embedded model server on {server.base_url} (pid {server.pid})[/]")
        yield server.base_url, server.api_key, server.model
    console.print("[dim]model server stopped[/]")


async def demo(base_url: str, api_key: str | None, model: str) -> bool:
    def show(message: AgentMessage) -> None:
        console.print(render_message(message))

    registry = builtin_registry().select(tags=["invoices"])
    general = LMStudioAgent(model_name=model, base_url=base_url, api_key=api_key)
    problems: list[str] = []
    # The notebook's invoice agent with its goals verbatim, asked in ordinary words: the invoice as a document,
    # then pasted into the request. Its goals, not the request's verbs, say to extract and then store.
    runs = [("the invoice as a document (@doc:invoice)", INVOICE_INSTRUCTION, {"invoice": SAMPLE_INVOICE}),
            ("the invoice pasted into the request", f"Here is an invoice from our supplier:\n{SAMPLE_INVOICE}", None)]
    agents = []
    try:
        await general.aload_model()
        for number, (how, instruction, documents) in enumerate(runs, start=1):
            storage = CountingStorage()
            invoice_agent = LMStudioAgent(model_name=model, base_url=base_url, api_key=api_key, tools=registry,
                                          goals=INVOICE_GOALS, context={"invoice_storage": storage}, max_rounds=6,
                                          request_timeout=300, run_timeout=900)
            agents.append(invoice_agent)
            await invoice_agent.aload_model()
            if number == 1:
                console.print(Panel.fit(f"model [bold]{model}[/] · tool-call mode [bold]{invoice_agent.tool_mode.value}[/]"))
            console.print(Rule(f"{number}. The notebook's invoice agent: \"{instruction.splitlines()[0]}\", {how}"))
            transcript = await invoice_agent.aact(instruction, on_message=show, documents=documents)
            found = check_invoice_run(transcript, storage)
            if storage:
                console.print(f"[dim]stored: {storage}[/]")
            for problem in found:
                console.print(f"[bold red]✗ {problem}[/]")
            if not found:
                console.print("[bold green]✓ the sample invoice was extracted right, stored once, and confirmed in words[/]")
            problems += found

        console.print(Rule("3. Sentiment (confidence from token log-probabilities)"))
        for review in ("This product is amazing, I love it!", "Terrible support, I want a refund."):
            result = await general.analyze_sentiment(review)
            console.print(f"{review!r} -> {result}")
        sentiment_agent = LMStudioAgent(model_name=model, base_url=base_url, api_key=api_key,
                                        tools=builtin_registry().select(names=["analyze_sentiment"]),
                                        request_timeout=300, run_timeout=600)
        agents.append(sentiment_agent)
        await sentiment_agent.aload_model()
        question = "What is the sentiment of this review? The parcel came two weeks late and the lid was broken."
        transcript = await sentiment_agent.aact(question, on_message=show)
        answer = final_answer(transcript) or ""
        labels = [json.loads(m.content).get("sentiment") for m in transcript if m.type == "result" and m.tool]
        if not labels or labels[-1] not in answer.lower():
            problems.append(f"the sentiment answer does not state the tool's label {labels[-1:]}: {answer[:120]!r}")
            console.print(f"[bold red]✗ {problems[-1]}[/]")
        else:
            console.print(f"[bold green]✓ the answer states the tool's label ({labels[-1]})[/]")

        console.print(Rule("3. Extraction"))
        person = await general.extract_data("Jane Smith, 28 years old, works at Google",
                                            {"name": "string", "age": "number", "company": "string"})
        console.print(f"extract_data -> {person}")
    finally:
        for agent in agents:
            await agent.client.aclose()
        await general.client.aclose()
    return not problems


PLAYGROUND_PORT = int(os.environ.get("PLAYGROUND_PORT", "65029"))


async def playground(base_url: str, api_key: str | None, model: str) -> bool:
    """A hub on loopback with one agent on the model; its playground's URL and key are printed."""
    from lmstudio_agent.endpoint.cache import MemoryCacheStore
    from lmstudio_agent.endpoint.contract import ExecuteOptions
    from lmstudio_hub import BridgeHub
    from lmstudio_hub.http import HubHttpApp, HubHttpServer

    agent_token, client_key = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    hub = BridgeHub(agent_token, default_model=model, default_deadline=180.0, task_timeout=180.0)
    await hub.start("127.0.0.1", 0)
    http = HubHttpServer(HubHttpApp(hub, api_key=client_key, cache=MemoryCacheStore(),
                                    options=ExecuteOptions(deadline_seconds=180.0)))
    try:
        await http.start("127.0.0.1", PLAYGROUND_PORT)
    except OSError:
        await http.start("127.0.0.1", 0)
    agent = LMStudioAgent(model_name=model, base_url=base_url, api_key=api_key, bridge_url=hub.url,
                          bridge_token=agent_token, agent_id="make-run-agent", max_rounds=2)
    serving = asyncio.ensure_future(agent.connect_to_bridge())
    ok = True
    try:
        while not hub.agents():
            if serving.done():
                serving.result()
            await asyncio.sleep(0.05)
        console.print(Rule("4. Playground"))
        console.print(f"Open [bold]{http.url}/[/] and use the key [bold]{client_key}[/]")
        if sys.stdin.isatty():
            console.print("[dim]the hub and its agent run until Ctrl-C[/]")
            await asyncio.Event().wait()
        else:
            ok = await _streamed_once(http.url, client_key)
    finally:
        serving.cancel()
        with contextlib.suppress(BaseException):
            await serving
        await http.stop()
        await hub.stop()
        await agent.client.aclose()
    return ok


async def _streamed_once(url: str, key: str) -> bool:
    """What the playground does, once: a streamed /execute through the hub; True when the run succeeded."""
    finish: dict = {}
    body = {"instruction": "Analyze the sentiment of: I love this product!", "tools": ["analyze_sentiment"]}
    async with httpx.AsyncClient(timeout=httpx.Timeout(180.0, connect=5.0)) as client:
        async with client.stream("POST", f"{url}/execute", json=body, headers={
                "Authorization": f"Bearer {key}", "Accept": "text/event-stream"}) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    chunk = json.loads(line[6:])
                    if chunk["type"] == "finish":
                        finish = chunk.get("messageMetadata") or {}
                    if chunk["type"] in ("tool-input-available", "tool-output-available", "error", "finish"):
                        console.print(f"[dim]stream:[/] {line[6:][:160]}")
    return finish.get("success") is True


def main() -> int:
    # SIGTERM (e.g. from a CI runner) unwinds like Ctrl-C, so the model server is always stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with model_server() as (base_url, api_key, model):
            ok = asyncio.run(demo(base_url, api_key, model))
            ok = asyncio.run(playground(base_url, api_key, model)) and ok
    except AgentError as exc:
        console.print(f"[bold red]{exc.code.value}[/]: {exc.message}")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    console.print(Rule("done" if ok else "the demo's checks failed (see above)"))
    console.print("Next: [bold]make serve-model[/] in another terminal, then here [bold]source .venv/bin/activate[/] "
                  "and [bold]lmstudio-agent run \"What is the sentiment of: I love it\"[/] (README: How to run the commands).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
