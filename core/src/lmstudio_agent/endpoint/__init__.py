"""The HTTP endpoint framework every adapter (the Lambda, the Worker, the bridge hub) is a thin layer over.

- :mod:`.contract`: the shared contract (models, auth, validation, the execute function);
- :mod:`.router`: the whole HTTP API in one call;
- :mod:`.streaming`, :mod:`.openai_api`, :mod:`.conversation`: the streamed and OpenAI-compatible faces, and chat
  bodies read into one request;
- :mod:`.runs`: async runs; :mod:`.cache`: the result-cache rules; :mod:`.openapi`: the OpenAPI document;
- :mod:`.backend`: the settings, the process's service and the per-request backend;
- :mod:`.uvicorn_limits`: the limits every uvicorn this project runs gets.

``import lmstudio_agent`` does not import this package; an adapter imports what it uses.
"""
