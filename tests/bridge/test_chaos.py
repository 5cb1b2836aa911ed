"""1,000 tasks through the hub while agents are killed at random: none is lost, none is answered twice, and
every caller gets its own task's answer."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from lmstudio_agent.agent.messages import AgentMessage

from .helpers import Agents

TASKS = 1000
AGENTS = 5
CONCURRENCY = 48


async def test_agents_killed_at_random_lose_no_task_and_answer_none_twice(make_hub):
    hub = await make_hub(task_timeout=1.0, max_attempts=8, max_queue=TASKS, default_deadline=30.0)
    rng = random.Random(20240607)
    executions: Counter[str] = Counter()

    async def worker(instruction: str, tools: list[str]) -> list[AgentMessage]:
        executions[instruction] += 1
        await asyncio.sleep(rng.uniform(0.0, 0.004))  # long enough to be caught mid-task by a kill
        return [AgentMessage(type="result", content=f"answer to {instruction}")]

    pool = Agents()
    serial = 0

    async def spawn(wait: bool) -> None:
        nonlocal serial
        serial += 1
        await pool.start(hub.url, worker, agent_id=f"chaos-{serial}", max_concurrency=8, wait=wait)

    for _ in range(AGENTS):
        await spawn(wait=True)

    kills = 0
    done = asyncio.Event()

    async def killer() -> None:
        nonlocal kills
        while not done.is_set():
            await asyncio.sleep(rng.uniform(0.002, 0.012))
            live = [h for h in pool.handles if not h.task.done()]
            if len(live) > 1:
                rng.choice(live).kill()
                kills += 1
                await spawn(wait=False)  # a replacement, connecting while the hub requeues

    answers: dict[int, list[str]] = {i: [] for i in range(TASKS)}
    slots = asyncio.Semaphore(CONCURRENCY)

    async def client(i: int) -> None:
        async with slots:
            result = await hub.submit(f"task-{i}")
        answers[i].append(result[0].content)

    chaos = asyncio.create_task(killer())
    try:
        await asyncio.wait_for(asyncio.gather(*(client(i) for i in range(TASKS))), 60)
    finally:
        done.set()
        await chaos
        await pool.close()

    print(f"kills={kills} {hub.stats} executions={sum(executions.values())}")
    assert all(answers[i] == [f"answer to task-{i}"] for i in range(TASKS))  # each answered once, correctly
    assert hub.stats.submitted == hub.stats.completed == TASKS and hub.stats.failed == 0
    assert kills >= 10 and hub.stats.requeued > 0
    # At least once on the agents' side: every task ran, the ones caught by a kill more than once.
    assert set(executions) == {f"task-{i}" for i in range(TASKS)}
    assert sum(executions.values()) > TASKS
