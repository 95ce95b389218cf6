"""The session's tools (served by Corral's gateway, decided by Cedar policy)."""

from __future__ import annotations

import json
from typing import Any

from . import host as _host
from .types import ToolInfo


def list_tools() -> list[ToolInfo]:
    """The tools this session may use; raises :class:`~corral_agent.ToolError`."""
    return _host.current().list_tools()


def call(name: str, arguments: dict[str, Any] | None = None) -> Any:
    """Calls a tool and returns its result parsed from JSON (text if not JSON).

    Raises a :class:`~corral_agent.ToolError` subclass: :class:`ToolDenied`
    when a policy denies the call, :class:`ToolNotFound`, and so on.
    """
    output = _host.current().call_tool(name, json.dumps(arguments or {}))
    try:
        return json.loads(output)
    except ValueError:
        return output
