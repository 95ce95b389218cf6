"""Drives Corral's memory API with the AWS `bedrock-agentcore` SDK's MemoryClient, unchanged.

Usage: memory_sdk_client.py <endpoint_url>

MemoryClient builds its boto3 clients with no endpoint_url argument, so botocore's
own AWS_ENDPOINT_URL setting (set below from argv[1]) points both of them, the
control plane and the data plane, at Corral. Credentials and region (dummy ones)
come from the caller's environment. Prints one JSON object of results; the Rust
test asserts on it. Any exception fails the run.
"""

import json
import os
import sys
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List

os.environ["AWS_ENDPOINT_URL"] = sys.argv[1]

from bedrock_agentcore.memory import MemoryClient  # noqa: E402  (reads the endpoint at client creation)

ACTOR = "sdk-user"
SESSION = "sdk-session"
WAIT = {"max_wait": 30, "poll_interval": 1}


def texts(events: List[Dict[str, Any]]) -> List[str]:
    """The conversational texts of some events, in the order given."""
    return [p["conversational"]["content"]["text"] for e in events for p in e["payload"] if "conversational" in p]


def main() -> None:
    client = MemoryClient(region_name="us-east-1")
    out: Dict[str, Any] = {}

    # CreateMemory, then GetMemory until status == ACTIVE.
    memory = client.create_memory_and_wait(name="sdk_memory", strategies=[], event_expiry_days=7, **WAIT)
    memory_id = memory["id"]
    out["memory_status"] = memory["status"]

    # ListMemories(maxResults=100), following nextToken.
    out["listed"] = memory_id in [m["id"] for m in client.list_memories()]

    # UpdateMemory(memoryStrategies.addMemoryStrategies), then GetMemory until ACTIVE.
    updated = client.add_semantic_strategy_and_wait(memory_id, name="facts", description="user facts", **WAIT)
    strategies = client.get_memory_strategies(memory_id)
    out["strategies"] = [s["name"] for s in strategies]
    out["strategy_types"] = [s["type"] for s in strategies]
    out["strategy_statuses"] = [s.get("status") for s in strategies]
    out["strategy_namespaces"] = [s["namespaces"] for s in updated["strategies"]]
    strategy_id = strategies[0]["strategyId"]

    # CreateEvent x3: two with explicit, increasing timestamps, then the deprecated
    # save_conversation with the SDK's default timestamp (utcnow, i.e. the newest).
    base = datetime.now(timezone.utc) - timedelta(seconds=30)
    first = client.create_event(
        memory_id, ACTOR, SESSION, [("I like tea", "USER"), ("Noted", "ASSISTANT")], event_timestamp=base
    )
    client.create_event(
        memory_id,
        ACTOR,
        SESSION,
        [("I live in Oslo", "USER"), ("Nice", "ASSISTANT")],
        event_timestamp=base + timedelta(seconds=1),
        metadata={"channel": {"stringValue": "web"}},
    )
    client.save_conversation(memory_id, ACTOR, SESSION, [("Bye", "USER"), ("Goodbye", "ASSISTANT")])
    out["event_id"] = first["eventId"]

    # ListEvents(maxResults=100, includePayloads=True), following nextToken.
    events = client.list_events(memory_id, ACTOR, SESSION)
    out["event_texts"] = texts(events)
    # get_last_k_turns: ListEvents again; turns are grouped in the order returned.
    turns = client.get_last_k_turns(memory_id, ACTOR, SESSION, k=2)
    out["turns"] = len(turns)
    out["turn_texts"] = [[m["content"]["text"] for m in turn] for turn in turns]

    # Pass-through boto3 calls (MemoryClient forwards these names, snake_case kwargs allowed).
    event = client.get_event(memory_id=memory_id, actor_id=ACTOR, session_id=SESSION, event_id=first["eventId"])
    out["got_event_text"] = texts([event["event"]])[0]
    sessions = client.list_sessions(memory_id=memory_id, actor_id=ACTOR)["sessionSummaries"]
    out["sessions"] = [s["sessionId"] for s in sessions]
    out["actors"] = [a["actorId"] for a in client.list_actors(memory_id=memory_id)["actorSummaries"]]

    # RetrieveMemoryRecords (retrieve_memories swallows ClientError and returns []) and ListMemoryRecords.
    namespace = f"/strategies/{strategy_id}/actors/{ACTOR}/"
    retrieved = client.retrieve_memories(memory_id, namespace=namespace, query="what does the user drink?")
    out["retrieved"] = len(retrieved)
    listed = client.list_memory_records(memory_id=memory_id, namespace=namespace)
    out["records_listed"] = len(listed["memoryRecordSummaries"])

    # DeleteMemory, then GetMemory until ResourceNotFoundException.
    client.delete_memory_and_wait(memory_id, **WAIT)
    out["deleted"] = memory_id not in [m["id"] for m in client.list_memories()]

    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
