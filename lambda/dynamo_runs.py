"""A DynamoDB table as core's ``runs.RunStore``: the Lambda's async runs live here, between the API
function (which queues them) and the runner function (which an asynchronous invoke starts).

Items: partition key ``run_id`` (S), ``state`` (S, the run's JSON), ``status`` (S), ``expires_at`` (N, epoch
seconds; the table's TTL attribute). Reads are strongly consistent, so a cancel written by one invocation is
seen by the run's next check in another. An item holds at most 400 KB: past :data:`MAX_STATE_BYTES` the
run's text deltas are dropped from the stored events (its messages, steps and result stay).
"""

from __future__ import annotations

from typing import Any

from dynamo_cache import DynamoTable
from lmstudio_agent.endpoint.runs import RunState, run_state_json

CLIENT_CONFIG = {"connect_timeout": 2, "read_timeout": 3, "retries": {"max_attempts": 3, "mode": "standard"}}
MAX_STATE_BYTES = 350_000


class DynamoRunStore(DynamoTable):
    """Reads and writes run states in one DynamoDB table (boto3 is synchronous; the calls are short)."""

    client_config = CLIENT_CONFIG

    async def get(self, run_id: str) -> RunState | None:
        item = self.client.get_item(TableName=self.table_name, Key={"run_id": {"S": run_id}},
                                    ConsistentRead=True).get("Item")
        if not item or float(item["expires_at"]["N"]) <= self._clock():  # TTL deletion is lazy
            return None
        return RunState.model_validate_json(item["state"]["S"])

    async def put(self, state: RunState, expect: str | None = None) -> bool:
        text = run_state_json(state)
        if len(text.encode()) > MAX_STATE_BYTES:
            slim = state.model_copy(update={"events": [e for e in state.events if e.type != "text-delta"]})
            text = run_state_json(slim)
        condition: dict[str, Any] = {}
        if expect is not None:  # compare-and-set on the status attribute
            condition = {"ConditionExpression": "#s = :expected", "ExpressionAttributeNames": {"#s": "status"},
                         "ExpressionAttributeValues": {":expected": {"S": expect}}}
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item={"run_id": {"S": state.run_id}, "state": {"S": text}, "status": {"S": state.status},
                      "expires_at": {"N": str(int(state.expires_at))}},
                **condition,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
