"""Drives Corral's memory API with boto3's own bedrock-agentcore clients.

Usage: memory_client.py <endpoint_url>. Prints one JSON object of results;
the Rust test asserts on it. Any exception fails the run.
"""
import json
import sys
import time

import boto3
from botocore.config import Config

endpoint = sys.argv[1]
session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
config = Config(retries={"max_attempts": 1})
control = session.client("bedrock-agentcore-control", endpoint_url=endpoint, config=config)
data = session.client("bedrock-agentcore", endpoint_url=endpoint, config=config)
out = {}

memory = control.create_memory(
    name="boto_memory",
    eventExpiryDuration=30,
    memoryStrategies=[{"semanticMemoryStrategy": {"name": "facts"}}],
)["memory"]
out["memory_status"] = memory["status"]
out["strategy_namespaces"] = memory["strategies"][0]["namespaces"]
memory_id = memory["id"]
out["get_memory_name"] = control.get_memory(memoryId=memory_id)["memory"]["name"]
out["listed_memories"] = [m["id"] for m in control.list_memories()["memories"]] == [memory_id]

actor = "tenant/carol"
event_ids = []
for i in range(25):
    event = data.create_event(
        memoryId=memory_id,
        actorId=actor,
        sessionId="session-1",
        eventTimestamp=time.time(),
        payload=[{"conversational": {"content": {"text": f"message {i}"}, "role": "USER"}}],
        metadata={"channel": {"stringValue": "web"}},
    )["event"]
    event_ids.append(event["eventId"])
out["event_id"] = event_ids[0]
got = data.get_event(memoryId=memory_id, actorId=actor, sessionId="session-1", eventId=event_ids[0])["event"]
out["got_text"] = got["payload"][0]["conversational"]["content"]["text"]
out["got_timestamp_type"] = type(got["eventTimestamp"]).__name__

pages = []
token = None
while True:
    kwargs = {"memoryId": memory_id, "actorId": actor, "sessionId": "session-1"}
    if token:
        kwargs["nextToken"] = token
    page = data.list_events(**kwargs)
    pages.append(len(page["events"]))
    token = page.get("nextToken")
    if not token:
        break
out["event_pages"] = pages

out["sessions"] = [s["sessionId"] for s in data.list_sessions(memoryId=memory_id, actorId=actor)["sessionSummaries"]]
out["actors"] = [a["actorId"] for a in data.list_actors(memoryId=memory_id)["actorSummaries"]]
out["deleted_event"] = data.delete_event(
    memoryId=memory_id, actorId=actor, sessionId="session-1", eventId=event_ids[1]
)["eventId"] == event_ids[1]

created = data.batch_create_memory_records(
    memoryId=memory_id,
    records=[
        {"requestIdentifier": "r1", "namespaces": ["/users/carol"], "content": {"text": "Carol prefers window seats on flights"}, "timestamp": time.time()},
        {"requestIdentifier": "r2", "namespaces": ["/users/carol"], "content": {"text": "Carol is allergic to peanuts"}, "timestamp": time.time()},
    ],
)
out["created_records"] = len(created["successfulRecords"])
hits = data.retrieve_memory_records(
    memoryId=memory_id,
    namespace="/users/carol",
    searchCriteria={"searchQuery": "which seat does she like on a plane", "topK": 2},
)["memoryRecordSummaries"]
out["top_hit"] = hits[0]["content"]["text"]
out["scores_descending"] = hits[0]["score"] >= hits[1]["score"]
record_id = hits[0]["memoryRecordId"]
out["record_namespaces"] = data.get_memory_record(memoryId=memory_id, memoryRecordId=record_id)["memoryRecord"]["namespaces"]
out["listed_records"] = len(data.list_memory_records(memoryId=memory_id, namespace="/users/carol")["memoryRecordSummaries"])
data.delete_memory_record(memoryId=memory_id, memoryRecordId=record_id)

try:
    data.get_event(memoryId="missing-0123456789", actorId=actor, sessionId="s", eventId="1#a")
except data.exceptions.ResourceNotFoundException as e:
    out["missing_memory_error"] = e.response["Error"]["Code"]
try:
    data.create_event(memoryId=memory_id, actorId=actor, sessionId="s", eventTimestamp=time.time(),
                      payload=[{"conversational": {"content": {"text": "x"}, "role": "USER"}}] * 101)
except data.exceptions.ValidationException as e:
    out["too_many_items_error"] = e.response["Error"]["Code"]
try:
    data.retrieve_memory_records(memoryId=memory_id, namespace="bad namespace!", searchCriteria={"searchQuery": "x"})
except data.exceptions.ValidationException as e:
    out["bad_namespace_error"] = e.response["Error"]["Code"]

out["delete_memory_status"] = control.delete_memory(memoryId=memory_id)["status"]
print(json.dumps(out))
