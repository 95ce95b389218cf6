"""Acceptance run of Corral's control plane with AWS's own clients.

Usage:

    control_plane_client.py <corral_url> <s3_url> <echo_agent_wasm_path>

Drives `corral serve` at <corral_url> with boto3's unmodified
`bedrock-agentcore-control` client (runtimes, endpoints, gateways, gateway
targets, policy engines, policies, memories), its `bedrock-agentcore` client
(invocation) and the MCP Python SDK (the gateway's MCP endpoint). Only
`endpoint_url` and dummy credentials differ from talking to AWS. The agent
artifacts are uploaded first to the S3-compatible server at <s3_url> (moto in
CI), which Corral must be configured to read from.

The script also starts a tiny HTTP "orders" API on 127.0.0.1 that the gateway
target's OpenAPI document points at.

Every check is made here; any failed check or unexpected exception prints a
message to stderr and exits non-zero. On success one JSON object of results is
printed to stdout.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
import threading
import time
import traceback
import uuid
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Awaitable, Callable, NoReturn

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from mcp import ClientSession

try:  # mcp >= 2
    from mcp.client.streamable_http import streamable_http_client as _mcp_transport
except ImportError:  # mcp 1.x
    from mcp.client.streamable_http import streamablehttp_client as _mcp_transport

ROLE_ARN = "arn:aws:iam::123456789012:role/corral"
NETWORK = {"networkMode": "PUBLIC"}
BUCKET = "corral-agent-artifacts"
WASM_KEY = "agents/echo.wasm"
ZIP_KEY = "agents/echo.zip"
POLL_TIMEOUT = 30.0
POLL_INTERVAL = 0.2
POLICY_TIMEOUT = 10.0  # policy changes apply without a restart; allow a little propagation
MCP_TIMEOUT = 30.0
DENIED_PREFIX = "AuthorizeActionException - Tool Execution Denied"
GET_ORDER = "orders___getOrder"
CREATE_ORDER = "orders___createOrder"
READ_ONLY_POLICY = 'permit(principal, action == AgentCore::Action::"orders___getOrder", resource);'
READ_WRITE_POLICY = (
    "permit(principal, action in "
    '[AgentCore::Action::"orders___getOrder", AgentCore::Action::"orders___createOrder"], resource);'
)
BAD_POLICY = "permit(principal, action ==, resource) when { this is not cedar };"


# ---------------------------------------------------------------- helpers


class CheckFailed(Exception):
    """A check of Corral's behaviour failed."""


def fail(message: str) -> NoReturn:
    raise CheckFailed(message)


def check(condition: Any, message: str) -> None:
    """`assert` that survives `python -O`."""
    if not condition:
        fail(message)


def contains(actual: Any, expected: Any) -> bool:
    """Whether `actual` holds everything in `expected` (dicts compared by subset)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected))
        )
    return actual == expected


def check_union(what: str, actual: Any, expected: dict[str, Any]) -> None:
    """`actual` is the same tagged union as `expected`: one member, same values."""
    check(isinstance(actual, dict), f"{what}: expected {expected}, got {actual!r}")
    check(
        set(actual) == set(expected) and contains(actual, expected),
        f"{what}: expected {expected}, got {actual}",
    )


def expect_error(client: Any, code: str, call: Callable[..., Any], **kwargs: Any) -> str:
    """Calls `call` and requires boto3's modeled exception class for `code`."""
    modeled = getattr(client.exceptions, code)
    name = getattr(call, "__name__", "call")
    try:
        result = call(**kwargs)
    except modeled as error:
        check(
            error.response["Error"]["Code"] == code,
            f"{name}: error code {error.response['Error']['Code']!r} != {code!r}",
        )
        return code
    except ClientError as error:
        fail(
            f"{name}({kwargs}): expected modeled {code}, got {type(error).__name__} "
            f"{error.response.get('Error')} (HTTP {error.response.get('ResponseMetadata', {}).get('HTTPStatusCode')})"
        )
    result = dict(result)
    result.pop("ResponseMetadata", None)
    fail(f"{name}({kwargs}): expected {code}, but it succeeded: {result}")


