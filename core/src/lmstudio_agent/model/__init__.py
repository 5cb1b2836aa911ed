"""The model side: the client of an OpenAI-compatible server, and how tool calls are asked for and read.

- :mod:`.client`, :mod:`.connection`: the chat client and where the server is; :mod:`.completions`: what a
  completion answers (``ChatResponse``), read from the JSON body or the stream;
- :mod:`.modes`: the three tool-call modes (native, parsed, constrained);
- :mod:`.toolcalls`: tool calls parsed out of a reply's text;
- :mod:`.schema`, :mod:`.grammar_bounds`: JSON schemas, and the bounds on one schema's grammar (shared with
  gateway-model, so this package's ``__init__`` imports nothing);
- :mod:`.llm`: the notebook's ``LLM`` and ``prompt_llm_for_json``;
- :mod:`.smallmodel`: the constrained mode's rules for very small models, imported only when that mode is used.
"""
