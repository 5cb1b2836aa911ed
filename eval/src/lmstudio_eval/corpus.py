"""The tool corpus: hundreds of generated tool schemas and tasks on them, split by tool.

``python -m lmstudio_eval.corpus`` writes the package's corpus files (a test checks they are what this
generator writes):

- ``tool_corpus_train.jsonl``: tasks on the training tools (what ``finetune-tools`` trains on);
- ``tool_corpus_unseen.jsonl``: the **unseen-tool split**: tasks on tools that never occur in training
  (whole entities and calculators held out, so their names, parameters and descriptions are new).

Each tool comes from the catalogue (:mod:`.corpus_catalog`): an entity gives five tools (create, search,
details, update, cancel), a calculator one. Parameters cover strings, enums, integers, floats, booleans,
dates and times (schema ``format``), lists, nested objects and optional parameters with defaults; requests
write values the way people do (:mod:`.corpus_values`). Task kinds: ``call`` (one right call), ``no_call``
(no offered tool fits: the right outcome is an answer in words), ``two_step`` (a search whose result gives the
id the second call needs). Deterministic: seeded, and :data:`GENERATOR_VERSION` names this generator.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from collections.abc import Iterable

from .corpus_catalog import CALCULATORS, ENTITIES, GENERAL_QUESTIONS, IMPLIED, MISSING, OUT_OF_SCOPE, Attr, Calculator, Entity
from .corpus_values import KINDS, Kind, enum_kind, ident_kind, join_words
from .suite import ExpectedCall, Task

GENERATOR_VERSION = "corpus-1"
SEED = 20261130
CorpusSplit = Literal["train", "unseen"]
CORPUS_FILES = {"train": "tool_corpus_train.jsonl", "unseen": "tool_corpus_unseen.jsonl"}
UNSEEN_ENTITIES = 16
UNSEEN_CALCULATORS = 5
TASKS = {"train": 1100, "unseen": 400}
SHARES = {"no_call": 0.17, "two_step": 0.18}  # the rest: one call
OFFER_SIZES = (2, 3, 3, 4, 4, 4, 5, 5, 6, 7, 8)
ACTIONS = ("create", "search", "get", "update", "cancel")

PAST = {"cancel": "cancelled", "delete": "deleted", "close": "closed", "remove": "removed", "withdraw": "withdrawn",
        "void": "voided", "archive": "archived", "refund": "refunded", "end": "ended", "drop": "dropped",
        "disband": "disbanded", "unsubscribe": "unsubscribed", "stop": "stopped", "amend": "amended",
        "terminate": "terminated", "release": "released", "disable": "disabled", "revoke": "revoked"}
REASONS = ("plans changed", "booked by mistake", "no longer needed", "found a better option", "schedule conflict")
OPENERS = ("", "", "Please ", "Can you ", "Could you ", "I need to ", "I'd like to ", "Hey, can you ", "Go ahead and ",
           "I want to ", "Would you ")
QUESTION_OPENERS = ("Can you ", "Could you ", "Hey, can you ", "Would you ")


@dataclass
class CorpusTool:
    """A generated tool: its OpenAI function object, and what requests for it are made of."""

    name: str
    domain: str
    group: str  # the entity or calculator it comes from (the unit of the split)
    action: str
    purpose: str  # "book a hotel room": for answers in words
    params: list[tuple[Attr, Kind]]
    spec: dict[str, Any]
    entity: Entity | None = None
    calculator: Calculator | None = None
    id_param: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- tools


def _kind(attr: Attr) -> Kind:
    if isinstance(attr.kind, tuple):
        return enum_kind(attr.kind)
    return KINDS[attr.kind]


def _schema(attr: Attr, kind: Kind) -> dict[str, Any]:
    schema = {k: v for k, v in kind.schema.items() if k != "description"}
    hint = kind.schema.get("description")
    schema["description"] = f"{attr.label[0].upper()}{attr.label[1:]}" + (f" ({hint})" if hint else "")
    if attr.default is not MISSING:
        schema["default"] = attr.default
    return schema


def _function(name: str, description: str, params: list[tuple[Attr, Kind]]) -> dict[str, Any]:
    properties = {attr.name: _schema(attr, kind) for attr, kind in params}
    required = [attr.name for attr, _ in params if attr.required]
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def _entity_tools(entity: Entity) -> list[CorpusTool]:
    id_attr = Attr(f"{entity.key}_id", "id", f"{entity.noun} ID")
    id_kind = ident_kind(entity.prefix)
    attrs = [(a, _kind(a)) for a in entity.attrs]
    plain = [(a, k) for a, k in attrs if a.kind != "flag"]
    first, *rest = plain
    search = [(Attr(first[0].name, first[0].kind, first[0].label, first[0].phrases, True), first[1])]
    search += [(Attr(a.name, a.kind, a.label, a.phrases, False, a.default), k) for a, k in rest[:2]]
    search.append((Attr("max_results", "count", "maximum number of results", ("showing at most {v}", "top {v} only"),
                        False, 10), KINDS["count"]))
    update = [(id_attr, id_kind)] + [(Attr(a.name, a.kind, a.label, a.phrases, False, MISSING, a.words), k)
                                     for a, k in attrs[:3] if a.default is MISSING]
    history = Attr("include_history", "flag", "history", (), False, False, ("with its full history", "without history"))
    reason = Attr("reason", "note", "reason", ("with the reason '{v}'", "giving the reason '{v}'"), False)
    notify = Attr("notify", "flag", "notify", (), False, True, ("and let everyone involved know", "without notifying anyone"))
    reason_kind = Kind("reason", {"type": "string"}, lambda rng: (lambda v: (v, v))(rng.choice(REASONS)))
    rv, noun = entity.remove_verb, entity.noun
    made = {"book": "booked", "reserve": "reserved", "buy": "bought", "submit": "submitted", "make": "made",
            "place": "placed", "save": "saved", "schedule": "scheduled", "request": "requested", "log": "logged",
            "create": "created", "send": "sent", "file": "filed", "open": "opened", "publish": "published",
            "set": "set", "order": "ordered", "draft": "drafted", "add": "added", "start": "started",
            "enroll": "enrolled", "register": "registered", "plan": "planned", "sign_up": "signed up",
            "rent": "rented", "hire": "hired", "apply": "applied for", "launch": "launched", "grant": "granted",
            "subscribe": "subscribed"}[entity.create_verb]
    specs = {
        "create": (f"{entity.create_verb}_{entity.key}", f"{entity.create[0][0].upper()}{entity.create[0][1:]}.",
                   attrs, entity.create[0]),
        "search": (f"search_{entity.plural}", f"Search {entity.plural_noun} by {first[0].label}.", search,
                   f"search {entity.plural_noun}"),
        "get": (f"get_{entity.key}_details", f"Get the details and status of {_a(noun)} by its ID.",
                [(id_attr, id_kind), (history, KINDS["flag"])], f"look up {_a(noun)}"),
        "update": (f"update_{entity.key}", f"Change the details of an existing {noun}.", update, f"change {_a(noun)}"),
        "cancel": (f"{rv}_{entity.key}", f"{rv[0].upper()}{rv[1:]} {_a(noun)} by its ID.",
                   [(id_attr, id_kind), (reason, reason_kind), (notify, KINDS["flag"])], f"{rv} {_a(noun)}"),
    }
    tools = []
    for action in ACTIONS:
        name, description, params, purpose = specs[action]
        tools.append(CorpusTool(name, entity.domain, entity.key, action, purpose, params,
                                _function(name, description, params), entity=entity, id_param=id_attr.name,
                                extra={"made": made}))
    return tools


def _calculator_tool(calc: Calculator) -> CorpusTool:
    params = [(a, _kind(a)) for a in calc.attrs]
    return CorpusTool(calc.name, calc.domain, calc.name, "calculate", calc.purpose, params,
                      _function(calc.name, calc.description, params), calculator=calc)


def all_tools() -> list[CorpusTool]:
    """Every tool of the corpus, in catalogue order."""
    tools = [t for entity in ENTITIES for t in _entity_tools(entity)]
    tools += [_calculator_tool(c) for c in CALCULATORS]
    names = [t.name for t in tools]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate tool names in the catalogue: {sorted(duplicates)}")
    return tools


def unseen_groups(seed: int = SEED) -> set[str]:
    """The entities and calculators held out of training (whole groups: their tools never occur there)."""
    rng = random.Random(seed)
    entities = sorted(e.key for e in ENTITIES)
    calculators = sorted(c.name for c in CALCULATORS)
    kinds = {e.key: {a.kind if isinstance(a.kind, str) else "enum" for a in e.attrs} for e in ENTITIES}
    needed = {"date", "time", "datetime", "flag", "enum", "address", "currency", "state", "country", "weight_kg"}
    while True:  # drawn again until the held-out entities cover every value kind the split is judged on
        held = rng.sample(entities, UNSEEN_ENTITIES)
        if needed <= set().union(*(kinds[key] for key in held)):
            break
    return set(held) | set(rng.sample(calculators, UNSEEN_CALCULATORS))


def split_tools(split: CorpusSplit, seed: int = SEED) -> list[CorpusTool]:
    held = unseen_groups(seed)
    return [t for t in all_tools() if (t.group in held) == (split == "unseen")]


# ---------------------------------------------------------------------------------------------- requests


def _phrase(attr: Attr, kind: Kind, rng: random.Random) -> tuple[Any, str]:
    """A value for ``attr`` and the words of a request that give it."""
    value, written = kind.draw(rng)
    if attr.kind == "flag":
        assert attr.words is not None, f"flag {attr.name} has no words"
        return value, attr.words[0] if value else attr.words[1]
    if isinstance(attr.kind, tuple):
        written = str(value).replace("_", " ")
    phrases = attr.phrases or (f"with {attr.label} {{v}}", f"{attr.label}: {{v}}", f"and the {attr.label} is {{v}}")
    return value, rng.choice(phrases).format(v=written)


def _sentence(opener: str, action: str, parts: list[str], rng: random.Random) -> str:
    if parts:
        joined = join_words(parts) if rng.random() < 0.5 else ", ".join(parts) if rng.random() < 0.5 else " ".join(parts)
        body = f"{action} {joined}"
    else:
        body = action
    text = f"{opener}{body}"
    text = text[0].upper() + text[1:]
    end = "?" if opener in QUESTION_OPENERS else rng.choice((".", ".", "", " please.", ", thanks!"))
    return text.rstrip(".") + end if not text.endswith("?") else text


def _include(attr: Attr, rng: random.Random) -> bool:
    return attr.required or rng.random() < (0.3 if attr.default is not MISSING else 0.4)


def _entity_of(tool: CorpusTool) -> tuple[Entity, str]:
    """An entity tool's entity and ID parameter (every tool that is not a calculator has both)."""
    assert tool.entity is not None and tool.id_param is not None, f"{tool.name} is not an entity tool"
    return tool.entity, tool.id_param


