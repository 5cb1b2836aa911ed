"""ISO codes for what people name in words: currencies (ISO 4217), countries (ISO 3166 alpha-2 and alpha-3), US
states (postal codes) and languages (ISO 639-1), from small built-in tables; one of the candidate kinds
:mod:`.values` offers.

Pure functions of text; no dependency beyond the standard library (the core also runs under Pyodide).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["COUNTRIES", "CURRENCIES", "LANGUAGES", "US_STATES", "codes"]

CURRENCIES: dict[str, tuple[str, ...]] = {
    "USD": ("us dollar", "us dollars", "u.s. dollars", "american dollars", "dollar", "dollars", "bucks", "$", "usd"),
    "EUR": ("euro", "euros", "€", "eur"),
    "GBP": ("british pound", "british pounds", "pound sterling", "pounds sterling", "sterling", "pound", "pounds",
            "quid", "£", "gbp"),
    "JPY": ("japanese yen", "yen", "¥", "jpy"),
    "CHF": ("swiss franc", "swiss francs", "franc", "francs", "chf"),
    "CAD": ("canadian dollar", "canadian dollars", "cad"),
    "AUD": ("australian dollar", "australian dollars", "aud"),
    "NZD": ("new zealand dollar", "new zealand dollars", "nzd"),
    "CNY": ("chinese yuan", "yuan", "renminbi", "rmb", "cny"),
    "INR": ("indian rupee", "indian rupees", "rupee", "rupees", "₹", "inr"),
    "SEK": ("swedish krona", "swedish kronor", "krona", "kronor", "sek"),
    "NOK": ("norwegian krone", "norwegian kroner", "nok"),
    "DKK": ("danish krone", "danish kroner", "dkk"),
    "MXN": ("mexican peso", "mexican pesos", "peso", "pesos", "mxn"),
    "BRL": ("brazilian real", "brazilian reais", "reais", "brl"),
    "KRW": ("south korean won", "korean won", "won", "krw"),
    "RUB": ("russian ruble", "russian rubles", "ruble", "rubles", "rouble", "roubles", "rub"),
    "TRY": ("turkish lira", "lira", "try"),
    "ZAR": ("south african rand", "rand", "zar"),
    "SGD": ("singapore dollar", "singapore dollars", "sgd"),
    "HKD": ("hong kong dollar", "hong kong dollars", "hkd"),
    "PLN": ("polish zloty", "zloty", "pln"),
    "THB": ("thai baht", "baht", "thb"),
    "AED": ("uae dirham", "emirati dirham", "dirham", "dirhams", "aed"),
    "ILS": ("israeli shekel", "shekel", "shekels", "ils"),
    "CZK": ("czech koruna", "koruna", "czk"),
    "HUF": ("hungarian forint", "forint", "huf"),
    "IDR": ("indonesian rupiah", "rupiah", "idr"),
    "PHP": ("philippine peso", "philippine pesos", "php"),
    "ARS": ("argentine peso", "argentine pesos", "ars"),
    "EGP": ("egyptian pound", "egyptian pounds", "egp"),
    "NGN": ("nigerian naira", "naira", "ngn"),
    "VND": ("vietnamese dong", "dong", "vnd"),
    "BTC": ("bitcoin", "bitcoins", "btc"),
}

# name: (alpha-2, alpha-3); extra names point at the same codes
COUNTRIES: dict[str, tuple[str, str]] = {
    "united states": ("US", "USA"), "united states of america": ("US", "USA"), "usa": ("US", "USA"),
    "america": ("US", "USA"), "the us": ("US", "USA"), "u.s.": ("US", "USA"),
    "united kingdom": ("GB", "GBR"), "uk": ("GB", "GBR"), "great britain": ("GB", "GBR"), "britain": ("GB", "GBR"),
    "england": ("GB", "GBR"), "canada": ("CA", "CAN"), "mexico": ("MX", "MEX"), "brazil": ("BR", "BRA"),
    "argentina": ("AR", "ARG"), "chile": ("CL", "CHL"), "colombia": ("CO", "COL"), "peru": ("PE", "PER"),
    "germany": ("DE", "DEU"), "france": ("FR", "FRA"), "spain": ("ES", "ESP"), "italy": ("IT", "ITA"),
    "portugal": ("PT", "PRT"), "netherlands": ("NL", "NLD"), "the netherlands": ("NL", "NLD"),
    "holland": ("NL", "NLD"), "belgium": ("BE", "BEL"), "switzerland": ("CH", "CHE"), "austria": ("AT", "AUT"),
    "sweden": ("SE", "SWE"), "norway": ("NO", "NOR"), "denmark": ("DK", "DNK"), "finland": ("FI", "FIN"),
    "iceland": ("IS", "ISL"), "ireland": ("IE", "IRL"), "poland": ("PL", "POL"), "czech republic": ("CZ", "CZE"),
    "czechia": ("CZ", "CZE"), "hungary": ("HU", "HUN"), "greece": ("GR", "GRC"), "turkey": ("TR", "TUR"),
    "russia": ("RU", "RUS"), "ukraine": ("UA", "UKR"), "romania": ("RO", "ROU"), "egypt": ("EG", "EGY"),
    "nigeria": ("NG", "NGA"), "kenya": ("KE", "KEN"), "south africa": ("ZA", "ZAF"), "morocco": ("MA", "MAR"),
    "ethiopia": ("ET", "ETH"), "israel": ("IL", "ISR"), "saudi arabia": ("SA", "SAU"),
    "united arab emirates": ("AE", "ARE"), "uae": ("AE", "ARE"), "india": ("IN", "IND"),
    "pakistan": ("PK", "PAK"), "bangladesh": ("BD", "BGD"), "china": ("CN", "CHN"), "japan": ("JP", "JPN"),
    "south korea": ("KR", "KOR"), "korea": ("KR", "KOR"), "taiwan": ("TW", "TWN"), "vietnam": ("VN", "VNM"),
    "thailand": ("TH", "THA"), "singapore": ("SG", "SGP"), "malaysia": ("MY", "MYS"),
    "indonesia": ("ID", "IDN"), "philippines": ("PH", "PHL"), "the philippines": ("PH", "PHL"),
    "australia": ("AU", "AUS"), "new zealand": ("NZ", "NZL"), "cuba": ("CU", "CUB"), "jamaica": ("JM", "JAM"),
    "venezuela": ("VE", "VEN"), "iran": ("IR", "IRN"), "iraq": ("IQ", "IRQ"), "qatar": ("QA", "QAT"),
    "nepal": ("NP", "NPL"), "sri lanka": ("LK", "LKA"), "croatia": ("HR", "HRV"), "serbia": ("RS", "SRB"),
    "bulgaria": ("BG", "BGR"), "slovakia": ("SK", "SVK"), "slovenia": ("SI", "SVN"), "estonia": ("EE", "EST"),
    "latvia": ("LV", "LVA"), "lithuania": ("LT", "LTU"), "luxembourg": ("LU", "LUX"), "ghana": ("GH", "GHA"),
}

US_STATES: dict[str, str] = {
    "alabama": "AL", "alaska": "AK", "arizona": "AZ", "arkansas": "AR", "california": "CA", "colorado": "CO",
    "connecticut": "CT", "delaware": "DE", "florida": "FL", "georgia": "GA", "hawaii": "HI", "idaho": "ID",
    "illinois": "IL", "indiana": "IN", "iowa": "IA", "kansas": "KS", "kentucky": "KY", "louisiana": "LA",
    "maine": "ME", "maryland": "MD", "massachusetts": "MA", "michigan": "MI", "minnesota": "MN",
    "mississippi": "MS", "missouri": "MO", "montana": "MT", "nebraska": "NE", "nevada": "NV",
    "new hampshire": "NH", "new jersey": "NJ", "new mexico": "NM", "new york": "NY", "north carolina": "NC",
    "north dakota": "ND", "ohio": "OH", "oklahoma": "OK", "oregon": "OR", "pennsylvania": "PA",
    "rhode island": "RI", "south carolina": "SC", "south dakota": "SD", "tennessee": "TN", "texas": "TX",
    "utah": "UT", "vermont": "VT", "virginia": "VA", "washington": "WA", "west virginia": "WV",
    "wisconsin": "WI", "wyoming": "WY", "district of columbia": "DC", "washington dc": "DC", "washington d.c.": "DC",
}

LANGUAGES: dict[str, str] = {
    "english": "en", "german": "de", "french": "fr", "spanish": "es", "italian": "it", "portuguese": "pt",
    "dutch": "nl", "swedish": "sv", "norwegian": "no", "danish": "da", "finnish": "fi", "polish": "pl",
    "czech": "cs", "hungarian": "hu", "greek": "el", "turkish": "tr", "russian": "ru", "ukrainian": "uk",
    "arabic": "ar", "hebrew": "he", "hindi": "hi", "bengali": "bn", "urdu": "ur", "chinese": "zh",
    "mandarin": "zh", "japanese": "ja", "korean": "ko", "vietnamese": "vi", "thai": "th", "indonesian": "id",
    "malay": "ms", "swahili": "sw", "romanian": "ro", "persian": "fa", "tagalog": "tl", "catalan": "ca",
}


def _names_in(lowered: str, names: Iterable[str]) -> list[tuple[int, str]]:
    """(position, name) for every name found as whole words in ``lowered``; a name inside a longer one found
    at the same place is left out (``dollars`` in ``canadian dollars``)."""
    hits: list[tuple[int, int, str]] = []
    for name in sorted(names, key=len, reverse=True):
        pattern = re.escape(name) if not name[0].isalnum() else rf"(?<![\w]){re.escape(name)}(?![\w])"
        for match in re.finditer(pattern, lowered):
            if not any(a <= match.start() and match.end() <= b for a, b, _ in hits):
                hits.append((match.start(), match.end(), name))
    return sorted((start, name) for start, _, name in hits)


def codes(texts: Iterable[str]) -> dict[str, list[str]]:
    """The codes for what the texts name, in order of mention: ``currency`` (ISO 4217), ``country`` (ISO 3166
    alpha-2 then alpha-3), ``state`` (US postal codes) and ``language`` (ISO 639-1).

    Args:
        texts: The texts to read.
    """
    out: dict[str, list[str]] = {"currency": [], "country": [], "state": [], "language": []}
    currency_names = {name: code for code, names in CURRENCIES.items() for name in names}

    def add(kind: str, code: str) -> None:
        if code not in out[kind]:
            out[kind].append(code)

    for text in texts:
        lowered = text.lower()
        for _, name in _names_in(lowered, currency_names):
            if name in ("try", "won", "rand", "dong", "php", "franc", "lira") and not _money_context(lowered, name):
                continue  # common words (or a language) unless money is in sight
            add("currency", currency_names[name])
        for _, name in _names_in(lowered, COUNTRIES):
            if name in ("us", "the us") and "the us" not in lowered:
                continue
            for code in COUNTRIES[name]:
                add("country", code)
        for _, name in _names_in(lowered, US_STATES):
            add("state", US_STATES[name])
        for _, name in _names_in(lowered, LANGUAGES):
            add("language", LANGUAGES[name])
    return out


def _money_context(lowered: str, name: str) -> bool:
    return bool(re.search(rf"\d[\d,.]*\s*(?:\w+\s+)?{re.escape(name)}\b|\b{re.escape(name)}\s+(?:to|into|in)\b",
                          lowered))
