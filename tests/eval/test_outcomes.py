"""The outcome evaluation (issue 22, part 3): every task is achievable by its gold calls, the checker fails what
is not the outcome (a missing or repeated call, an echo, JSON), the vocabulary is the generator's own, and the runner
sends whole runs through the real agent loop (a scripted loopback server here; the embedded model in
test_outcomes_model.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lmstudio_agent.builtins.invoice_text import find_candidates
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.agent.messages import AgentMessage
from lmstudio_agent.agent.tools import ActionContext
from lmstudio_eval.cli import eval_app
from lmstudio_eval.corpus import corpus_path
from lmstudio_eval.outcomes import runner as outcome_runner
from lmstudio_eval.outcomes.checks import check_run, is_echo, states
from lmstudio_eval.outcomes.generator import NOTEBOOK_INVOICE_GOALS, SPLIT_SEEDS, load_split, quoted_note
from lmstudio_eval.outcomes.report import build_report, figures
from lmstudio_eval.outcomes.runner import TimedClient, policy_kwargs, run_tasks, run_wording
from lmstudio_eval.outcomes.world import FUNCTIONS, INVOICE_TOOLS, CountingStorage, World, build_tool
from lmstudio_eval.suite import builtin_suite_path
from tests.support.openai_stub import MODEL_ID, text, tool_call

ROOT = Path(__file__).resolve().parents[2]
TASKS = {split: load_split(split) for split in SPLIT_SEEDS}
ALL = [task for tasks in TASKS.values() for task in tasks]


def answer_text(task: dict[str, Any]) -> str:
    """A final answer that states every value the task names (as a person would write it)."""
    parts = []
    for spec in task["answer"]:
        if "text" in spec:
            parts.append(str(spec["text"]))
        elif "number" in spec:
            parts.append(f"{spec['number']:g}")
        elif "share" in spec:
            parts.append(f"{round(spec['share'] * 100)}% sure")
        else:
            parts.append(spec["date"])
    return "All done: " + ", ".join(parts) + "." if parts else "Sorry, none of my tools can do that."


async def gold_transcript(task: dict[str, Any], instruction: str, world: World, storage: CountingStorage,
                          calls: list[dict[str, Any]] | None = None, answer: str | None = None) -> list[AgentMessage]:
    """Run ``calls`` (default: the gold ones) with the real tools on ``world``, as the loop records them."""
    transcript = []
    context = ActionContext({"world": world, "invoice_storage": storage})
    for call in task["gold_calls"] if calls is None else calls:
        arguments = {k: (quoted_note(instruction) if v == "{note}" else v) for k, v in call["arguments"].items()}
        tool = build_tool(call["name"])
        validated = tool.args_model.model_validate(arguments).model_dump(by_alias=True) if tool.args_model else arguments
        transcript.append(AgentMessage(type="action", tool=call["name"], args=arguments))
        result = await tool.run(validated, context)
        transcript.append(AgentMessage(type="result", tool=call["name"], content=json.dumps(result, default=str)))
    transcript.append(AgentMessage(type="result", content=answer_text(task) if answer is None else answer))
    return transcript


@pytest.mark.parametrize("task", ALL, ids=[t["id"] for t in ALL])
async def test_every_task_is_achieved_by_its_gold_calls_and_fails_without_them(task):
    for wording in task["wordings"]:
        instruction = wording["instruction"]
        world, storage = World.from_state(task["state"]), CountingStorage()
        verdict = check_run(task, instruction, await gold_transcript(task, instruction, world, storage), world, storage)
        assert verdict.success, (wording, verdict)
        assert verdict.first_call_exact in (None, True)
        # an echo of the request, or JSON, is no answer (even with the state right)
        world, storage = World.from_state(task["state"]), CountingStorage()
        echoed = await gold_transcript(task, instruction, world, storage, answer=instruction)
        assert not check_run(task, instruction, echoed, world, storage).success
        world, storage = World.from_state(task["state"]), CountingStorage()
        as_json = await gold_transcript(task, instruction, world, storage, answer=json.dumps({"done": answer_text(task)}))
        assert not check_run(task, instruction, as_json, world, storage).answered
    instruction = task["wordings"][0]["instruction"]
    if task["kind"] != "restraint":
        # no call at all, or the answer alone: the outcome is not there
        world, storage = World.from_state(task["state"]), CountingStorage()
        skipped = await gold_transcript(task, instruction, world, storage, calls=[])
        assert not check_run(task, instruction, skipped, world, storage).success
        # an answer that does not state the result
        world, storage = World.from_state(task["state"]), CountingStorage()
        vague = await gold_transcript(task, instruction, world, storage, answer="I have processed your request.")
        assert not check_run(task, instruction, vague, world, storage).success


@pytest.mark.parametrize("task", [t for t in ALL if t["kind"] in ("single", "goal", "invoice")],
                         ids=lambda t: t["id"])
async def test_a_side_effect_made_twice_is_not_the_outcome(task):
    instruction = task["wordings"][0]["instruction"]
    twice = [*task["gold_calls"], task["gold_calls"][-1]]
    world, storage = World.from_state(task["state"]), CountingStorage()
    try:
        transcript = await gold_transcript(task, instruction, world, storage, calls=twice)
    except (ValueError, LookupError):
        return  # the tool itself refuses the second call (a pitch already taken, a reading that went back)
    assert not check_run(task, instruction, transcript, world, storage).success


@pytest.mark.parametrize("task", [t for t in ALL if t["kind"] == "restraint"], ids=lambda t: t["id"])
async def test_restraint_fails_when_a_side_effect_tool_runs(task):
    instruction = task["wordings"][0]["instruction"]
    world, storage = World.from_state(task["state"]), CountingStorage()
    table, rows = next(iter(task["state"].items()))
    key = sorted(rows)[0]
    writer = next(name for name in task["tools"] if name in ("relocate_hive", "credit_wallet", "restock_seed_packets",
                                                             "reschedule_observation", "tag_specimen", "fire_kiln_load",
                                                             "enlist_singer", "requeen_hive", "debit_wallet",
                                                             "lend_seed_packets", "shelve_observation"))
    world.change(writer, table, key, {"touched": True})
    transcript = [AgentMessage(type="action", tool=writer, args={}), AgentMessage(type="result", content="Done, sorry.")]
    verdict = check_run(task, instruction, transcript, world, storage)
    assert not verdict.success and not verdict.state_ok


def test_each_split_has_every_kind_and_sixty_tasks_of_five_wordings():
    for tasks in TASKS.values():
        assert len(tasks) >= 60 and all(len(t["wordings"]) >= 5 for t in tasks)
        kinds = {t["kind"] for t in tasks}
        assert kinds == {"single", "restraint", "answer", "goal", "invoice"}
        assert {t["family"] for t in tasks if t["kind"] == "invoice"} == {"inline", "document"}
        for task in tasks:
            for name in task["tools"]:
                assert build_tool(name).name == name
            if task["kind"] == "single":
                assert len(task["tools"]) >= 3  # near neighbours beside the right tool


def _old_tool_names() -> set[str]:
    names = set()
    for path in (corpus_path("train"), corpus_path("unseen"), builtin_suite_path("heldout"), builtin_suite_path("train")):
        for line in path.read_text(encoding="utf-8").splitlines():
            names.update(tool["function"]["name"] for tool in json.loads(line)["tools"])
    return names


def test_the_vocabulary_is_the_new_generators_own():
    old = _old_tool_names()
    new = set(FUNCTIONS)
    assert not new & old
    assert set(INVOICE_TOOLS) <= old  # the notebook's own tools, required verbatim, are the only shared ones
    old_verbs = {name.split("_")[0] for name in old}
    assert not {name.split("_")[0] for name in new} & old_verbs
    # no identifier of the old PREFIX-12345 shape anywhere in the new tasks
    for task in ALL:
        for wording in task["wordings"]:
            assert not re.search(r"\b[A-Z]{2,}-\d{3,}\b", wording["instruction"]), wording
    shapes = json.dumps([t["gold_calls"] for t in ALL])
    assert re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-", shapes)  # UUIDs
    assert re.search(r"@example\.(org|net|com)", shapes)  # e-mail addresses
    assert re.search(r'"[a-z]+(-[a-z]+){2,}"', shapes)  # slugs
    assert re.search(r'": \d{3,5}[,}]', shapes)  # plain numbers


def test_the_invoice_agent_has_the_notebooks_goals_verbatim_and_invoices_the_library_reads():
    notebook = (ROOT / "docs" / "reference" / "agent-notebook.md").read_text(encoding="utf-8")
    block = notebook[notebook.index("def create_invoice_agent"):]
    block = block[:block.index("# Create the agent")]
    process = re.search(r'name="Process Invoices",\s*description="""(.*?)"""', block, re.S)
    persona = re.search(r'name="Persona",\s*description="(.*?)"', block, re.S)
    assert process and persona
    squash = lambda s: " ".join(s.split())  # noqa: E731
    assert squash(NOTEBOOK_INVOICE_GOALS[1].description) == squash(process[1])
    assert NOTEBOOK_INVOICE_GOALS[0].description == persona[1]
    for task in (t for t in ALL if t["kind"] == "invoice"):
        assert [g["description"] for g in task["goals"]] == [g.description for g in NOTEBOOK_INVOICE_GOALS]
        source = task["documents"]["invoice"] if task["documents"] else task["wordings"][0]["instruction"]
        found = find_candidates(source)
        assert found.invoice_numbers[0] == task["invoice"]["invoice_number"]
        assert found.totals[0] == task["invoice"]["total_amount"]
        if task["family"] == "inline":
            assert all(task["invoice"]["invoice_number"] in w["instruction"] for w in task["wordings"])


def test_answers_are_read_as_people_write_values():
    assert states("The wallet holds €42.50.", {"number": 42.5})
    assert states("Balance: 1,250.00 pounds", {"number": 1250})
    assert not states("The wallet holds 4.25", {"number": 42.5})
    assert states("It is lichen (91% confidence).", {"share": 0.91})
    assert states("lichen, confidence 0.91", {"share": 0.91})
    assert states("Moved to the 10th of March 2027.", {"date": "2027-03-10"})
    assert states("Now on March 10.", {"date": "2027-03-10"})
    assert not states("Now on March 11, 2027.", {"date": "2027-03-10"})
    assert states("It stands at Gorse Common now.", {"text": "Gorse Common"})
    assert states("Concert: spring gala 2027", {"text": "spring-gala-2027"})
    assert not states("It stands at Gorse.", {"text": "Gorse Common"})
    request = "Move hive 818 to the Gorse Common apiary."
    assert is_echo(request, [request]) and is_echo("hive 818 to the Gorse Common", [request])
    assert not is_echo("Hive 818 now stands at Gorse Common.", [request])
    assert not is_echo("Hive number 818 is relocated to the Gorse Common apiary.", [request])
    assert not is_echo("I can't remove pia.moreau@example.com from the choir, so I cannot do anything.",
                       ["Remove pia.moreau@example.com from the choir."])
    review = ("The soup was cold, the waiter ignored us for forty minutes and the bill was wrong twice. "
              "Never again.")
    assert is_echo(f"The review: {review}", [f"What is the sentiment of this review? {review}"])
    assert not is_echo("Negative (97 % confidence).", [f"What is the sentiment of this review? {review}"])


def test_the_policy_switch_passes_policy_none_only_where_agent_takes_it(monkeypatch):
    kwargs, applied = policy_kwargs("off")
    if "policy" not in outcome_runner.inspect.signature(outcome_runner.Agent).parameters:
        assert kwargs == {} and "no policy argument" in applied

    class PolicyAgent:
        def __init__(self, *, client, policy="default"):  # an Agent that takes a policy, as the lead's will
            self.policy = policy

    monkeypatch.setattr(outcome_runner, "Agent", PolicyAgent)
    assert policy_kwargs("off") == ({"policy": None}, "off (policy=None)")
    assert policy_kwargs("on")[0] == {}
    with pytest.raises(ValueError):
        policy_kwargs("maybe")


def _task(kind: str, family: str | None = None) -> dict[str, Any]:
    return next(t for t in TASKS["dev"] if t["kind"] == kind and (family is None or t["family"] == family))


async def test_a_whole_run_goes_through_the_agent_loop_and_is_judged_by_its_outcome(openai_stub):
    task = _task("single", "relocate")
    call = task["gold_calls"][0]
    openai_stub.enqueue(tool_call(call["name"], call["arguments"]),
                        text(f"Hive {call['arguments']['hive_number']} now stands at {call['arguments']['apiary']}."))
    client = TimedClient(openai_stub.base_url, None, MODEL_ID, timeout=10)
    async with client:
        result = await run_wording(client, task, task["wordings"][2], mode="native", max_rounds=4)
    assert result.verdict.success and result.verdict.first_call_exact, result
    assert result.end == "result" and len(result.call_latencies) == 2 and all(s > 0 for s in result.call_latencies)
    tools_sent = [t["function"]["name"] for t in openai_stub.chat_requests[0]["tools"]]
    assert set(task["tools"]) <= set(tools_sent)


async def test_a_run_that_only_says_it_is_done_fails_and_extra_agent_arguments_reach_the_agent(openai_stub):
    task = _task("goal", "patron")
    openai_stub.enqueue(text("Done, the member is sorted."))
    client = TimedClient(openai_stub.base_url, None, MODEL_ID, timeout=10)
    async with client:
        (result,) = await run_tasks(client, [task], mode="native", styles=["imperative"],
                                    agent_kwargs={"max_tokens": 77})
    assert not result.verdict.success and result.verdict.goal_order is False and not result.verdict.state_ok
    assert openai_stub.chat_requests[0]["max_tokens"] == 77
    report = build_report({"dev": [result]}, extra={"model": MODEL_ID})
    shown = report["splits"]["dev"]
    assert shown["figures"]["goal_tasks"] == 0.0 and shown["figures"]["restraint"] is None
    assert shown["tasks"][0]["worst_wording"]["style"] == "imperative"


async def test_restraint_and_answers_on_the_loop(openai_stub):
    restraint, answer = _task("restraint"), _task("answer", "wallet")
    email = answer["gold_calls"][0]["arguments"]["email"]
    balance = answer["answer"][0]["number"]
    openai_stub.enqueue(text("Sorry, I cannot do that with the tools I have."),
                        tool_call("fetch_wallet", {"email": email}), text(f"The wallet holds {balance:.2f}."))
    client = TimedClient(openai_stub.base_url, None, MODEL_ID, timeout=10)
    async with client:
        results = await run_tasks(client, [restraint, answer], mode="native", styles=["question"])
    assert [r.verdict.success for r in results] == [True, True]
    shown = figures(results)
    assert shown["restraint"] == 1.0 and shown["answers_state_result"] == 1.0 and shown["exact_first_call"] == 1.0
    assert shown["worst_wording_exact"] == 1.0 and shown["model_calls"] == 3


def test_the_cli_writes_the_report_and_a_summary(openai_stub, tmp_path):
    openai_stub.enqueue(text("Sorry, none of my tools can do that."))
    result = CliRunner().invoke(eval_app, ["outcomes", "--base-url", openai_stub.base_url, "--model", MODEL_ID,
                                           "--mode", "native", "--limit", "1", "--style", "polite",
                                           "--report-dir", str(tmp_path), "--policy", "off"])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["seeds"] == {"dev": SPLIT_SEEDS["dev"]} and report["splits"]["dev"]["figures"]["runs"] == 1
    last = json.loads(result.stdout.strip().splitlines()[-1])
    assert last["evaluation"] == "outcomes" and "dev" in last
    bad = CliRunner().invoke(eval_app, ["outcomes", "--split", "nope"])
    assert bad.exit_code == 2 and "unknown split" in bad.output


def test_a_client_for_the_runner_is_a_chat_client():
    assert issubclass(TimedClient, ChatClient)