def render_call(tool: CorpusTool, rng: random.Random, *, id_value: str | None = None) -> tuple[str, dict[str, Any], str]:
    """(request, arguments, action words) for one call to ``tool``."""
    if tool.calculator is not None:
        return _render_calculator(tool, rng)
    entity, id_param = _entity_of(tool)
    opener = rng.choice(OPENERS)
    args: dict[str, Any] = {}
    parts: list[str] = []
    if tool.action in ("get", "update", "cancel"):
        ident = id_value or tool.params[0][1].draw(rng)[0]
        args[id_param] = ident
        head = {
            "get": rng.choice((f"show me the details of {entity.noun} {ident}", f"get {entity.noun} {ident}",
                               f"look up {entity.noun} {ident}", f"check the status of {entity.noun} {ident}")),
            "update": rng.choice((f"update {entity.noun} {ident}", f"change {entity.noun} {ident}",
                                  f"modify {entity.noun} {ident}")),
            "cancel": rng.choice((f"{entity.remove_verb} {entity.noun} {ident}",
                                  f"{entity.remove_verb} the {entity.noun} with ID {ident}")),
        }[tool.action]
        params = tool.params[1:]
    elif tool.action == "create":
        head = rng.choice(entity.create)
        params = tool.params
    else:
        head = rng.choice((f"find {entity.plural_noun}", f"search for {entity.plural_noun}",
                           f"look for {entity.plural_noun}", f"show me {entity.plural_noun}"))
        params = tool.params
    chosen = [(a, k) for a, k in params if _include(a, rng)]
    if tool.action == "update" and not chosen:
        chosen = [params[0]]
    for attr, kind in chosen:
        value, words = _phrase(attr, kind, rng)
        args[attr.name] = value
        parts.append(words)
    rng.shuffle(parts)
    return _sentence(opener, head, parts, rng), args, tool.purpose


