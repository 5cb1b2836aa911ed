"""What an invoice's text offers to copy: numbers and dates as people write them, and the candidates of each
field on invoices of several layouts (no model involved)."""

import json

import pytest

from lmstudio_agent.builtins.invoice_text import (
    consistent, dates_in, extraction_schema, find_candidates, finish_invoice, numbers_in, parse_amount,
)
from lmstudio_agent.model.schema import validate
from tests.support.invoices import CASES, InvoiceCase, stored_view

DEMO = InvoiceCase("demo", """ACME Office Supplies Ltd., 12 Market Street, Springfield
INVOICE
Invoice #: INV-2024-0042
Date: 2024-03-15
Bill to: Globex Corporation

Description            Qty   Unit price   Total
A4 paper (box)          10      25.00      250.00
Ink cartridge            4      45.50      182.00

Total due: 432.00 USD""", {
    "invoice_number": "INV-2024-0042", "date": "2024-03-15", "total_amount": 432, "currency": "USD",
    "vendor": "ACME Office Supplies Ltd.",
    "line_items": [("A4 paper (box)", 10, 25, 250), ("Ink cartridge", 4, 45.5, 182)],
})


@pytest.mark.parametrize("written, value", [
    ("432.00", 432), ("1,250.50", 1250.5), ("1.250,50", 1250.5), ("85,00", 85), ("1.020,00", 1020),
    ("1\u00a0250,50", 1250.5), ("12", 12), ("-3.5", -3.5), ("1,234,567", 1234567), ("1.234.567", 1234567),
    ("12,3456", None), ("abc", None),
])
def test_parse_amount(written, value):
    assert parse_amount(written) == value


def test_numbers_in_a_line_leave_out_dates_and_codes():
    assert numbers_in("INV-2024-0042 dated 2024-03-15: 2 x A4 paper 25.00 = 50.00") == [2, 25, 50]
    assert numbers_in("x10  £4.50  £45.00") == [10, 4.5, 45]
    assert numbers_in("3 100.00") == [3, 100]  # a plain space separates two numbers


@pytest.mark.parametrize("line, iso", [
    ("Date: 2024-03-15", ["2024-03-15"]),
    ("Date: 07.11.2023", ["2023-11-07"]),  # dotted: day first
    ("Date: 08/16/2023", ["2023-08-16"]),  # only one reading is a date
    ("Date: 03/04/2024", ["2024-04-03", "2024-03-04"]),  # ambiguous: both, day first first
    ("Date: 3 February 2024", ["2024-02-03"]),
    ("Issued August 16, 2022", ["2022-08-16"]),
    ("Date: 31.02.2024", []),
])
def test_dates_in(line, iso):
    assert [value for _, value in dates_in(line)] == iso


def test_consistent_reading_of_a_row():
    assert consistent([10, 25, 250]) == (10, 25, 250)
    assert consistent([1, 1250, 1250]) == (1, 1250, 1250)
    assert consistent([2, 3]) is None
    assert consistent([500, 2, 35, 70]) == (2, 35, 70)


@pytest.mark.parametrize("case", [DEMO, *CASES], ids=lambda c: c.name)
def test_the_right_values_are_candidates_and_the_right_invoice_fits_the_schema(case):
    found = find_candidates(case.text)
    expected = case.expected
    assert expected["invoice_number"] in found.invoice_numbers
    assert expected["date"] in found.dates
    assert expected["total_amount"] in found.totals
    assert expected["vendor"] in found.vendors
    assert found.currencies == [expected["currency"]]
    assert [(row.description, consistent(row.numbers)) for row in found.rows] == [
        (d, (q, u, t)) for d, q, u, t in expected["line_items"]]
    right = {
        "invoice_number": expected["invoice_number"], "date": expected["date"],
        "vendor": {"name": expected["vendor"], **({"address": found.addresses[0]} if found.addresses else {})},
        "line_items": [{"description": d, "quantity": q, "unit_price": u, "total": t}
                       for d, q, u, t in expected["line_items"]],
        "total_amount": expected["total_amount"], "currency": expected["currency"],
    }
    schema = extraction_schema(found)
    assert validate(right, schema) == []
    assert stored_view(finish_invoice(right, found)) == expected


def test_a_document_with_no_candidates_still_gets_a_bounded_schema():
    schema = extraction_schema(find_candidates("nothing useful here at all"))
    assert schema["properties"]["invoice_number"]["maxLength"] == 40
    assert "line_items" not in schema and "currency" not in schema


def test_an_extracted_invoice_with_letters_beyond_ascii_is_offered_to_store_invoice():
    from lmstudio_agent.builtins import builtin_registry
    from lmstudio_agent.model.smallmodel import call_schema

    extracted = {"invoice_number": "RE-2023-118", "vendor": {"name": "Müller & Söhne GmbH"}}
    store = builtin_registry().get("store_invoice")
    schema = call_schema([store], ["Process the invoice.", f"Result of extract_invoice_data: {json.dumps(extracted)}"])
    (branch,) = [b for b in schema["anyOf"] if b["properties"].get("tool", {}).get("const") == "store_invoice"]
    assert branch["properties"]["arguments"]["properties"]["invoice_data"] == {"enum": [extracted]}
