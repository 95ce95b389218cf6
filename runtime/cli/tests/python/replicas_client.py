"""Drives `corral serve` replicas with the AWS SDK's bedrock-agentcore client.

Usage:
  replicas_client.py ask <endpoint> <runtime ARN> <session> <prompt>
  replicas_client.py put-event <endpoint> <memory id> <session> <text>
  replicas_client.py list-events <endpoint> <memory id> <session>
  replicas_client.py memory-ids <endpoint> <name>

Prints one JSON object: the answer (`response`, `turns`, `session`,
`seconds`), the event id, or the event texts; a modelled AWS error prints
{"error": <code>, "status": <HTTP status>} instead. Anything else fails.
"""
import json
import sys
import time

import boto3
from botocore.config import Config


def client(endpoint):
    return boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).client(
        "bedrock-agentcore",
        endpoint_url=endpoint,
        # One attempt: the test sees every error the server answers.
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120),
    )


def ask(endpoint, arn, session, prompt):
    started = time.monotonic()
    response = client(endpoint).invoke_agent_runtime(
        agentRuntimeArn=arn,
        runtimeSessionId=session,
        payload=json.dumps({"prompt": prompt}).encode(),
        contentType="application/json",
    )
    raw = response["response"].read().decode()
    if response["contentType"].startswith("text/event-stream"):
        raw = [line[len("data: "):] for line in raw.split("\n") if line.startswith("data: ")][-1]
    body = json.loads(raw)
    return {
        "response": body["response"],
        "turns": body.get("turns"),
        "session": response["runtimeSessionId"],
        "seconds": time.monotonic() - started,
    }


def put_event(endpoint, memory, session, text):
    event = client(endpoint).create_event(
        memoryId=memory,
        actorId="replica-test",
        sessionId=session,
        eventTimestamp=time.time(),
        payload=[{"conversational": {"content": {"text": text}, "role": "USER"}}],
    )
    return {"eventId": event["event"]["eventId"]}


def list_events(endpoint, memory, session):
    paginator = client(endpoint).get_paginator("list_events")
    texts = []
    for page in paginator.paginate(memoryId=memory, actorId="replica-test", sessionId=session):
        for event in page["events"]:
            for item in event["payload"]:
                texts.append(item["conversational"]["content"]["text"])
    return {"texts": sorted(texts)}


def memory_ids(endpoint, name):
    control = boto3.Session(
        aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1"
    ).client("bedrock-agentcore-control", endpoint_url=endpoint)
    ids = [m["id"] for m in control.list_memories(maxResults=100)["memories"]]
    return {"ids": sorted(i for i in ids if control.get_memory(memoryId=i)["memory"]["name"] == name)}


def main():
    command, args = sys.argv[1], sys.argv[2:]
    run = {"ask": ask, "put-event": put_event, "list-events": list_events, "memory-ids": memory_ids}[command]
    try:
        out = run(*args)
    except client("http://127.0.0.1:1").exceptions.ClientError as error:
        out = {
            "error": error.response["Error"]["Code"],
            "status": error.response["ResponseMetadata"]["HTTPStatusCode"],
            "message": error.response["Error"].get("Message", ""),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