def _render_calculator(tool: CorpusTool, rng: random.Random) -> tuple[str, dict[str, Any], str]:
    assert tool.calculator is not None, f"{tool.name} is not a calculator"
    template = rng.choice(tool.calculator.templates)
    args: dict[str, Any] = {}
    fills: dict[str, str] = {}
    for attr, kind in tool.params:
        for (name, param, words), value in IMPLIED.items():
            if name == tool.name and param == attr.name and words in template:
                args[attr.name] = value
        if "{" + attr.name + "}" not in template:
            continue
        value, written = kind.draw(rng)
        if attr.kind == "flag":
            assert attr.words is not None, f"flag {attr.name} has no words"
            written = attr.words[0] if value else attr.words[1]
        elif isinstance(attr.kind, tuple):
            written = str(value)
        args[attr.name] = value
        fills[attr.name] = written
    if "express please" in template:
        args["express"] = True
    return template.format(**fills), args, tool.purpose


# ---------------------------------------------------------------------------------------------- results


def _new_id(tool: CorpusTool, rng: random.Random) -> str:
    entity, _ = _entity_of(tool)
    return f"{entity.prefix}-{rng.randint(1000, 99999)}"


def tool_result(tool: CorpusTool, args: dict[str, Any], rng: random.Random) -> tuple[str, str]:
    """(what the tool returns, as JSON text; a short final answer in words that reports it)."""
    if tool.name == "translate_phrase":
        text = f"({args['target_language']}) {args['text']}"
        return json.dumps({"translation": text}), f"The translation is: {text}"
    if tool.calculator is not None:
        value = round(rng.uniform(1, 5000), 2)
        return json.dumps({"result": value}), rng.choice((f"The result is {value}.", f"It comes to {value}.",
                                                         f"That works out to {value}."))
    entity, id_param = _entity_of(tool)
    noun = entity.noun
    if tool.action == "create":
        ident = _new_id(tool, rng)
        return (json.dumps({"status": "ok", id_param: ident}),
                f"Done: your {noun} is {tool.extra['made']}. Its ID is {ident}.")
    if tool.action == "search":
        found = [_new_id(tool, rng) for _ in range(rng.randint(2, 3))]
        return (json.dumps({"count": len(found), "results": [{id_param: i} for i in found]}),
                f"I found {len(found)} {entity.plural_noun}: {join_words(found)}.")
    ident = args[id_param]
    if tool.action == "get":
        status = rng.choice(("confirmed", "pending", "completed"))
        return json.dumps({id_param: ident, "status": status}), f"{noun[0].upper()}{noun[1:]} {ident} is {status}."
    if tool.action == "update":
        return json.dumps({id_param: ident, "status": "updated"}), f"{noun[0].upper()}{noun[1:]} {ident} is updated."
    done = PAST.get(entity.remove_verb, entity.remove_verb + "d")
    return json.dumps({id_param: ident, "status": done}), f"{noun[0].upper()}{noun[1:]} {ident} is {done}."


