"""prepare_dataset: instruction rows and chat transcripts in, the chat-template JSONL Axolotl reads out; bad rows
named by index, and nothing written when one is bad."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.model.toolcalls import parse_tool_calls
from lmstudio_finetune import DatasetError, LMStudioFineTuner, read_jsonl

REPO = Path(__file__).resolve().parents[2]

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def transcript(**assistant_call) -> dict:
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}
    assistant = {"role": "assistant", "content": None, "tool_calls": [call], **assistant_call}
    return {
        "messages": [
            {"role": "system", "content": "You have tools."},
            {"role": "user", "content": "Weather in Oslo?"},
            assistant,
            {"role": "tool", "tool_call_id": "call_1", "content": '{"temp_c": 3}'},
            {"role": "assistant", "content": "It is 3 °C in Oslo."},
        ],
        "tools": [WEATHER_TOOL],
    }


@pytest.fixture
def tuner(tmp_path, console) -> LMStudioFineTuner:
    return LMStudioFineTuner(output_dir=str(tmp_path / "out"), console=console)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_instruction_rows_become_user_and_assistant_turns(tuner):
    path = tuner.prepare_dataset([
        {"instruction": "What is AI?", "response": "AI is..."},
        {"instruction": "Translate", "input": "bonjour", "response": "hello"},
    ])
    assert path == tuner.output_dir / "training_data.jsonl"
    first, second = lines(path)
    assert first == {"messages": [
        {"role": "user", "content": "What is AI?", "tool_call_id": None},
        {"role": "assistant", "content": "AI is...", "tool_call_id": None},
    ], "tools": None}
    assert second["messages"][0]["content"] == "Translate\n\nbonjour"


def test_default_location_matches_the_reference(tmp_path, monkeypatch, console):
    monkeypatch.chdir(tmp_path)
    path = LMStudioFineTuner(console=console).prepare_dataset([{"instruction": "a", "response": "b"}])
    assert path == Path("./fine-tuned-models/training_data.jsonl")
    assert path.is_file()


def test_absolute_output_file_is_used_as_given(tuner, tmp_path):
    target = tmp_path / "elsewhere" / "rows.jsonl"
    assert tuner.prepare_dataset([{"instruction": "a", "response": "b"}], str(target)) == target
    assert len(lines(target)) == 1


def test_tool_call_transcript_keeps_the_call_as_text_the_core_parses(tuner):
    (row,) = lines(tuner.prepare_dataset([transcript()]))
    roles = [message["role"] for message in row["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    call_turn = row["messages"][2]
    assert "tool_calls" not in call_turn  # trained once, as text
    parsed = parse_tool_calls(call_turn["content"])
    assert [(call.name, call.arguments) for call in parsed.calls] == [("get_weather", {"city": "Oslo"})]
    assert row["messages"][3] == {"role": "tool", "content": '{"temp_c": 3}', "tool_call_id": "call_1"}
    assert json.loads(row["tools"]) == [WEATHER_TOOL]


def test_call_text_already_in_content_is_kept_verbatim(tuner):
    lfm2_text = '<|tool_call_start|>[get_weather(city="Oslo")]<|tool_call_end|>'
    (row,) = lines(tuner.prepare_dataset([transcript(content=lfm2_text)]))
    assert row["messages"][2]["content"] == lfm2_text


def test_text_beside_native_calls_gets_the_calls_appended(tuner):
    (row,) = lines(tuner.prepare_dataset([transcript(content="Let me look.")]))
    content = row["messages"][2]["content"]
    assert content.startswith("Let me look.\n")
    assert [call.name for call in parse_tool_calls(content).calls] == ["get_weather"]


def test_the_shipped_examples_validate(tuner):
    for name in ("facts.jsonl", "tool-calls.jsonl"):
        rows = read_jsonl(REPO / "finetune" / "examples" / name)
        assert len(lines(tuner.prepare_dataset(rows, name))) == len(rows)


GOOD = {"instruction": "q", "response": "a"}

BAD_ROWS = [
    ({"instruction": "q"}, "response: Field required"),
    ({"instruction": "", "response": "a"}, "instruction: String should have at least 1 character"),
    ({"instruction": "q", "response": "a", "output": "x"}, "output: Extra inputs are not permitted"),
    ({"instruction": 3, "response": "a"}, "instruction: Input should be a valid string"),
    (["q", "a"], "expected an object, got list"),
    ({"instruction": "q", "response": "a", "messages": []}, "either a transcript"),
    ({"messages": []}, "messages: List should have at least 1 item"),
    ({"messages": [{"role": "user", "content": "hi"}]}, "at least one assistant message"),
    ({"messages": [{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user", "content": " "}, {"role": "assistant", "content": "x"}]}, "non-empty content"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}]},
     "needs content or tool_calls"),
    (transcript(tool_calls=[{"type": "function", "function": {"name": "get_weather", "arguments": "{oops"}}]),
     "bad tool call"),
    (transcript(tool_calls=[{"type": "function", "function": {"name": "launch", "arguments": "{}"}}]),
     "calls 'launch', which is not in tools"),
    ({"messages": [{"role": "user", "content": "hi", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]},
                   {"role": "assistant", "content": "x"}]}, "only assistant messages carry tool_calls"),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"}], "extra": 1},
     "extra: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("bad", "problem"), BAD_ROWS)
def test_a_bad_row_is_named_and_nothing_is_written(tuner, bad, problem):
    target = tuner.output_dir / "training_data.jsonl"
    target.parent.mkdir(parents=True)
    target.write_text("previous\n", encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        tuner.prepare_dataset([GOOD, GOOD, bad, GOOD])
    error = caught.value
    assert isinstance(error, AgentError) and isinstance(error, ValueError)
    assert error.code is ErrorCode.INVALID_REQUEST
    assert error.row == 3  # the third row, counted from 1
    assert error.message.startswith("row 3: ")
    assert problem in error.message
    assert tuner.last_error is error
    assert target.read_text(encoding="utf-8") == "previous\n"  # untouched
    assert sorted(p.name for p in target.parent.iterdir()) == ["training_data.jsonl"]  # no temporary left


def test_an_empty_dataset_is_refused(tuner):
    with pytest.raises(DatasetError, match="no rows"):
        tuner.prepare_dataset([])
    assert not tuner.output_dir.exists()


def test_jsonl_reader_names_the_bad_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"instruction": "q", "response": "a"}\n\n{"instruction": \n', encoding="utf-8")
    with pytest.raises(DatasetError) as caught:
        read_jsonl(path)
    assert caught.value.message.startswith("line 3: not valid JSON")
    with pytest.raises(DatasetError, match="not found"):
        read_jsonl(tmp_path / "missing.jsonl")
