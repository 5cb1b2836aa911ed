"""Tools the endpoint tests register: one read-only (``echo``) and one with side effects (``send_email``)."""

from __future__ import annotations

from lmstudio_agent.agent.tools import ToolRegistry


def echo_and_email() -> ToolRegistry:
    """A fresh registry with ``echo`` (no side effects) and ``send_email`` (side effects)."""
    reg = ToolRegistry()

    @reg.tool
    def echo(text: str) -> str:
        """Echo text back.

        Args:
            text: The text.
        """
        return text

    @reg.tool(side_effects=True)
    def send_email(to: str) -> str:
        """Send an email.

        Args:
            to: Recipient.
        """
        return f"sent to {to}"

    return reg