# ---------------------------------------------------------------------------------------------- tasks


def _offer(targets: list[CorpusTool], pool: list[CorpusTool], rng: random.Random, exclude: Iterable[str] = ()) -> list[dict]:
    """The targets plus near-miss distractors (same entity, same domain), then others: 2-8 tools in all."""
    banned = set(exclude) | {t.name for t in targets}
    size = max(len(targets), rng.choice(OFFER_SIZES))
    chosen = list(targets)
    group = targets[0].group if targets else None
    domain = targets[0].domain if targets else None
    near = [t for t in pool if t.group == group and t.name not in banned]
    same_domain = [t for t in pool if t.domain == domain and t.group != group and t.name not in banned]
    rng.shuffle(near)
    rng.shuffle(same_domain)
    for candidate in near[: rng.randint(1, 2)] + same_domain[:1]:
        if len(chosen) < size:
            chosen.append(candidate)
    others = [t for t in pool if t.name not in banned and t not in chosen]
    while len(chosen) < size and others:
        chosen.append(others.pop(rng.randrange(len(others))))
    rng.shuffle(chosen)
    return [t.spec for t in chosen]


def _call_task(task_id: str, tool: CorpusTool, pool: list[CorpusTool], rng: random.Random) -> Task:
    instruction, args, _ = render_call(tool, rng)
    result, answer = tool_result(tool, args, rng)
    return Task(id=task_id, tools=_offer([tool], pool, rng), instruction=instruction,
                expected=ExpectedCall(name=tool.name, arguments=args), results=[result], answer=answer)


