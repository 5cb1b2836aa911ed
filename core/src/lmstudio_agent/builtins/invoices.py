"""The notebook's invoice agent: ``extract_invoice_data`` and ``store_invoice`` into pluggable storage.

``extract_invoice_data`` is shaped for very small models: the model writes the invoice as JSON under a strict
grammar whose values are copied from the document (``invoice_text``): the invoice number one of the codes on
the invoice-number line, the date one of the dates (written ISO), each number one written on the invoice, the
vendor one of the names at its head. The model chooses among them; it cannot invent a value.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol, cast, runtime_checkable

from ..agent.loop import Goal
from ..model.llm import prompt_llm_for_json
from ..agent.tools import ActionContext
from .invoice_text import extraction_schema, find_candidates, finish_invoice

INVOICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["invoice_number", "date", "total_amount"],
    "properties": {
        "invoice_number": {"type": "string"},
        "date": {"type": "string"},
        "total_amount": {"type": "number"},
        "currency": {"type": "string"},
        "vendor": {"type": "object", "properties": {"name": {"type": "string"}, "address": {"type": "string"}}},
        "line_items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "quantity": {"type": "number"},
                    "unit_price": {"type": "number"},
                    "total": {"type": "number"},
                },
            },
        },
    },
}

EXTRACTION_PROMPT = """You are an expert invoice analyzer. Extract invoice information accurately and thoroughly.
Pay special attention to:
- Invoice numbers (look for 'Invoice #', 'No.', 'Reference', etc.)
- Dates (focus on invoice date or issue date)
- Amounts (ensure you capture the total amount correctly)
- Line items (capture all individual charges)

Extract the invoice data from:

<invoice>
{document_text}
</invoice>"""

# The notebook's create_invoice_agent() goals, verbatim: the plan comes from their numbered lines (extract, then
# store; lmstudio_agent.agent.plan), so an ordinary request ("Process this invoice.") runs both steps. The invoice goes to
# the run as a document (documents={"invoice": text}), or inline after the request's own words; either way
# extract_invoice_data receives it by reference ("@doc:invoice", "@doc:input").
INVOICE_GOALS = (
    Goal(name="Persona", description="You are an Invoice Processing Agent, specialized in handling and storing "
                                     "invoice data."),
    Goal(name="Process Invoices", description="""
            Your goal is to process invoices by extracting their data and storing it properly.
            For each invoice:
            1. Extract all important information including numbers, dates, amounts, and line items
            2. Store the extracted data indexed by invoice number
            3. Provide confirmation of successful processing
            4. Handle any errors appropriately
            """),
)
INVOICE_INSTRUCTION = "Process this invoice."


@runtime_checkable
class InvoiceStorage(Protocol):
    """Where ``store_invoice`` puts invoices. A plain ``dict`` also works (the notebook's storage)."""

    def __setitem__(self, invoice_number: str, invoice: dict[str, Any]) -> None: ...

    def __getitem__(self, invoice_number: str) -> dict[str, Any]: ...

    def __contains__(self, invoice_number: object) -> bool: ...


class JsonFileInvoiceStorage:
    """Invoices kept in one JSON file, written atomically (temporary file, then rename).

    Args:
        path: The JSON file the invoices are kept in (created on the first store).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Use the file at ``path``; nothing is read until an invoice is looked up or stored."""
        self.path = Path(path)

    def _load(self) -> dict[str, Any]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def __getitem__(self, invoice_number: str) -> dict[str, Any]:
        return cast(dict[str, Any], self._load()[invoice_number])

    def __contains__(self, invoice_number: object) -> bool:
        return invoice_number in self._load()

    def __setitem__(self, invoice_number: str, invoice: dict[str, Any]) -> None:
        data = self._load()
        data[invoice_number] = invoice
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".invoices-")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)
        os.replace(tmp, self.path)


async def extract_invoice_data(action_context: ActionContext, document_text: str) -> dict[str, Any]:
    """Extract standardized invoice data from document text.

    Identifies invoice number, date, total amount, vendor and line items from any invoice format.

    Args:
        document_text: The text content of the invoice to process
        action_context: Supplied by the runtime, not the model: the run's context, whose ``llm`` answers.
    """
    if not isinstance(document_text, str) or len(document_text.strip()) < 20:
        raise ValueError("document_text must be the invoice's full text (pass the document by reference, "
                         'e.g. "@doc:invoice")')
    candidates = find_candidates(document_text)
    schema = extraction_schema(candidates)
    invoice = await prompt_llm_for_json(action_context, schema, EXTRACTION_PROMPT.format(document_text=document_text.strip()),
                                        max_tokens=700)
    return finish_invoice(invoice, candidates)


def store_invoice(action_context: ActionContext, invoice_data: dict[str, Any]) -> dict[str, Any]:
    """Store an invoice in the invoice database. An invoice with the same number is replaced.

    Args:
        invoice_data: The processed invoice data to store, with its invoice_number
        action_context: Supplied by the runtime, not the model: its ``invoice_storage`` property is where the invoice
            goes (a dict in the context when there is none).
    """
    storage = action_context.get("invoice_storage")
    if storage is None:
        storage = action_context.properties.setdefault("invoice_storage", {})
    invoice_number = invoice_data.get("invoice_number")
    if not invoice_number:
        raise ValueError("Invoice data must contain an invoice number")
    storage[str(invoice_number)] = invoice_data
    return {"status": "success", "message": f"Stored invoice {invoice_number}", "invoice_number": invoice_number}
