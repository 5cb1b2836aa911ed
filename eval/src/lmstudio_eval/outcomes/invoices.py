"""Invoices for the notebook's invoice agent, generated from a seed: other vendors, numbers, amounts and layouts
than the project's sample invoice, in the formats the library's extraction reads (``builtins/invoice_text.py``:
labelled or head-of-page vendors, ``1,250.50`` and ``1.250,50`` amounts, dates written out or numeric)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

VENDORS = (
    ("Harrowgate Joinery Ltd", "14 Mill Lane, Harrogate HG1 2AB"),
    ("Kessler Feinmechanik GmbH", "Hafenstraße 7, 28217 Bremen"),
    ("Lumo Valaistus Oy", "Tehtaankatu 3, 00140 Helsinki"),
    ("Van der Berg Drukwerk BV", "Keizersgracht 88, 1015 Amsterdam"),
    ("Bright Orchard Produce Inc", "220 Cider Road, Hood River, OR 97031"),
    ("Calder Stonework Ltd", "3 Quarry Row, Halifax HX1 4PQ"),
    ("Nordlys Tekstil AS", "Storgata 21, 0184 Oslo"),
    ("Pinecrest Lab Supplies LLC", "901 Birch Avenue, Madison, WI 53703"),
    ("Atelier Corbeau SARL", "12 rue des Tanneurs, 69001 Lyon"),
    ("Marrow & Finch Bindery Ltd", "5 Paper Court, Norwich NR2 1PL"),
)
BUYERS = ("Tallow Street Community Kitchen", "Greywell Primary School", "Oakum Sailing Club", "Riverside Dental Practice",
          "Fenwick Allotment Society", "Quillon Architects")
ITEMS = (
    ("Oak shelving boards", 12, 80), ("Brass hinges (pair)", 4, 15), ("Safety goggles", 6, 30), ("Printed flyers (box of 500)", 40, 120),
    ("Organic apples, crate", 18, 35), ("Granite sill", 60, 220), ("Wool blanket", 35, 90), ("Pipette tips (rack)", 9, 25),
    ("Linen tablecloth", 22, 60), ("Bookbinding thread", 3, 11), ("Delivery", 10, 45), ("Site survey", 150, 400),
)
CURRENCIES = ("EUR", "GBP", "USD", "CHF")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")


@dataclass(frozen=True)
class Invoice:
    """One generated invoice: its text and the values a correct run stores."""

    text: str
    invoice_number: str
    total: float
    currency: str
    vendor: str
    date: str  # ISO 8601


def _amount(value: float, style: str) -> str:
    text = f"{value:,.2f}"
    if style == "comma":  # 1.250,50
        text = text.replace(",", " ").replace(".", ",").replace(" ", ".")
    return text


def _written(day: date, style: int) -> str:
    month = MONTH_NAMES[day.month - 1]
    return (f"{day.day} {month} {day.year}", f"{month} {day.day}, {day.year}", day.isoformat())[style % 3]


def make_invoice(rng: random.Random) -> Invoice:
    """A new invoice: vendor, buyer, 2-4 line items, tax, and one of three layouts."""
    vendor, address = rng.choice(VENDORS)
    buyer = rng.choice(BUYERS)
    currency = rng.choice(CURRENCIES)
    style = "comma" if currency in ("EUR", "CHF") and rng.random() < 0.5 else "dot"
    number = (str(rng.randint(10000, 99999)) if rng.random() < 0.5
              else f"{rng.randint(2026, 2028)}/{rng.randint(1, 999):04d}")
    day = date(2027, rng.randint(1, 12), rng.randint(1, 28))
    rows = []
    for description, low, high in rng.sample(ITEMS, rng.randint(2, 4)):
        quantity = rng.randint(1, 9)
        unit = float(rng.randint(low, high)) + rng.choice((0.0, 0.5, 0.25, 0.9))
        rows.append((description, quantity, unit, round(quantity * unit, 2)))
    subtotal = round(sum(r[3] for r in rows), 2)
    rate = rng.choice((0, 10, 20))
    tax = round(subtotal * rate / 100, 2)
    total = round(subtotal + tax, 2)
    layout = rng.randint(0, 2)
    lines: list[str]
    if layout == 0:
        lines = [vendor, address, "", "INVOICE", f"Invoice No: {number}", f"Date: {_written(day, rng.randint(0, 2))}",
                 f"Bill to: {buyer}", "", "Description                      Qty   Unit price      Amount"]
        lines += [f"{d:<32} {q:>3}   {_amount(u, style):>10}  {_amount(t, style):>10}" for d, q, u, t in rows]
        lines += ["", f"Subtotal: {_amount(subtotal, style)} {currency}"]
        if rate:
            lines.append(f"VAT {rate}%: {_amount(tax, style)} {currency}")
        lines.append(f"Total due: {_amount(total, style)} {currency}")
    elif layout == 1:
        lines = [f"From: {vendor}, {address}", f"Reference: {number}", f"Issued: {_written(day, rng.randint(0, 2))}",
                 f"Customer: {buyer}", "", "Item | Qty | Price | Line total"]
        lines += [f"{d} | {q} | {_amount(u, style)} | {_amount(t, style)}" for d, q, u, t in rows]
        if rate:
            lines.append(f"Tax ({rate}%): {currency} {_amount(tax, style)}")
        lines.append(f"Amount due: {currency} {_amount(total, style)}")
    else:
        lines = [f"{vendor}", f"{address}", f"Tax invoice #{number}", f"Dated {_written(day, rng.randint(0, 2))}",
                 f"Sold to: {buyer}", "", "Qty  Description                  Unit        Total"]
        lines += [f"{q:>3}  {d:<28} {_amount(u, style):>9} {_amount(t, style):>10}" for d, q, u, t in rows]
        lines += [f"Grand total {_amount(total, style)} {currency}"]
    return Invoice(text="\n".join(lines) + "\n", invoice_number=number, total=total, currency=currency, vendor=vendor,
                   date=day.isoformat())
