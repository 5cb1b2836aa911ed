"""What an invoice's text offers to copy, field by field, and the strict extraction schema built from it.

A 135M model asked for an invoice as free JSON invents vendors and totals. Here every value the model writes
is one copied from the document: the grammar (``response_format``) lets the invoice number be only a code
from an invoice-number line, the date only one of the document's dates (normalised to ISO 8601), the total
only a number from a total line, each line item's numbers only the numbers of its own row, the vendor only a
name from the document's head. Where a field has one candidate, the model has nothing to choose; where it has
several, it chooses among them. :func:`finish_invoice` then checks the result (a line's quantity times unit
price is its total) and fills the document's currency.

Numbers are read as people write them: ``1,250.50``, ``1.250,50``, ``1\u00a0250,50`` (a no-break space; a plain
space separates two numbers), ``$25``, ``25.00 EUR``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

MONTHS = {name: i + 1 for i, names in enumerate([
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("may",), ("june", "jun"),
    ("july", "jul"), ("august", "aug"), ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
    ("december", "dec")]) for name in names}
CURRENCY_CODES = ("USD", "EUR", "GBP", "CHF", "JPY", "CAD", "AUD", "NZD", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF",
                  "INR", "CNY", "BRL", "MXN", "ZAR", "SGD", "HKD")
CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "Fr.": "CHF"}
MAX_ITEMS = 30

_NUMBER = re.compile(r"(?<![\w/.,-])-?\d+(?:[.,\u00a0\u202f]\d{3})*(?:[.,]\d{1,2})?(?![\w/-]|[.,]\d)")
_ISO = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})\b")
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_DAY_MONTH_YEAR = re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\.?\s+({_MONTH})\.?,?\s+(\d{{4}})\b", re.IGNORECASE)
_MONTH_DAY_YEAR = re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b", re.IGNORECASE)
_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9/_.#-]*")
_NUMBER_CUE = re.compile(r"\b(invoice|inv|rechnung|facture|factura|bill)\b|\b(no|nr|n°|nº|number|num|ref|reference)\b\.?|#",
                         re.IGNORECASE)
_DATE_CUE = re.compile(r"\bdate|dated|issued|datum\b", re.IGNORECASE)
_NOT_INVOICE_DATE = re.compile(r"\b(due|delivery|shipped|ship|order date|period|valid)\b", re.IGNORECASE)
_GRAND_TOTAL = re.compile(r"\b(grand total|total due|amount due|balance due|total payable|to pay|total amount|"
                          r"amount payable|gesamtbetrag|total ttc|total \(incl|total incl)", re.IGNORECASE)
_TOTAL = re.compile(r"\btotal\b|\bgesamt", re.IGNORECASE)
_NOT_ITEM = re.compile(r"\b(sub-?total|total|tax|vat|gst|mwst|discount|balance|amount due|paid|payment|due|iban|"
                       r"account|phone|tel|fax|invoice|date|bill to|ship to|customer|vat id|page)\b", re.IGNORECASE)
_BUYER = re.compile(r"^\s*(bill(ed)? to|sold to|ship to|customer|client|invoice to|to)\b\s*:?", re.IGNORECASE)
_VENDOR_LABEL = re.compile(r"^\s*(from|vendor|seller|supplier|issued by|company|billed by|payee)\s*:\s*", re.IGNORECASE)
_HEADER_WORDS = re.compile(r"^\s*(tax\s+)?invoice\b|^\s*(description|item|qty|quantity)\b", re.IGNORECASE)
_ITEMS_HEADER = re.compile(r"\b(description|item|items|qty|quantity|unit price|price|amount|service|product)\b",
                           re.IGNORECASE)
_CONTACT = re.compile(r"\b(phone|tel|fax|e-?mail|www|http|iban|bic|swift|vat\s*(id|no|reg))\b|@", re.IGNORECASE)
_COMPANY = re.compile(r"\b(ltd|limited|inc|llc|gmbh|ag|s\.?a\.?|sarl|srl|bv|plc|co\.|corp|corporation|company|"
                      r"oy|ab|as|kg|pty)\b", re.IGNORECASE)


def parse_amount(token: str) -> float | None:
    """A number as written on an invoice (``1,250.50``, ``1.250,50``, ``1 250,50``, ``432``), or None.

    Args:
        token: The number as written.
    """
    text = token.strip().replace("\u00a0", " ").replace("\u202f", " ").rstrip(".,")
    negative = text.startswith("-")
    text = text.lstrip("-").replace(" ", "")
    if not text or not re.fullmatch(r"[\d.,]+", text):
        return None
    if "," in text and "." in text:
        decimal = "," if text.rfind(",") > text.rfind(".") else "."
        text = text.replace("." if decimal == "," else ",", "").replace(",", ".")
    elif "," in text:
        if re.fullmatch(r"\d{1,3}(,\d{3})+", text):
            text = text.replace(",", "")
        elif re.fullmatch(r"\d+,\d{1,2}", text):
            text = text.replace(",", ".")
        else:
            return None
    elif text.count(".") > 1:
        if not re.fullmatch(r"\d{1,3}(\.\d{3})+", text):
            return None
        text = text.replace(".", "")
    try:
        value = float(text)
    except ValueError:
        return None
    value = -value if negative else value
    return int(value) if value.is_integer() else round(value, 2)


def _iso(year: int, month: int, day: int) -> str | None:
    if year < 100:
        year += 2000
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def dates_in(line: str) -> list[tuple[str, str]]:
    """The dates written in a line: (as written, ISO 8601). A numeric date whose day and month could be
    swapped gives both readings (the day-first one first).

    Args:
        line: One line of the invoice.
    """
    found: list[tuple[str, str]] = []
    for match in _ISO.finditer(line):
        iso = _iso(int(match[1]), int(match[2]), int(match[3]))
        if iso:
            found.append((match[0], iso))
    for match in _NUMERIC_DATE.finditer(line):
        a, b, year = int(match[1]), int(match[2]), int(match[3])
        separator = match[0][len(match[1])]
        readings = [(a, b)] if separator == "." else [(a, b), (b, a)]  # dotted dates are day-first
        for day, month in readings:
            iso = _iso(year, month, day)
            if iso and (match[0], iso) not in found:
                found.append((match[0], iso))
    for match in _DAY_MONTH_YEAR.finditer(line):
        iso = _iso(int(match[3]), MONTHS[match[2].lower()], int(match[1]))
        if iso:
            found.append((match[0], iso))
    for match in _MONTH_DAY_YEAR.finditer(line):
        iso = _iso(int(match[3]), MONTHS[match[1].lower()], int(match[2]))
        if iso:
            found.append((match[0], iso))
    return found


def _without_dates(line: str) -> str:
    for written, _ in dates_in(line):
        line = line.replace(written, " " * len(written))
    return line


def numbers_in(line: str) -> list[float]:
    """The amounts and counts written in a line (dates and codes such as ``INV-2024-0042`` or ``A4`` left out;
    ``x2`` and ``2x`` are the count 2).

    Args:
        line: One line of the invoice.
    """
    values = []
    line = re.sub(r"(?<![\w])[x×](\d)", r"x \1", _without_dates(line))
    line = re.sub(r"(\d)[x×](?![\w])", r"\1 x", line)
    for match in _NUMBER.finditer(line):
        value = parse_amount(match.group())
        if value is not None:
            values.append(value)
    return values


def _codes(line: str) -> list[str]:
    """Tokens of a line that look like an invoice number: a digit in them, not a date, not a plain amount with
    decimals, not a currency."""
    out = []
    for match in _CODE.finditer(_without_dates(line)):
        token = match.group().strip(".,:;#-/")
        if not any(ch.isdigit() for ch in token) or len(token) > 40:
            continue
        if re.fullmatch(r"\d+[.,]\d{2}", token) or re.fullmatch(r"\d{1,3}([.,]\d{3})+([.,]\d{2})?", token):
            continue  # an amount
        if token not in out:
            out.append(token)
    return out


def _currencies(text: str) -> list[str]:
    found: list[tuple[int, str]] = []
    for code in CURRENCY_CODES:
        for match in re.finditer(rf"\b{code}\b", text):
            found.append((match.start(), code))
    for symbol, code in CURRENCY_SYMBOLS.items():
        index = text.find(symbol)
        if index >= 0:
            found.append((index, code))
    ordered: list[str] = []
    for _, code in sorted(found):
        if code not in ordered:
            ordered.append(code)
    return ordered


@dataclass
class Row:
    """A line-item row: its description and the numbers written on it."""

    description: str
    numbers: list[float]


@dataclass
class Candidates:
    """What the document offers for each field, in the order it is written."""

    invoice_numbers: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)
    vendors: list[str] = field(default_factory=list)
    addresses: list[str] = field(default_factory=list)
    currencies: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


def _description(line: str) -> str:
    kept: list[str] = []

    def hold(match: re.Match[str]) -> str:
        kept.append(match.group())
        return f" {chr(0xE000 + len(kept) - 1)} "

    # Parenthesised text is kept whole (its numbers are not amounts): held out under a private-use mark.
    text = re.sub(r"\([^)]*\)", hold, line)
    text = re.sub(r"(?<![\w])[x×](\d)", r"x \1", _without_dates(text))
    text = re.sub(r"(\d)[x×](?![\w])", r"\1 x", text)
    text = _NUMBER.sub(" ", text)
    for code in CURRENCY_CODES:
        text = re.sub(rf"\b{code}\b", " ", text)
    for symbol in CURRENCY_SYMBOLS:
        text = text.replace(symbol, " ")
    text = re.sub(r"(?<!\w)[x×@=|:;*]+(?!\w)|\s[-–]\s", " ", text)
    text = re.sub(r"\b(pcs|pc|units?|hrs?|h|each|ea)\b\.?", " ", text, flags=re.IGNORECASE)
    text = re.sub("[\ue000-\ue0ff]", lambda m: kept[ord(m.group()) - 0xE000], text)
    return " ".join(text.split()).strip(" -–,;:")


def _vendor_parts(line: str) -> list[str]:
    line = _VENDOR_LABEL.sub("", line).strip()
    return [part.strip() for part in re.split(r",|\s{2,}|\s\|\s|\s[-–]\s", line) if part.strip()]


def find_candidates(text: str) -> Candidates:
    """The candidate values of every invoice field in ``text`` (see the module docstring).

    Args:
        text: The invoice's text.
    """
    lines = [line.rstrip() for line in text.splitlines()]
    found = Candidates(currencies=_currencies(text))

    cue_codes = [code for line in lines if _NUMBER_CUE.search(line) and not _NOT_INVOICE_DATE.search(line)
                 and not _BUYER.match(line) and not _CONTACT.search(line) for code in _codes(line)]
    found.invoice_numbers = list(dict.fromkeys(cue_codes)) or list(dict.fromkeys(c for line in lines for c in _codes(line)))

    dated = [iso for line in lines if _DATE_CUE.search(line) and not _NOT_INVOICE_DATE.search(line)
             for _, iso in dates_in(line)]
    found.dates = list(dict.fromkeys(dated)) or list(dict.fromkeys(iso for line in lines for _, iso in dates_in(line)))

    grand = [n for line in lines if _GRAND_TOTAL.search(line) for n in numbers_in(line)]
    plain = [n for line in lines if _TOTAL.search(line) and not re.search(r"sub-?\s?total", line, re.IGNORECASE)
             for n in numbers_in(line)]
    totals = grand or plain or [n for line in lines for n in numbers_in(line)]
    found.totals = list(dict.fromkeys(n for n in totals if n > 0))

    # The vendor: labelled lines first, else the lines at the head of the document, before the buyer's.
    head: list[str] = []
    for line in lines:
        if _BUYER.match(line) or _TOTAL.search(line) or (_ITEMS_HEADER.search(line) and not _VENDOR_LABEL.match(line)):
            break
        if line.strip():
            head.append(line)
    labelled = [line for line in lines if _VENDOR_LABEL.match(line)]
    sources = labelled or [line for line in head if not _HEADER_WORDS.match(line) and not _NUMBER_CUE.search(line)
                           and not dates_in(line) and not _CONTACT.search(line) and re.search(r"[A-Za-z]{2}", line)]
    for index, line in enumerate(sources[:4]):
        parts = _vendor_parts(line)
        if not parts:
            continue
        if re.search(r"\b\d+\b", parts[0]):  # a part with a number is an address, not a name
            continue
        found.vendors.append(parts[0])
        if len(parts) > 1:
            found.addresses.append(", ".join(parts[1:]))
        following = sources[index + 1] if index + 1 < len(sources) else None
        if following is not None and re.search(r"\d", following) and not _COMPANY.search(following):
            found.addresses.append(", ".join(_vendor_parts(following)))
    found.vendors = list(dict.fromkeys(v for v in found.vendors if re.search(r"[A-Za-z]", v)))
    found.addresses = list(dict.fromkeys(a for a in found.addresses if a))

    # Line items: the rows below the items' header (or below the invoice's number, date and buyer lines when
    # there is no header) and above the first total.
    header = next((i for i, line in enumerate(lines) if _ITEMS_HEADER.search(line) and not numbers_in(line)), None)
    if header is None:
        marked = [i for i, line in enumerate(lines) if _NUMBER_CUE.search(line) or _DATE_CUE.search(line)
                  or _BUYER.match(line) or dates_in(line)]
        header = marked[-1] if marked else -1
    end = next((i for i, line in enumerate(lines) if i > header and _TOTAL.search(line)), len(lines))
    for line in lines[header + 1:end]:
        if _NOT_ITEM.search(line) or _BUYER.match(line):
            continue
        numbers = numbers_in(re.sub(r"\([^)]*\)", " ", line))  # "(box of 500)" is part of the description
        description = _description(line)
        if len(numbers) >= 2 and re.search(r"[A-Za-z]{2}", description):
            found.rows.append(Row(description, numbers))
    found.rows = found.rows[:MAX_ITEMS]
    return found


def consistent(numbers: list[float]) -> tuple[float, float, float] | None:
    """The one reading of a row's numbers as (quantity, unit price, total) with quantity x unit price = total,
    in the order written; None when there is none or more than one.

    Args:
        numbers: A row's numbers, in the order written.
    """
    readings = []
    for i, quantity in enumerate(numbers):
        for j, unit in enumerate(numbers):
            for k, total in enumerate(numbers):
                if len({i, j, k}) == 3 and i < j < k and abs(quantity * unit - total) <= 0.011 + 0.001 * abs(total):
                    readings.append((quantity, unit, total))
    return readings[0] if len(set(readings)) == 1 else None


def _choice(values: list[Any], fallback: dict[str, Any]) -> dict[str, Any]:
    return {"enum": values} if values else fallback


def _row_schema(row: Row) -> dict[str, Any]:
    reading = consistent(row.numbers)
    quantity, unit, total = ([value] for value in reading) if reading else (row.numbers,) * 3
    return {
        "type": "object",
        "properties": {
            "description": {"const": row.description},
            "quantity": {"enum": list(quantity)},
            "unit_price": {"enum": list(unit)},
            "total": {"enum": list(total)},
        },
        "required": ["description", "quantity", "unit_price", "total"],
        "additionalProperties": False,
    }


def extraction_schema(found: Candidates) -> dict[str, Any]:
    """The strict JSON schema of one extraction: every field required, every value a candidate from the text.

    Args:
        found: The candidates :func:`find_candidates` found.
    """
    vendor: dict[str, Any] = {"name": _choice(found.vendors, {"type": "string", "minLength": 1, "maxLength": 80})}
    if found.addresses:
        vendor["address"] = {"enum": found.addresses}
    properties: dict[str, Any] = {
        "invoice_number": _choice(found.invoice_numbers, {"type": "string", "minLength": 1, "maxLength": 40}),
        "date": _choice(found.dates, {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}),
        "vendor": {"type": "object", "properties": vendor, "required": list(vendor), "additionalProperties": False},
    }
    if found.rows:
        properties["line_items"] = {"type": "array", "prefixItems": [_row_schema(row) for row in found.rows],
                                    "minItems": len(found.rows), "maxItems": len(found.rows)}
    properties["total_amount"] = _choice(found.totals, {"type": "number", "exclusiveMinimum": 0})
    if found.currencies:
        properties["currency"] = {"enum": found.currencies}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def finish_invoice(invoice: dict[str, Any], found: Candidates) -> dict[str, Any]:
    """The extracted invoice checked: a line whose numbers have one consistent reading gets it, the total is one
    written on the invoice, and the currency is the document's when it names only one.

    Args:
        invoice: The invoice as the model extracted it.
        found: The candidates found in the invoice's text.
    """
    invoice = dict(invoice)
    items = []
    for item, row in zip(invoice.get("line_items") or [], found.rows, strict=False):
        reading = consistent(row.numbers)
        if reading is not None:
            item = {**item, "quantity": reading[0], "unit_price": reading[1], "total": reading[2]}
        items.append(item)
    if "line_items" in invoice or found.rows:
        invoice["line_items"] = items
    if len(found.currencies) == 1:
        invoice["currency"] = found.currencies[0]
    ordered: dict[str, Any] = {key: invoice[key] for key in ("invoice_number", "date", "total_amount", "currency", "vendor", "line_items")
               if key in invoice}
    return {**ordered, **{k: v for k, v in invoice.items() if k not in ordered}}