def wait_for_status(
    what: str,
    fetch: Callable[[], dict[str, Any]],
    ready: str,
    failed: tuple[str, ...] = ("CREATE_FAILED", "UPDATE_FAILED", "FAILED", "UPDATE_UNSUCCESSFUL", "DELETE_FAILED"),
) -> dict[str, Any]:
    """Polls `fetch()` until its `status` is `ready`, within POLL_TIMEOUT."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        value = fetch()
        status = value.get("status")
        if status == ready:
            return value
        check(status not in failed, f"{what} failed: status {status}, reasons {value.get('statusReasons') or value.get('failureReason')}")
        check(time.monotonic() < deadline, f"{what} not {ready} after {POLL_TIMEOUT}s (status {status})")
        time.sleep(POLL_INTERVAL)


def wait_until_gone(client: Any, what: str, call: Callable[..., Any], **kwargs: Any) -> None:
    """Polls a get call until it raises ResourceNotFoundException (deletes may be asynchronous)."""
    deadline = time.monotonic() + POLL_TIMEOUT
    while True:
        try:
            value = call(**kwargs)
        except client.exceptions.ResourceNotFoundException:
            return
        except ClientError as error:
            fail(f"{what}: expected modeled ResourceNotFoundException after delete, got {error.response.get('Error')}")
        check(time.monotonic() < deadline, f"{what} still there {POLL_TIMEOUT}s after delete: status {value.get('status')}")
        time.sleep(POLL_INTERVAL)


def eventually(what: str, attempt: Callable[[], Any | None], timeout: float = POLICY_TIMEOUT) -> Any:
    """Retries `attempt` until it returns non-None, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        outcome = attempt()
        if outcome is not None:
            return outcome
        check(time.monotonic() < deadline, f"{what}: not seen within {timeout}s")
        time.sleep(POLL_INTERVAL)


# ---------------------------------------------------------------- setup


def clients(corral_url: str, s3_url: str) -> tuple[Any, Any, Any]:
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    config = Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=60)
    control = session.client("bedrock-agentcore-control", endpoint_url=corral_url, config=config)
    data = session.client("bedrock-agentcore", endpoint_url=corral_url, config=config)
    s3 = session.client(
        "s3",
        endpoint_url=s3_url,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    return control, data, s3


def upload_artifacts(s3: Any, wasm: bytes) -> None:
    """The component itself under WASM_KEY and a zip holding `agent.wasm` under ZIP_KEY."""
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=WASM_KEY, Body=wasm, ContentType="application/wasm")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("agent.wasm", wasm)
        zf.writestr("README.txt", "Corral control-plane acceptance artifact.\n")
    s3.put_object(Bucket=BUCKET, Key=ZIP_KEY, Body=archive.getvalue(), ContentType="application/zip")
    listed = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    check(listed == sorted([WASM_KEY, ZIP_KEY]), f"S3 setup: bucket holds {listed}")


def code_artifact(key: str) -> dict[str, Any]:
    return {
        "codeConfiguration": {
            "code": {"s3": {"bucket": BUCKET, "prefix": key}},
            "runtime": "PYTHON_3_12",
            "entryPoint": ["agent.wasm"],
        }
    }


def container_artifact(uri: str) -> dict[str, Any]:
    return {"containerConfiguration": {"containerUri": uri}}


