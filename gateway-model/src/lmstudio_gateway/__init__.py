"""The embedded model host: a GGUF served by llama-cpp-python's OpenAI-compatible server, behind a key.

It speaks the parts of LM Studio's API that the core client meets (structured output as ``json_schema``,
the legacy ``/api/v0/models`` listing), so the core talks to it and to LM Studio in one dialect.
"""

from __future__ import annotations

from lmstudio_gateway.models import DEFAULT_MODEL_ALIAS, ModelNotFoundError, default_model_path
from lmstudio_gateway.process import GatewayStartError, RunningServer, run_in_background

__all__ = [
    "DEFAULT_MODEL_ALIAS",
    "GatewayStartError",
    "ModelNotFoundError",
    "RunningServer",
    "default_model_path",
    "run_in_background",
]