def _two_step_task(task_id: str, entity_tools: list[CorpusTool], pool: list[CorpusTool], rng: random.Random) -> Task:
    search = next(t for t in entity_tools if t.action == "search")
    follow = rng.choice([t for t in entity_tools if t.action in ("get", "cancel")])
    instruction, args, _ = render_call(search, rng)
    found, _ = tool_result(search, args, rng)
    entity, search_id = _entity_of(search)
    _, follow_id = _entity_of(follow)
    first_id = json.loads(found)["results"][0][search_id]
    then = {"get": rng.choice(("then show me the details of the first one", "and then get the status of the first result",
                               "then look up the first match")),
            "cancel": rng.choice((f"then {entity.remove_verb} the first one", f"and {entity.remove_verb} the first result",
                                  f"then {entity.remove_verb} the first match"))}[follow.action]
    instruction = f"{instruction.rstrip('.?! ')}, {then}."
    second = {follow_id: first_id}
    result2, answer = tool_result(follow, second, rng)
    return Task(id=task_id, kind="two_step", tools=_offer([search, follow], pool, rng), instruction=instruction,
                expected=ExpectedCall(name=search.name, arguments=args),
                expected_calls=[ExpectedCall(name=search.name, arguments=args), ExpectedCall(name=follow.name, arguments=second)],
                results=[found, result2], answer=answer)


def _own_half(items: list, split: str) -> list:
    """Half of a fixed pool per split (even items for training, odd for the unseen-tool split): no measured
    request was trained on."""
    return items[0::2] if split == "train" else items[1::2]


def _no_call_task(task_id: str, pool: list[CorpusTool], rng: random.Random, split: str) -> Task:
    roll = rng.random()
    if roll < 0.2:
        question, reply = rng.choice(_own_half(sorted(GENERAL_QUESTIONS.items()), split))
        return Task(id=task_id, kind="no_call", tools=_offer([], pool, rng), instruction=question, answer=reply)
    if roll < 0.45:
        purpose, instruction = rng.choice(_own_half(list(OUT_OF_SCOPE), split))
        tools = _offer([], pool, rng)
    else:
        target = rng.choice([t for t in pool if t.entity is not None and t.action in ("create", "cancel", "search")])
        instruction, _, purpose = render_call(target, rng)
        if rng.random() < 0.5:  # near miss: the same entity's other tools, none of which does this
            near = [t for t in pool if t.group == target.group and t.name != target.name]
            tools = [t.spec for t in rng.sample(near, rng.randint(2, len(near)))]
        else:  # other domains only
            tools = _offer([], [t for t in pool if t.domain != target.domain], rng)
    answer = rng.choice((f"I can't {purpose} with the tools I have, so I have not done anything.",
                         f"None of my tools can {purpose}, sorry.",
                         f"I'm not able to {purpose} here: no available tool does that."))
    return Task(id=task_id, kind="no_call", tools=tools, instruction=instruction, answer=answer)


