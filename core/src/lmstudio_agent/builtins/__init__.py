"""Built-in tools: data extraction, sentiment, the invoice agent and the persona pattern."""

from __future__ import annotations

from ..agent.tools import ToolRegistry
from .data import analyze_sentiment, extract_data, label_distribution, schema_from_field_types
from .invoices import (
    INVOICE_GOALS, INVOICE_INSTRUCTION, INVOICE_SCHEMA, InvoiceStorage, JsonFileInvoiceStorage, extract_invoice_data,
    store_invoice,
)
from .personas import (
    design_test_suite,
    generate_technical_documentation,
    perform_code_review,
    prompt_expert,
    write_feature_announcement,
)

__all__ = [
    "INVOICE_GOALS", "INVOICE_INSTRUCTION", "INVOICE_SCHEMA", "InvoiceStorage", "JsonFileInvoiceStorage", "analyze_sentiment", "builtin_registry",
    "design_test_suite", "extract_data", "extract_invoice_data", "generate_technical_documentation",
    "label_distribution", "perform_code_review", "prompt_expert", "schema_from_field_types", "store_invoice",
    "write_feature_announcement",
]


def builtin_registry() -> ToolRegistry:
    """A fresh registry holding every built-in tool (``store_invoice`` is marked as having side effects)."""
    registry = ToolRegistry()
    registry.register(extract_data, tags=["data"])
    registry.register(analyze_sentiment, tags=["data"])
    registry.register(extract_invoice_data, tags=["document_processing", "invoices"])
    registry.register(store_invoice, tags=["storage", "invoices"], side_effects=True)
    registry.register(prompt_expert, tags=["persona"])
    registry.register(generate_technical_documentation, tags=["documentation", "persona"])
    registry.register(design_test_suite, tags=["testing", "persona"])
    registry.register(perform_code_review, tags=["code_quality", "persona"])
    registry.register(write_feature_announcement, tags=["communication", "persona"])
    return registry
