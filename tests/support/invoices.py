"""Invoices the invoice agent is tested on (not the demo's): different layouts, vendors, currencies and date
formats, each with the fields a right extraction stores."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _demo_module() -> Any:
    """scripts/run_demo.py (a script, not a package: loaded by path), whose invoice checks the tests share."""
    path = Path(__file__).resolve().parents[2] / "scripts" / "run_demo.py"
    spec = importlib.util.spec_from_file_location("run_demo", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_demo = _demo_module()
# The demo's own checks: how a stored invoice is compared, and a storage that counts its writes.
CountingStorage = _demo.CountingStorage
stored_view = _demo.stored_view


@dataclass(frozen=True)
class InvoiceCase:
    name: str
    text: str
    expected: dict[str, Any]


EUROPEAN = InvoiceCase("european", """Müller & Söhne GmbH
Hauptstraße 5, 10115 Berlin

RECHNUNG / INVOICE
Invoice No.: RE-2023-118
Invoice date: 07.11.2023
Customer: Beispiel AG

Item                     Qty    Price      Amount
Consulting hours          12    85,00    1.020,00
Travel expenses            1   140,50      140,50

Total: 1.160,50 EUR""", {
    "invoice_number": "RE-2023-118", "date": "2023-11-07", "total_amount": 1160.5, "currency": "EUR",
    "vendor": "Müller & Söhne GmbH",
    "line_items": [("Consulting hours", 12, 85, 1020), ("Travel expenses", 1, 140.5, 140.5)],
})

BRITISH = InvoiceCase("british", """INVOICE
From: Brightside Print Co., 4 Harbour Road, Bristol BS1 5TT
To: Oakfield School

Invoice Number: 7781
Date: 3 February 2024
Due date: 3 March 2024

Business cards (box of 500)   x2    £35.00    £70.00
Poster A2                     x10    £4.50    £45.00

Subtotal £115.00
VAT (20%) £23.00
Total £138.00""", {
    "invoice_number": "7781", "date": "2024-02-03", "total_amount": 138, "currency": "GBP",
    "vendor": "Brightside Print Co.",
    "line_items": [("Business cards (box of 500)", 2, 35, 70), ("Poster A2", 10, 4.5, 45)],
})

AMERICAN = InvoiceCase("american", """Northwind Traders Inc.
1200 Pine Street, Seattle, WA 98101
Phone: (206) 555-0100

Bill To: Contoso Ltd.

Invoice # NW-5521        Date: 08/16/2023

QTY  DESCRIPTION              UNIT PRICE    LINE TOTAL
 3   Laptop stand                 $45.00       $135.00
 1   Ergonomic chair           $1,250.00     $1,250.00

Amount Due: $1,385.00 USD""", {
    "invoice_number": "NW-5521", "date": "2023-08-16", "total_amount": 1385, "currency": "USD",
    "vendor": "Northwind Traders Inc.",
    "line_items": [("Laptop stand", 3, 45, 135), ("Ergonomic chair", 1, 1250, 1250)],
})

CASES = (EUROPEAN, BRITISH, AMERICAN)
