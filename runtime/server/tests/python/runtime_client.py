"""Drives `corral serve` with boto3's own bedrock-agentcore client.

Usage: runtime_client.py <endpoint_url> <agent runtime ARN>. Prints a JSON
object of results; any exception fails the run.
"""
import json
import sys
import uuid

import boto3
from botocore.config import Config

endpoint, arn = sys.argv[1], sys.argv[2]
client = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1").client(
    "bedrock-agentcore", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1})
)
out = {}


def ask(session, prompt):
    response = client.invoke_agent_runtime(
        agentRuntimeArn=arn,
        runtimeSessionId=session,
        payload=json.dumps({"prompt": prompt}).encode(),
        contentType="application/json",
        qualifier="DEFAULT",
    )
    raw = response["response"].read().decode()
    if response["contentType"].startswith("text/event-stream"):
        # Streamed progress events, then the final answer as the last event.
        events = [line[len("data: "):] for line in raw.split("\n") if line.startswith("data: ")]
        raw = events[-1]
    body = json.loads(raw)
    return body["response"], response["runtimeSessionId"], response["contentType"]


alice = "alice-" + uuid.uuid4().hex  # 38 characters
bob = "bob-" + uuid.uuid4().hex
out["first"], out["first_session"], out["content_type"] = ask(alice, "What is (17 * 23) + 4?")
out["same_session"], _, _ = ask(alice, "Now divide that by 5")
out["other_session"], _, _ = ask(bob, "Now divide that by 5")
out["session_matches"] = out["first_session"] == alice
client.stop_runtime_session(agentRuntimeArn=arn, runtimeSessionId=alice)
out["after_stop"], _, _ = ask(alice, "Now divide that by 5")
try:
    client.invoke_agent_runtime(agentRuntimeArn="no_such_agent", runtimeSessionId=alice, payload=b"{}")
except client.exceptions.ResourceNotFoundException as e:
    out["missing_agent"] = e.response["Error"]["Code"]
print(json.dumps(out))
