"""llama.cpp through llama-cpp-python, run as a child process (``python -m lmstudio_finetune.llama_tools``).

``quantize SRC DST TYPE`` calls ``llama_model_quantize``; ``check PATH`` loads the GGUF and generates. They run in
a child so that a llama.cpp abort on a bad file ends the child, not the caller, and the model's memory goes with it.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys

from lmstudio_finetune.formats import QUANT_TYPES

__all__ = ["main"]



def quantize(source: str, destination: str, kind: str, threads: int) -> int:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, QUANT_TYPES[kind])
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(source.encode(), destination.encode(), ctypes.byref(params))
    if status != 0:
        print(f"llama_model_quantize({kind}) failed with status {status}", file=sys.stderr)
        return 1
    return 0


def check(path: str, prompt: str, max_tokens: int, lora: str | None = None) -> int:
    from llama_cpp import Llama

    model = Llama(model_path=path, n_ctx=512, n_threads=None, verbose=False, seed=0, lora_path=lora)
    reply = model.create_chat_completion(
        messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0.0
    )
    if not isinstance(reply, dict):  # a stream, which stream=False never gives
        raise TypeError("expected one chat completion")
    text = reply["choices"][0]["message"]["content"] or ""
    tokens = reply["usage"]["completion_tokens"]
    print(json.dumps({"text": text, "tokens": tokens}))
    if tokens == 0:
        print("the model generated nothing", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmstudio_finetune.llama_tools")
    commands = parser.add_subparsers(dest="command", required=True)
    q = commands.add_parser("quantize")
    q.add_argument("source")
    q.add_argument("destination")
    q.add_argument("type", choices=sorted(QUANT_TYPES))
    q.add_argument("--threads", type=int, default=0)
    c = commands.add_parser("check")
    c.add_argument("path")
    c.add_argument("--prompt", default="Say hello in one short sentence.")
    c.add_argument("--max-tokens", type=int, default=24)
    c.add_argument("--lora", default=None, help="A GGUF LoRA adapter to apply to the model.")
    args = parser.parse_args(argv)
    if args.command == "quantize":
        return quantize(args.source, args.destination, args.type, args.threads)
    return check(args.path, args.prompt, args.max_tokens, args.lora)


if __name__ == "__main__":
    sys.exit(main())
