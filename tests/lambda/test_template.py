"""template.yaml: SAM's own lint and build, plus the properties the issue asks of the stack."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
SAM = ROOT / ".venv" / "tools" / "sam" / "bin" / "sam"
API_GATEWAY_REST_LIMIT_SECONDS = 29


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !GetAtt...) kept as {"Fn": value}."""


_CfnLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: {suffix: loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode)
                                       else loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
                                       else loader.construct_mapping(node)}
)


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml.load(TEMPLATE.read_text(), Loader=_CfnLoader)


def _sam(*args: str, timeout: float, **extra_env: str) -> subprocess.CompletedProcess:
    if not SAM.exists():
        pytest.fail(f"SAM CLI missing at {SAM}: run `make lambda-deps`")
    env = {**os.environ, "SAM_CLI_TELEMETRY": "0", **extra_env}
    return subprocess.run([str(SAM), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def test_sam_validate_lint():
    done = _sam("validate", "--lint", "--template-file", str(TEMPLATE), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is a valid SAM Template" in done.stdout + done.stderr


@pytest.mark.slow
def test_sam_build_makes_a_small_artifact_with_the_core(tmp_path):
    build_dir = tmp_path / "build"
    done = _sam("build", "--template-file", str(TEMPLATE), "--build-dir", str(build_dir), timeout=420,
                LAMBDA_PYTHON=str(ROOT / ".venv" / "bin" / "python"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    artifact = build_dir / "AgentFunction"
    for needed in ("app.py", "dynamo_cache.py", "lmstudio_agent/endpoint/contract.py", "lmstudio_agent/endpoint/backend.py",
                   "aws_lambda_powertools", "pydantic_core", "httpx"):
        assert (artifact / needed).exists(), needed
    assert not (artifact / "boto3").exists() and not (artifact / "botocore").exists()  # the runtime has them
    assert not list(artifact.rglob("*.cpython-311.pyc"))  # no bytecode for a Python the runtime is not
    # Wheels for the Lambda runtime's CPython, not the one that ran the build.
    assert list((artifact / "pydantic_core").glob("*cpython-313-x86_64-linux-gnu.so"))
    archive = shutil.make_archive(str(tmp_path / "artifact"), "zip", artifact)
    assert zipfile.is_zipfile(archive)


def test_function_runtime_timeout_and_deadline(template):
    function = template["Resources"]["AgentFunction"]
    props = {**template["Globals"]["Function"], **function["Properties"]}
    assert re.fullmatch(r"python3\.1[2-9]", props["Runtime"])
    assert props["Handler"] == "app.lambda_handler" and (ROOT / "lambda" / "app.py").exists()
    deadline = float(props["Environment"]["Variables"]["EXECUTE_DEADLINE_SECONDS"])
    # The run's deadline plus core's 1 s backstop ends before the function's timeout, which ends before the API's.
    assert deadline + 1 < props["Timeout"] < API_GATEWAY_REST_LIMIT_SECONDS
    assert 256 <= props["MemorySize"] <= 2048


def test_build_method_is_makefile_with_the_target(template):
    function = template["Resources"]["AgentFunction"]
    assert function["Metadata"]["BuildMethod"] == "makefile"
    assert function["Properties"]["CodeUri"].rstrip("/") == "lambda"  # never the repo root (it would copy .venv)
    targets = next(line for line in (ROOT / "lambda" / "Makefile").read_text().splitlines() if line.startswith("build-"))
    assert {"build-AgentFunction", "build-RunnerFunction"} <= set(targets.rstrip(":").split())


def test_routes_and_outputs(template):
    events = template["Resources"]["AgentFunction"]["Properties"]["Events"]
    routes = {(e["Properties"]["Method"].upper(), e["Properties"]["Path"]) for e in events.values()}
    assert routes == {("GET", "/health"), ("POST", "/execute"), ("POST", "/runs"), ("GET", "/runs/{run_id}"),
                      ("DELETE", "/runs/{run_id}"), ("GET", "/runs/{run_id}/events"), ("GET", "/v1/models"),
                      ("POST", "/v1/chat/completions")}
    assert "ExecuteUrl" in template["Outputs"] and "HealthUrl" in template["Outputs"]


def test_cache_table_has_ttl(template):
    table = template["Resources"]["CacheTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "key", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["BillingMode"] == "PAY_PER_REQUEST"


def test_least_privilege_iam(template):
    (policy,) = template["Resources"]["AgentFunction"]["Properties"]["Policies"]
    actions = {}
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        statement_actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in statement_actions)
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(r != "*" for r in resources)
        for action in statement_actions:
            actions[action] = resources
    assert set(actions) == {"dynamodb:GetItem", "dynamodb:PutItem", "secretsmanager:GetSecretValue",
                            "lambda:InvokeFunction", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan",
                            "execute-api:ManageConnections"}
    # The bridge's reads, writes and scans reach its own two tables only (the last statement naming them).
    bridge_tables = [{"GetAtt": "BridgeConnectionsTable.Arn"}, {"GetAtt": "BridgeTasksTable.Arn"}]
    for action in ("dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Scan"):
        assert actions[action] == bridge_tables
    # Posting to agents: this stack's WebSocket API, its prod stage, its connections.
    assert actions["execute-api:ManageConnections"] == [
        {"Sub": "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${BridgeApi}/prod/*/@connections/*"}]
    secrets = actions["secretsmanager:GetSecretValue"]
    assert len(secrets) == 4
    # The third, the optional mcp.json secret, is granted only when its name is set; the fourth, the bridge's
    # agents, likewise.
    assert secrets[2]["If"][0] == "HasMcpConfig" and secrets[2]["If"][2] == {"Ref": "AWS::NoValue"}
    assert secrets[3]["If"][0] == "HasBridge" and secrets[3]["If"][2] == {"Ref": "AWS::NoValue"}
    assert template["Conditions"]["HasMcpConfig"] == {"Not": [{"Equals": [{"Ref": "McpConfigSecretName"}, ""]}]}
    assert template["Parameters"]["McpConfigSecretName"]["Default"] == ""
    assert actions["lambda:InvokeFunction"] == [{"GetAtt": "RunnerFunction.Arn"}]  # only the runner


def test_the_runner_runs_past_api_gateways_limit_with_least_privilege(template):
    runner = template["Resources"]["RunnerFunction"]["Properties"]
    assert runner["Handler"] == "app.run_handler" and "Events" not in runner  # not reachable from the API
    assert runner["Timeout"] == 900 > API_GATEWAY_REST_LIMIT_SECONDS
    assert float(runner["Environment"]["Variables"]["RUN_DEADLINE_SECONDS"]) + 30 <= runner["Timeout"]
    (policy,) = runner["Policies"]
    granted = {a for st in policy["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])}
    # Its own runs table, the model token, and (a run through the bridge) the bridge's tables and connections.
    assert granted == {"dynamodb:GetItem", "dynamodb:PutItem", "secretsmanager:GetSecretValue", "dynamodb:UpdateItem",
                       "dynamodb:DeleteItem", "dynamodb:Scan", "execute-api:ManageConnections"}
    for statement in policy["Statement"]:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        assert all(r != "*" for r in resources)
    assert "CLIENT_API_KEY_SECRET" not in runner["Environment"]["Variables"]  # it never sees the client key
    table = template["Resources"]["RunsTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}


def test_no_secret_in_the_template(template):
    text = TEMPLATE.read_text()
    assert "SecretString" not in text and "sk-lm-" not in text
    env = template["Resources"]["AgentFunction"]["Properties"]["Environment"]["Variables"]
    assert "LM_STUDIO_TOKEN" not in env and "CLIENT_API_KEY" not in env  # only the secrets' names travel
    assert {"CLIENT_API_KEY_SECRET", "LM_STUDIO_TOKEN_SECRET", "CACHE_TABLE", "MCP_CONFIG_SECRET"} <= set(env)


def test_the_bridge_hub_is_a_websocket_api_with_three_routes_to_the_bridge_function(template):
    resources = template["Resources"]
    api = resources["BridgeApi"]
    assert api["Type"] == "AWS::ApiGatewayV2::Api" and api["Properties"]["ProtocolType"] == "WEBSOCKET"
    routes = {r["Properties"]["RouteKey"]: r for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"}
    assert set(routes) == {"$connect", "$disconnect", "$default"}
    for route in routes.values():
        assert route["Properties"]["Target"] == {"Sub": "integrations/${BridgeIntegration}"}
    integration = resources["BridgeIntegration"]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY" and "${BridgeFunction.Arn}" in integration["IntegrationUri"]["Sub"]
    stage = resources["BridgeStage"]["Properties"]
    assert stage["StageName"] == "prod" and stage["DeploymentId"] == {"Ref": "BridgeDeployment"}
    assert set(resources["BridgeDeployment"]["DependsOn"]) == {"BridgeConnectRoute", "BridgeDisconnectRoute",
                                                                "BridgeDefaultRoute"}
    function = resources["BridgeFunction"]["Properties"]
    assert function["Handler"] == "app.bridge_handler"
    assert resources["BridgeInvokePermission"]["Properties"]["Principal"] == "apigateway.amazonaws.com"
    for name, key in (("BridgeConnectionsTable", "pk"), ("BridgeTasksTable", "task_id")):
        table = resources[name]["Properties"]
        assert table["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
        assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    # The functions that post to agents may manage the API's connections and read both tables.
    for name in ("AgentFunction", "RunnerFunction", "BridgeFunction"):
        props = resources[name]["Properties"]
        variables = props["Environment"]["Variables"]
        assert variables["CONNECTIONS_TABLE"] == {"Ref": "BridgeConnectionsTable"}
        assert variables["TASKS_TABLE"] == {"Ref": "BridgeTasksTable"}
        assert "${BridgeApi}" in variables["BRIDGE_CALLBACK_URL"]["Sub"]
        statements = props["Policies"][0]["Statement"]
        assert any(s.get("Action") == "execute-api:ManageConnections" for s in statements if isinstance(s, dict)), name
    assert (ROOT / "lambda" / "ws_bridge.py").exists()
    assert "ws_bridge.py" in (ROOT / "lambda" / "Makefile").read_text()
    assert "wss://${BridgeApi}" in template["Outputs"]["BridgeUrl"]["Value"]["Sub"]