def generate_corpus(split: CorpusSplit, *, count: int | None = None, seed: int = SEED) -> list[Task]:
    """The corpus tasks of ``split``: one-call, no-call and two-step tasks on that split's tools only."""
    pool = split_tools(split, seed)
    count = count if count is not None else TASKS[split]
    rng = random.Random(f"{seed}-{split}")
    groups: dict[str, list[CorpusTool]] = {}
    for tool in pool:
        groups.setdefault(tool.group, []).append(tool)
    entity_groups = sorted(g for g, tools in groups.items() if tools[0].entity is not None)
    kinds = ["no_call"] * round(count * SHARES["no_call"]) + ["two_step"] * round(count * SHARES["two_step"])
    kinds += ["call"] * (count - len(kinds))
    rng.shuffle(kinds)
    tasks: list[Task] = []
    seen: set[str] = set()
    call_index = 0
    for number, kind in enumerate(kinds):
        for _ in range(20):  # a repeated request is drawn again
            task_id = f"{split}-{number:04d}"
            if kind == "call":
                tool = pool[call_index % len(pool)]  # every tool gets its share
                task = _call_task(f"{task_id}-{tool.name}", tool, pool, rng)
            elif kind == "two_step":
                group = entity_groups[rng.randrange(len(entity_groups))]
                task = _two_step_task(f"{task_id}-{group}-2step", groups[group], pool, rng)
            else:
                task = _no_call_task(f"{task_id}-none", pool, rng, split)
            if task.instruction not in seen or kind == "no_call":
                break
        if kind == "call":
            call_index += 1
        seen.add(task.instruction)
        _check(task, pool)
        tasks.append(task)
    return tasks


def _check(task: Task, pool: list[CorpusTool]) -> None:
    """A generator bug must not become a wrong "expected": each expected call validates against its tool."""
    from lmstudio_agent.agent.tools import ToolRegistry
    from .suite import tools_for

    tools = {t.name: t for t in tools_for(task, ToolRegistry())}
    for call in task.expected_calls or ([task.expected] if task.expected else []):
        tools[call.name].validate_arguments(call.arguments)


def corpus_path(split: CorpusSplit) -> Path:
    """The package's corpus file for ``split``."""
    return Path(str(resources.files("lmstudio_eval") / "data" / CORPUS_FILES[split]))


def stats(tasks: list[Task]) -> dict[str, Any]:
    tools = {t["function"]["name"] for task in tasks for t in task.tools}
    kinds: dict[str, int] = {}
    for task in tasks:
        kinds[task.kind] = kinds.get(task.kind, 0) + 1
    expected = {c.name for task in tasks for c in (task.expected_calls or ([task.expected] if task.expected else []))}
    return {"tasks": len(tasks), "kinds": kinds, "tools_offered": len(tools), "tools_expected": len(expected)}


def main() -> None:
    """Regenerate the package's corpus files (``python -m lmstudio_eval.corpus``)."""
    for split in ("train", "unseen"):
        tasks = generate_corpus(split)
        path = corpus_path(split)
        path.write_text("".join(task.to_json(compact=True) + "\n" for task in tasks), encoding="utf-8")
        print(f"{split}: {path} {json.dumps(stats(tasks))}")
    print(f"generator {GENERATOR_VERSION}, seed {SEED}, {len(all_tools())} tools")


if __name__ == "__main__":
    main()