class OrdersApi:
    """A tiny JSON "orders" API on 127.0.0.1, recording every request it serves."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, Any]] = []
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                api.record("GET", path, None)
                parts = path.strip("/").split("/")
                if len(parts) == 2 and parts[0] == "orders":
                    self._answer(200, {"id": parts[1], "item": "widget", "quantity": 1, "status": "shipped"})
                else:
                    self._answer(404, {"message": f"no route for GET {path}"})

            def do_POST(self) -> None:
                path = self.path.split("?", 1)[0]
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = raw.decode(errors="replace")
                api.record("POST", path, body)
                if path.rstrip("/") == "/orders" and isinstance(body, dict):
                    self._answer(
                        201,
                        {
                            "id": "1001",
                            "item": body.get("item"),
                            "quantity": body.get("quantity"),
                            "status": "created",
                        },
                    )
                else:
                    self._answer(400, {"message": f"bad request to POST {path}: {body!r}"})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="orders-api", daemon=True)
        self._thread.start()

    def record(self, method: str, path: str, body: Any) -> None:
        with self._lock:
            self.requests.append((method, path, body))

    def count(self, method: str) -> int:
        with self._lock:
            return sum(1 for m, _, _ in self.requests if m == method)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def openapi(self) -> dict[str, Any]:
        order = {
            "type": "object",
            "properties": {
                "id": {"type": "string"},
                "item": {"type": "string"},
                "quantity": {"type": "integer"},
                "status": {"type": "string"},
            },
        }
        return {
            "openapi": "3.0.3",
            "info": {"title": "Orders", "version": "1.0.0"},
            "servers": [{"url": self.url}],
            "paths": {
                "/orders/{id}": {
                    "get": {
                        "operationId": "getOrder",
                        "summary": "Fetch one order by id",
                        "parameters": [
                            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                        ],
                        "responses": {
                            "200": {"description": "The order", "content": {"application/json": {"schema": order}}}
                        },
                    }
                },
                "/orders": {
                    "post": {
                        "operationId": "createOrder",
                        "summary": "Place a new order",
                        "requestBody": {
                            "required": True,
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "item": {"type": "string"},
                                            "quantity": {"type": "integer"},
                                        },
                                        "required": ["item", "quantity"],
                                    }
                                }
                            },
                        },
                        "responses": {
                            "201": {"description": "The new order", "content": {"application/json": {"schema": order}}}
                        },
                    }
                },
            },
        }


# ---------------------------------------------------------------- runtimes


def create_runtime(control: Any, name: str, artifact: dict[str, Any]) -> str:
    created = control.create_agent_runtime(
        agentRuntimeName=name,
        agentRuntimeArtifact=artifact,
        roleArn=ROLE_ARN,
        networkConfiguration=NETWORK,
    )
    runtime_id = created["agentRuntimeId"]
    check(created["agentRuntimeVersion"] == "1", f"create {name}: version {created['agentRuntimeVersion']!r} != '1'")
    check(runtime_id in created["agentRuntimeArn"], f"create {name}: ARN {created['agentRuntimeArn']} lacks id {runtime_id}")
    got = wait_for_status(f"runtime {name}", lambda: control.get_agent_runtime(agentRuntimeId=runtime_id), "READY")
    check(got["agentRuntimeName"] == name, f"get {name}: name {got['agentRuntimeName']!r}")
    check(got["agentRuntimeId"] == runtime_id, f"get {name}: id {got['agentRuntimeId']!r} != {runtime_id!r}")
    check(got["roleArn"] == ROLE_ARN, f"get {name}: roleArn {got.get('roleArn')!r}")
    check_union(f"get {name}: agentRuntimeArtifact", got.get("agentRuntimeArtifact"), artifact)
    return runtime_id


def foreign_arn(runtime_id: str) -> str:
    """An ARN in another region and account: Corral resolves it by id."""
    return f"arn:aws:bedrock-agentcore:eu-west-1:123456789012:runtime/{runtime_id}"


def invoke(data: Any, runtime_id: str, qualifier: str | None = None) -> Any:
    kwargs: dict[str, Any] = {
        "agentRuntimeArn": foreign_arn(runtime_id),
        "runtimeSessionId": f"cp-session-{uuid.uuid4().hex}",  # >= 33 characters
        "payload": json.dumps({"prompt": "hi"}).encode(),
        "contentType": "application/json",
    }
    if qualifier is not None:
        kwargs["qualifier"] = qualifier
    response = data.invoke_agent_runtime(**kwargs)
    raw = response["response"].read().decode()
    where = f"invoke {runtime_id} (qualifier {qualifier})"
    check(raw.strip(), f"{where}: empty response body")
    if response.get("contentType", "").startswith("text/event-stream"):
        events = [line[len("data: "):] for line in raw.split("\n") if line.startswith("data: ")]
        check(events, f"{where}: event stream without data: {raw!r}")
        raw = events[-1]
    try:
        body = json.loads(raw)
    except ValueError:
        fail(f"{where}: response is not JSON: {raw!r}")
    check(body not in (None, {}, [], ""), f"{where}: empty JSON {raw!r}")
    check("hi" in json.dumps(body), f"{where}: the echo does not contain the prompt: {raw!r}")
    return body


def list_all_runtimes_by_hand(control: Any) -> tuple[list[str], list[int]]:
    ids: list[str] = []
    sizes: list[int] = []
    token: str | None = None
    for _ in range(100):
        kwargs: dict[str, Any] = {"maxResults": 1}
        if token:
            kwargs["nextToken"] = token
        page = control.list_agent_runtimes(**kwargs)
        sizes.append(len(page["agentRuntimes"]))
        ids.extend(r["agentRuntimeId"] for r in page["agentRuntimes"])
        token = page.get("nextToken")
        if not token:
            return ids, sizes
    fail("list_agent_runtimes(maxResults=1): still paging after 100 pages")


def effective_version(endpoint: dict[str, Any]) -> str | None:
    return endpoint.get("liveVersion") or endpoint.get("targetVersion")


def runtimes(control: Any, data: Any, s3: Any, wasm_path: Path, out: dict[str, Any]) -> None:
    upload_artifacts(s3, wasm_path.read_bytes())

    zip_id = create_runtime(control, "cp_zip_agent", code_artifact(ZIP_KEY))
    s3_wasm_id = create_runtime(control, "cp_s3_wasm_agent", container_artifact(f"s3://{BUCKET}/{WASM_KEY}"))
    file_id = create_runtime(control, "cp_file_agent", container_artifact(wasm_path.resolve().as_uri()))
    ids = {"zip": zip_id, "s3_wasm": s3_wasm_id, "file": file_id}
    check(len(set(ids.values())) == 3, f"runtime ids are not distinct: {ids}")
    out["runtime_ids"] = ids

    # Version 2: the bare component from S3 through codeConfiguration.
    updated = control.update_agent_runtime(
        agentRuntimeId=zip_id,
        agentRuntimeArtifact=code_artifact(WASM_KEY),
        roleArn=ROLE_ARN,
        networkConfiguration=NETWORK,
    )
    check(updated["agentRuntimeVersion"] == "2", f"update_agent_runtime: version {updated['agentRuntimeVersion']!r} != '2'")
    # A retried call (same clientToken, as boto3 retries) changes nothing.
    token = "retry-" + "0" * 30
    for attempt in range(2):
        again = control.create_agent_runtime(
            agentRuntimeName="cp_retried_agent",
            agentRuntimeArtifact=container_artifact(f"s3://{BUCKET}/{WASM_KEY}"),
            roleArn=ROLE_ARN,
            networkConfiguration=NETWORK,
            clientToken=token,
        )
        check(again["agentRuntimeVersion"] == "1", f"create retry {attempt}: version {again['agentRuntimeVersion']!r}")
    retried = again["agentRuntimeId"]
    for attempt in range(2):
        again = control.update_agent_runtime(
            agentRuntimeId=retried,
            agentRuntimeArtifact=container_artifact(f"s3://{BUCKET}/{WASM_KEY}"),
            roleArn=ROLE_ARN,
            networkConfiguration=NETWORK,
            clientToken="update-" + "0" * 30,
        )
        check(again["agentRuntimeVersion"] == "2", f"update retry {attempt}: version {again['agentRuntimeVersion']!r}")
    control.delete_agent_runtime(agentRuntimeId=retried)
    latest = wait_for_status("runtime update", lambda: control.get_agent_runtime(agentRuntimeId=zip_id), "READY")
    check(latest["agentRuntimeVersion"] == "2", f"get after update: version {latest['agentRuntimeVersion']!r}")
    check_union("get after update: agentRuntimeArtifact", latest.get("agentRuntimeArtifact"), code_artifact(WASM_KEY))
    first = control.get_agent_runtime(agentRuntimeId=zip_id, agentRuntimeVersion="1")
    check(first["agentRuntimeVersion"] == "1", f"get version 1: version {first['agentRuntimeVersion']!r}")
    check_union("get version 1: agentRuntimeArtifact", first.get("agentRuntimeArtifact"), code_artifact(ZIP_KEY))
    errors = out["errors"]
    errors["get_runtime_missing_version"] = expect_error(
        control, "ResourceNotFoundException", control.get_agent_runtime, agentRuntimeId=zip_id, agentRuntimeVersion="99"
    )
    errors["get_runtime_unknown_id"] = expect_error(
        control, "ResourceNotFoundException", control.get_agent_runtime, agentRuntimeId="no_such_runtime-0123456789"
    )

    versions = control.list_agent_runtime_versions(agentRuntimeId=zip_id)["agentRuntimes"]
    out["runtime_versions"] = sorted(v["agentRuntimeVersion"] for v in versions)
    check(out["runtime_versions"] == ["1", "2"], f"list_agent_runtime_versions: {out['runtime_versions']}")

    listed, sizes = list_all_runtimes_by_hand(control)
    check(all(size <= 1 for size in sizes), f"list_agent_runtimes(maxResults=1): page sizes {sizes}")
    check(set(ids.values()) <= set(listed), f"list_agent_runtimes: {listed} misses some of {ids}")
    check(len(listed) == len(set(listed)), f"list_agent_runtimes: duplicates across pages {listed}")
    check(len(sizes) >= 3, f"list_agent_runtimes(maxResults=1): only {len(sizes)} pages for {len(listed)} runtimes")
    out["runtime_pages"] = len(sizes)
    check(control.can_paginate("list_agent_runtimes"), "boto3 has no list_agent_runtimes paginator")
    paginated = [
        r["agentRuntimeId"]
        for page in control.get_paginator("list_agent_runtimes").paginate(PaginationConfig={"PageSize": 1})
        for r in page["agentRuntimes"]
    ]
    check(sorted(paginated) == sorted(listed), f"paginator listed {paginated}, by hand {listed}")
    out["paginator_runtimes"] = len(paginated)

    # Endpoints.
    names = [e["name"] for e in control.list_agent_runtime_endpoints(agentRuntimeId=zip_id)["runtimeEndpoints"]]
    check("DEFAULT" in names, f"list_agent_runtime_endpoints: no DEFAULT in {names}")
    default = control.get_agent_runtime_endpoint(agentRuntimeId=zip_id, endpointName="DEFAULT")
    check(default["name"] == "DEFAULT", f"get DEFAULT endpoint: name {default['name']!r}")
    out["default_endpoint_version"] = effective_version(default)

    created = control.create_agent_runtime_endpoint(agentRuntimeId=zip_id, name="prod", agentRuntimeVersion="1")
    check(created["targetVersion"] == "1", f"create_agent_runtime_endpoint: targetVersion {created['targetVersion']!r}")
    errors["create_endpoint_twice"] = expect_error(
        control, "ConflictException", control.create_agent_runtime_endpoint,
        agentRuntimeId=zip_id, name="prod", agentRuntimeVersion="1",
    )
    prod = wait_for_status(
        "endpoint prod", lambda: control.get_agent_runtime_endpoint(agentRuntimeId=zip_id, endpointName="prod"), "READY"
    )
    check(prod["name"] == "prod", f"get endpoint prod: name {prod['name']!r}")
    check(effective_version(prod) == "1", f"endpoint prod: version {effective_version(prod)!r} != '1'")
    names = [e["name"] for e in control.list_agent_runtime_endpoints(agentRuntimeId=zip_id)["runtimeEndpoints"]]
    check({"DEFAULT", "prod"} <= set(names), f"list_agent_runtime_endpoints: {names}")
    out["endpoint_names"] = sorted(names)
    out["invoke_prod"] = invoke(data, zip_id, qualifier="prod")

    control.update_agent_runtime_endpoint(agentRuntimeId=zip_id, endpointName="prod", agentRuntimeVersion="2")
    prod = wait_for_status(
        "endpoint prod update",
        lambda: control.get_agent_runtime_endpoint(agentRuntimeId=zip_id, endpointName="prod"),
        "READY",
    )
    check(effective_version(prod) == "2", f"endpoint prod after update: version {effective_version(prod)!r} != '2'")
    control.delete_agent_runtime_endpoint(agentRuntimeId=zip_id, endpointName="prod")
    wait_until_gone(
        control, "endpoint prod", control.get_agent_runtime_endpoint, agentRuntimeId=zip_id, endpointName="prod"
    )
    errors["get_deleted_endpoint"] = "ResourceNotFoundException"
    names = [e["name"] for e in control.list_agent_runtime_endpoints(agentRuntimeId=zip_id)["runtimeEndpoints"]]
    check("prod" not in names, f"list_agent_runtime_endpoints after delete still has prod: {names}")

    # Invocation by a foreign-region ARN, one per artifact source.
    out["invocations"] = {kind: invoke(data, runtime_id) for kind, runtime_id in ids.items()}


# ---------------------------------------------------------------- MCP


async def _with_mcp(url: str, action: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    async with _mcp_transport(url) as streams:
        read, write = streams[0], streams[1]
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await action(session)


def mcp(url: str, action: Callable[[ClientSession], Awaitable[Any]]) -> Any:
    """Runs `action(session)` in a fresh initialized MCP session at `url`."""
    return asyncio.run(asyncio.wait_for(_with_mcp(url, action), MCP_TIMEOUT))


async def _tool_names(session: ClientSession) -> list[str]:
    names: list[str] = []
    result = await session.list_tools()
    for _ in range(50):
        names.extend(tool.name for tool in result.tools)
        cursor = getattr(result, "next_cursor", None) or getattr(result, "nextCursor", None)
        if not cursor:
            return names
        try:
            from mcp.types import PaginatedRequestParams

            result = await session.list_tools(params=PaginatedRequestParams(cursor=cursor))
        except TypeError:  # mcp 1.x
            result = await session.list_tools(cursor=cursor)
    fail("tools/list: still paging after 50 pages")


def summarize(result: Any) -> dict[str, Any]:
    is_error = getattr(result, "is_error", None)
    if is_error is None:
        is_error = getattr(result, "isError", False)
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    return {"isError": bool(is_error), "text": "\n".join(texts)}


def call_tool(url: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    async def action(session: ClientSession) -> dict[str, Any]:
        return summarize(await session.call_tool(name, arguments))

    return mcp(url, action)


# ---------------------------------------------------------------- gateways and policies


def target_request(api: OrdersApi) -> dict[str, Any]:
    return {
        "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": json.dumps(api.openapi())}}},
        "credentialProviderConfigurations": [{"credentialProviderType": "GATEWAY_IAM_ROLE"}],
    }


def check_openapi_target(actual: Any, api: OrdersApi) -> None:
    """get_gateway_target echoes the `mcp.openApiSchema.inlinePayload` union with the same document."""
    try:
        payload = actual["mcp"]["openApiSchema"]["inlinePayload"]
        same = set(actual) == {"mcp"} and set(actual["mcp"]) == {"openApiSchema"} and json.loads(payload) == api.openapi()
    except (KeyError, TypeError, ValueError):
        same = False
    check(same, f"get_gateway_target: targetConfiguration {actual!r} is not the inline OpenAPI document sent")


def create_target(control: Any, gateway_id: str, name: str, api: OrdersApi) -> str:
    created = control.create_gateway_target(gatewayIdentifier=gateway_id, name=name, **target_request(api))
    target_id = created["targetId"]
    check(created["name"] == name, f"create_gateway_target: name {created['name']!r}")
    got = wait_for_status(
        f"target {name}", lambda: control.get_gateway_target(gatewayIdentifier=gateway_id, targetId=target_id), "READY"
    )
    check(got["name"] == name, f"get_gateway_target: name {got['name']!r}")
    check_openapi_target(got.get("targetConfiguration"), api)
    return target_id


def gateways(control: Any, corral_url: str, api: OrdersApi, out: dict[str, Any]) -> tuple[str, str]:
    errors = out["errors"]
    created = control.create_gateway(name="orders-gw", roleArn=ROLE_ARN, protocolType="MCP", authorizerType="NONE")
    gateway_id = created["gatewayId"]
    expected_url = f"{corral_url}/gateways/{gateway_id}/mcp"
    check(created.get("gatewayUrl") == expected_url, f"create_gateway: gatewayUrl {created.get('gatewayUrl')!r} != {expected_url!r}")
    gateway = wait_for_status("gateway", lambda: control.get_gateway(gatewayIdentifier=gateway_id), "READY")
    check(gateway["name"] == "orders-gw", f"get_gateway: name {gateway['name']!r}")
    check(gateway.get("gatewayUrl") == expected_url, f"get_gateway: gatewayUrl {gateway.get('gatewayUrl')!r}")
    listed = [g["gatewayId"] for g in control.list_gateways()["items"]]
    check(gateway_id in listed, f"list_gateways: {listed} misses {gateway_id}")
    errors["get_unknown_gateway"] = expect_error(
        control, "ResourceNotFoundException", control.get_gateway, gatewayIdentifier="nosuchgateway-0123456789"
    )
    out["gateway_id"] = gateway_id
    out["gateway_url"] = expected_url

    target_id = create_target(control, gateway_id, "orders", api)
    out["target_id"] = target_id
    items = control.list_gateway_targets(gatewayIdentifier=gateway_id)["items"]
    check(
        any(t["targetId"] == target_id and t["name"] == "orders" for t in items),
        f"list_gateway_targets: {items} misses {target_id}",
    )
    control.update_gateway_target(
        gatewayIdentifier=gateway_id, targetId=target_id, name="orders", description="Orders API", **target_request(api)
    )
    got = wait_for_status(
        "target update", lambda: control.get_gateway_target(gatewayIdentifier=gateway_id, targetId=target_id), "READY"
    )
    check(got.get("description") == "Orders API", f"get_gateway_target after update: description {got.get('description')!r}")
    synced = control.synchronize_gateway_targets(gatewayIdentifier=gateway_id, targetIdList=[target_id])
    synced_ids = [t["targetId"] for t in synced.get("targets", [])]
    check(synced_ids == [target_id], f"synchronize_gateway_targets: targets {synced_ids}")
    wait_for_status(
        "target after synchronize",
        lambda: control.get_gateway_target(gatewayIdentifier=gateway_id, targetId=target_id),
        "READY",
        failed=("FAILED", "UPDATE_UNSUCCESSFUL", "SYNCHRONIZE_UNSUCCESSFUL"),
    )

    # A second target, deleted again.
    scratch_id = create_target(control, gateway_id, "scratch", api)
    control.delete_gateway_target(gatewayIdentifier=gateway_id, targetId=scratch_id)
    wait_until_gone(control, "target scratch", control.get_gateway_target, gatewayIdentifier=gateway_id, targetId=scratch_id)
    errors["get_deleted_target"] = "ResourceNotFoundException"
    items = control.list_gateway_targets(gatewayIdentifier=gateway_id)["items"]
    check([t["targetId"] for t in items] == [target_id], f"list_gateway_targets after delete: {items}")

    # Over MCP, no policy yet: both tools listed and callable.
    url = expected_url
    tools = mcp(url, _tool_names)
    check({GET_ORDER, CREATE_ORDER} <= set(tools), f"tools/list: {tools}")
    out["tools"] = tools
    got_order = call_tool(url, GET_ORDER, {"id": "42"})
    check(not got_order["isError"], f"{GET_ORDER}: error {got_order['text']!r}")
    check("42" in got_order["text"], f"{GET_ORDER}: answer lacks the order id: {got_order['text']!r}")
    check(("GET", "/orders/42", None) in api.requests, f"orders API never saw GET /orders/42: {api.requests}")
    out["get_order"] = got_order["text"]
    placed = call_tool(url, CREATE_ORDER, {"item": "widget", "quantity": 2})
    check(not placed["isError"], f"{CREATE_ORDER} without a policy engine: error {placed['text']!r}")
    check(
        any(m == "POST" and isinstance(b, dict) and b.get("item") == "widget" for m, _, b in api.requests),
        f"orders API never saw the POST body: {api.requests}",
    )
    return gateway_id, url


def policies(control: Any, gateway_id: str, url: str, api: OrdersApi, out: dict[str, Any]) -> None:
    errors = out["errors"]
    engine = control.create_policy_engine(name="orders_engine")
    engine_id, engine_arn = engine["policyEngineId"], engine["policyEngineArn"]
    wait_for_status("policy engine", lambda: control.get_policy_engine(policyEngineId=engine_id), "ACTIVE")
    engines = [e["policyEngineId"] for e in control.list_policy_engines()["policyEngines"]]
    check(engine_id in engines, f"list_policy_engines: {engines} misses {engine_id}")
    out["policy_engine_id"] = engine_id

    errors["create_bad_policy"] = expect_error(
        control, "ValidationException", control.create_policy,
        policyEngineId=engine_id, name="broken", definition={"cedar": {"statement": BAD_POLICY}},
    )
    policy_id = control.create_policy(
        policyEngineId=engine_id, name="read_orders", definition={"cedar": {"statement": READ_ONLY_POLICY}}
    )["policyId"]
    got = wait_for_status(
        "policy", lambda: control.get_policy(policyEngineId=engine_id, policyId=policy_id), "ACTIVE"
    )
    check(got["name"] == "read_orders", f"get_policy: name {got['name']!r}")
    check(
        got["definition"].get("cedar", {}).get("statement") == READ_ONLY_POLICY,
        f"get_policy: definition {got['definition']}",
    )
    listed = [p["policyId"] for p in control.list_policies(policyEngineId=engine_id)["policies"]]
    check(policy_id in listed, f"list_policies: {listed} misses {policy_id}")
    out["policy_id"] = policy_id

    control.update_gateway(
        gatewayIdentifier=gateway_id,
        name="orders-gw",
        roleArn=ROLE_ARN,
        protocolType="MCP",
        authorizerType="NONE",
        policyEngineConfiguration={"arn": engine_arn, "mode": "ENFORCE"},
    )
    gateway = wait_for_status("gateway update", lambda: control.get_gateway(gatewayIdentifier=gateway_id), "READY")
    check(
        contains(gateway.get("policyEngineConfiguration"), {"arn": engine_arn, "mode": "ENFORCE"}),
        f"get_gateway: policyEngineConfiguration {gateway.get('policyEngineConfiguration')}",
    )

    # Enforced without a restart: writes denied before reaching the API, reads allowed.
    def denied_create() -> dict[str, Any] | None:
        before = api.count("POST")
        result = call_tool(url, CREATE_ORDER, {"item": "gadget", "quantity": 1})
        if not result["isError"]:
            return None
        check(result["text"].startswith(DENIED_PREFIX), f"{CREATE_ORDER} under read-only policy: {result['text']!r}")
        check(api.count("POST") == before, "a denied call reached the orders API")
        return result

    out["denied_text"] = eventually(f"{CREATE_ORDER} denied by policy", denied_create)["text"]
    read = call_tool(url, GET_ORDER, {"id": "7"})
    check(not read["isError"], f"{GET_ORDER} under read-only policy: {read['text']!r}")

    control.update_policy(
        policyEngineId=engine_id, policyId=policy_id, definition={"cedar": {"statement": READ_WRITE_POLICY}}
    )
    got = wait_for_status(
        "policy update", lambda: control.get_policy(policyEngineId=engine_id, policyId=policy_id), "ACTIVE"
    )
    check(got["definition"].get("cedar", {}).get("statement") == READ_WRITE_POLICY, f"get_policy after update: {got['definition']}")

    def allowed_create() -> dict[str, Any] | None:
        result = call_tool(url, CREATE_ORDER, {"item": "gadget", "quantity": 3})
        return None if result["isError"] else result

    out["allowed_after_update"] = "1001" in eventually(f"{CREATE_ORDER} allowed after update_policy", allowed_create)["text"]
    check(out["allowed_after_update"], "createOrder after update_policy did not return the new order")

    control.delete_policy(policyEngineId=engine_id, policyId=policy_id)
    wait_until_gone(control, "policy", control.get_policy, policyEngineId=engine_id, policyId=policy_id)
    errors["get_deleted_policy"] = "ResourceNotFoundException"
    listed = [p["policyId"] for p in control.list_policies(policyEngineId=engine_id)["policies"]]
    check(policy_id not in listed, f"list_policies after delete: {listed}")

    # No policy left in an enforcing engine: Cedar denies by default.
    def denied_read() -> dict[str, Any] | None:
        result = call_tool(url, GET_ORDER, {"id": "8"})
        return result if result["isError"] else None

    default_deny = eventually(f"{GET_ORDER} denied with no policies", denied_read)
    check(default_deny["text"].startswith(DENIED_PREFIX), f"default deny: {default_deny['text']!r}")


# ---------------------------------------------------------------- memory


def memories(control: Any, out: dict[str, Any]) -> None:
    memory = control.create_memory(name="cp_memory", eventExpiryDuration=30)["memory"]
    memory_id = memory["id"]
    check(memory["name"] == "cp_memory", f"create_memory: name {memory['name']!r}")
    wait_for_status("memory", lambda: control.get_memory(memoryId=memory_id)["memory"], "ACTIVE", failed=("FAILED",))
    updated = control.update_memory(
        memoryId=memory_id,
        memoryStrategies={"addMemoryStrategies": [{"semanticMemoryStrategy": {"name": "facts"}}]},
    )["memory"]
    strategies = updated.get("strategies", [])
    check(
        any(s.get("name") == "facts" and s.get("type") == "SEMANTIC" for s in strategies),
        f"update_memory: strategies {strategies}",
    )
    listed = [m.get("id") for m in control.list_memories(maxResults=100)["memories"]]
    check(memory_id in listed, f"list_memories: {listed} misses {memory_id}")
    out["errors"]["get_unknown_memory"] = expect_error(
        control, "ResourceNotFoundException", control.get_memory, memoryId="nosuchmemory-0123456789"
    )
    out["memory_id"] = memory_id
    out["memory_strategies"] = [s.get("name") for s in strategies]


# ---------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    corral_url, s3_url = argv[1].rstrip("/"), argv[2].rstrip("/")
    wasm_path = Path(argv[3])
    if not wasm_path.is_file():
        print(f"FAILED: no agent component at {wasm_path}", file=sys.stderr)
        return 2
    control, data, s3 = clients(corral_url, s3_url)
    out: dict[str, Any] = {"errors": {}}
    api = OrdersApi()
    phase = "setup"
    try:
        phase = "runtimes"
        runtimes(control, data, s3, wasm_path, out)
        phase = "gateways"
        gateway_id, url = gateways(control, corral_url, api, out)
        phase = "policies"
        policies(control, gateway_id, url, api, out)
        phase = "memory"
        memories(control, out)
    except CheckFailed as failure:
        print(f"FAILED ({phase}): {failure}", file=sys.stderr)
        print(f"partial results: {json.dumps(out, default=str)}", file=sys.stderr)
        return 1
    except Exception as error:  # noqa: BLE001 - any other error fails the run with its trace
        traceback.print_exc()
        if isinstance(error, ClientError):
            print(f"FAILED ({phase}): {error.response.get('Error')}", file=sys.stderr)
        else:
            print(f"FAILED ({phase}): {type(error).__name__}: {error}", file=sys.stderr)
        print(f"partial results: {json.dumps(out, default=str)}", file=sys.stderr)
        return 1
    finally:
        api.close()
    out["ok"] = True
    print(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
