"""An overall deadline for a run, shared by every call inside it."""

from __future__ import annotations

import time

from .errors import AgentError, ErrorCode

# A run's deadline when a deployment sets none (EXECUTE_DEADLINE_SECONDS).
DEFAULT_DEADLINE_SECONDS = 25.0


class Deadline:
    """A point in monotonic time after which a run must stop.

    Every network call inside a run takes ``min(its own timeout, deadline.remaining())``, so the run as a
    whole never outlives the deadline, whatever the number of rounds or retries.

    Args:
        seconds: How long from now the run may take (None: no deadline).
    """

    def __init__(self, seconds: float | None) -> None:
        """Start the clock now."""
        self.seconds = seconds
        self._expires_at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` for no deadline."""
        if self._expires_at is None:
            return None
        return max(0.0, self._expires_at - time.monotonic())

    @property
    def expired(self) -> bool:
        """True once no time is left (never, for no deadline)."""
        left = self.remaining()
        return left is not None and left <= 0.0

    def clamp(self, timeout: float) -> float:
        """``timeout`` cut down to what is left; raises UPSTREAM_TIMEOUT once nothing is left.

        Args:
            timeout: A network call's own timeout, in seconds.
        """
        left = self.remaining()
        if left is None:
            return timeout
        if left <= 0.0:
            raise AgentError(ErrorCode.UPSTREAM_TIMEOUT, f"the run's deadline of {self.seconds:g}s has passed")
        return min(timeout, left)
