"""The Memory of the notebook's GAME design: the conversation of one run, as the loop sends it back to the model."""

from __future__ import annotations

from typing import Any

__all__ = ["Memory"]


class Memory:
    """The conversation so far: each item is who added it (``user``, ``assistant``, ``environment``), its text
    and the chat message (OpenAI format) that goes back to the model."""

    def __init__(self) -> None:
        """Start with an empty conversation."""
        self.items: list[dict[str, Any]] = []

    def to_chat_messages(self) -> list[dict[str, Any]]:
        """The chat messages (OpenAI format) recorded in memory, in order."""
        return [m["message"] for m in self.items]

    def add_message(self, kind: str, message: dict[str, Any]) -> None:
        """Record ``message``, added by ``kind``.

        Args:
            kind: Who added it: ``user``, ``assistant`` or ``environment``.
            message: The chat message (OpenAI format); its ``content`` is also kept as the item's text.
        """
        self.items.append({"type": kind, "content": message.get("content", ""), "message": message})

