"""The peer for MCP tools/call of an OpenAPI tool: FastMCP's `from_openapi`
over the same OpenAPI document and upstream as Corral's gateway, served in
the same mode (stateless streamable HTTP, JSON answers) on uvicorn."""

import json
import sys

import httpx2
import uvicorn
from fastmcp import FastMCP

spec_path, port = sys.argv[1], int(sys.argv[2])
with open(spec_path) as f:
    spec = json.load(f)
client = httpx2.AsyncClient(base_url=spec["servers"][0]["url"], timeout=30)
mcp = FastMCP.from_openapi(openapi_spec=spec, client=client, name="pets")
app = mcp.http_app(path="/mcp", json_response=True, stateless_http=True)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
