"""Drives a Corral gateway with the official MCP Python SDK and prints a JSON
report of what it saw. Usage: mcp_client.py <url> <mode> (mode: legacy|auto)."""

import asyncio
import json
import sys

from mcp import Client


def texts(result):
    return [c.text for c in result.content if getattr(c, "type", None) == "text"]


def summary(result):
    return {
        "isError": bool(result.is_error),
        "structured": result.structured_content,
        "text": texts(result),
    }


async def run(url: str, mode: str) -> dict:
    report = {}
    async with Client(url, mode=mode) as client:
        report["protocol"] = client.protocol_version
        names, pages, cursor = [], 0, None
        while True:
            page = await client.list_tools(cursor=cursor, cache_mode="bypass")
            pages += 1
            names.extend(tool.name for tool in page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        report["pages"] = pages
        report["tools"] = names
        report["openapi"] = summary(await client.call_tool("pets___getPet", {"petId": "1"}))
        report["lambda"] = summary(await client.call_tool("orders___get_order", {"orderId": "A-1"}))
        report["lambda_error"] = summary(await client.call_tool("orders___explode", {}))
        report["time"] = summary(await client.call_tool("time___get_current_time", {"timezone": "UTC"}))
        report["everything"] = summary(await client.call_tool("everything___echo", {"message": "hello from python"}))
        report["wasm"] = summary(await client.call_tool("calculator___evaluate", {"expression": "6 * 7"}))
        report["search"] = summary(await client.call_tool("x_amz_bedrock_agentcore_search", {"query": "current time in a timezone"}))
    return report


if __name__ == "__main__":
    print(json.dumps(asyncio.run(run(sys.argv[1], sys.argv[2]))))
