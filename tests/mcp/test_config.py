"""Reading LM Studio's mcp.json: both kinds of entry, the project's extra keys, and errors that name the entry
without ever echoing a value (env and headers hold secrets)."""

from __future__ import annotations

import json

import pytest

from lmstudio_agent.errors import ErrorCode
from lmstudio_agent.mcp import MCPConfigError, load_mcp_config

LM_STUDIO_FILE = {
    "mcpServers": {
        "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"],
                  "env": {"API_KEY": "sk-very-secret"}},
        "weather": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer hdr-secret"},
                    "allowedTools": ["forecast"], "timeout": 5, "prefix": "wx"},
        "old": {"command": "x", "disabled": True},
    }
}


def test_reads_lm_studios_format_from_a_file(tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(LM_STUDIO_FILE))
    config = load_mcp_config(path)
    files, weather = config.servers["files"], config.servers["weather"]
    assert files.transport == "stdio" and files.args[0] == "-y"
    assert files.env["API_KEY"].get_secret_value() == "sk-very-secret"
    assert weather.transport == "http" and weather.allowed_tools == ["forecast"]
    assert weather.timeout == 5 and weather.prefix == "wx"
    assert list(config.enabled()) == ["files", "weather"]


def test_secrets_never_show_in_reprs():
    config = load_mcp_config(LM_STUDIO_FILE)
    shown = repr(config) + str(config) + repr(config.servers["weather"]) + config.servers["weather"].describe()
    assert "sk-very-secret" not in shown and "hdr-secret" not in shown


@pytest.mark.parametrize(
    "entry, says",
    [
        ({"command": "x", "url": "http://a/mcp"}, "either 'command'"),
        ({"args": ["a"]}, "either 'command'"),
        ({"url": "ftp://host/mcp"}, "http:// or https://"),
        ({"url": "http://h/sse", "type": "sse"}, "not supported"),
        ({"url": "http://h/mcp", "type": "stdio"}, "does not match"),
        ({"command": "x", "timeout": 0}, "timeout"),
    ],
)
def test_bad_entries_name_the_server_and_the_problem(entry, says):
    with pytest.raises(MCPConfigError) as caught:
        load_mcp_config({"mcpServers": {"srv": entry}})
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert "mcpServers.srv" in caught.value.message and says in caught.value.message


def test_a_bad_secret_is_reported_without_its_value():
    with pytest.raises(MCPConfigError) as caught:
        load_mcp_config({"mcpServers": {"srv": {"command": "x", "env": {"TOKEN": ["sk-leaky-secret"]}}}})
    assert "mcpServers.srv.env.TOKEN" in caught.value.message
    assert "sk-leaky-secret" not in caught.value.message


def test_unreadable_or_malformed_files(tmp_path):
    with pytest.raises(MCPConfigError, match="cannot be read"):
        load_mcp_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(MCPConfigError, match="not valid JSON"):
        load_mcp_config(bad)
    with pytest.raises(MCPConfigError, match="mcpServers"):
        load_mcp_config({"servers": {}})
    with pytest.raises(MCPConfigError, match="server name"):
        load_mcp_config({"mcpServers": {"has space": {"command": "x"}}})
