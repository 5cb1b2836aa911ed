"""`make run`: start the embedded model server and run real agent tasks end to end, streaming the events.

Point it at LM Studio instead with LM_STUDIO_API_BASE (and LM_API_TOKEN, LM_STUDIO_MODEL): then no server
is started. Exit status: 0 when the invoice agent got the sample invoice right (every field as expected, stored
once, a short answer in words), 1 when it did not.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from rich.console import Console
from rich.panel import Panel
from rich.rule import Rule

from lmstudio_agent import AgentError, LMStudioAgent
from lmstudio_agent.agent import is_words
from lmstudio_agent.builtins import INVOICE_GOALS, INVOICE_INSTRUCTION, builtin_registry
from lmstudio_agent.cli import render_message
from lmstudio_agent.messages import AgentMessage, answered, final_answer

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

    storage = CountingStorage()
    registry = builtin_registry().select(tags=["invoices"])
    invoice_agent = LMStudioAgent(model_name=model, base_url=base_url, api_key=api_key, tools=registry,
                                  goals=INVOICE_GOALS, context={"invoice_storage": storage}, max_rounds=6,
                                  request_timeout=300, run_timeout=900)
    general = LMStudioAgent(model_name=model, base_url=base_url, api_key=api_key)
    try:
        await invoice_agent.aload_model()
        await general.aload_model()
        console.print(Panel.fit(f"model [bold]{model}[/] · tool-call mode [bold]{invoice_agent.tool_mode.value}[/]"))

        console.print(Rule("1. Invoice agent (the invoice goes by reference: @doc:invoice)"))
        transcript = await invoice_agent.aact(INVOICE_INSTRUCTION, on_message=show,
                                              documents={"invoice": SAMPLE_INVOICE})
        problems = check_invoice_run(transcript, storage)
        if storage:
            console.print(f"[dim]stored: {storage}[/]")
        for problem in problems:
            console.print(f"[bold red]✗ {problem}[/]")
        if not problems:
            console.print("[bold green]✓ the sample invoice was extracted right, stored once, and confirmed in words[/]")

        console.print(Rule("2. Sentiment (confidence from token log-probabilities)"))
        for review in ("This product is amazing, I love it!", "Terrible support, I want a refund."):
            result = await general.analyze_sentiment(review)
            console.print(f"{review!r} -> {result}")

        console.print(Rule("3. Extraction"))
        person = await general.extract_data("Jane Smith, 28 years old, works at Google",
                                            {"name": "string", "age": "number", "company": "string"})
        console.print(f"extract_data -> {person}")
    finally:
        await invoice_agent.client.aclose()
        await general.client.aclose()
    return not problems


def main() -> int:
    # SIGTERM (e.g. from a CI runner) unwinds like Ctrl-C, so the model server is always stopped.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        with model_server() as (base_url, api_key, model):
            ok = asyncio.run(demo(base_url, api_key, model))
    except AgentError as exc:
        console.print(f"[bold red]{exc.code.value}[/]: {exc.message}")
        return 1
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]")
        return 130
    console.print(Rule("done" if ok else "the invoice agent got the sample invoice wrong"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
