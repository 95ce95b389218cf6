"""A host for tests: scripted model replies, tools as a dict of callables."""

from __future__ import annotations

from typing import Callable

from corral_agent import Message, ModelReply, Text, ToolDenied, ToolInfo, ToolUse, Usage
from corral_agent.errors import MemoryAccessError, ModelError, ToolNotFound
from corral_agent.types import Event


def tool_turn(*calls: tuple[str, str]) -> ModelReply:
    """The model asks for these (name, JSON input) tool calls."""
    blocks = [ToolUse(f"t{i}", name, args) for i, (name, args) in enumerate(calls)]
    return ModelReply(Message("assistant", list(blocks)), "tool-use", Usage(10, 1, 11))


def final_turn(text: str) -> ModelReply:
    """The model answers and ends its turn."""
    return ModelReply(Message("assistant", [Text(text)]), "end-turn", Usage(20, 1, 21))


class FakeHost:
    def __init__(self, replies: list[ModelReply], tools: dict[str, Callable[[str], str]] | None = None):
        self.replies = list(replies)
        self.tools = tools or {}
        self.requests: list[list[Message]] = []
        self.calls: list[tuple[str, str]] = []
        self.lines: list[tuple[str, str, dict[str, str]]] = []
        self.events: list[tuple[list[tuple[str, str]], list[str]]] = []
        self.sent: list[bytes] = []
        self.memory_attached = True

    def converse(self, system, messages, tools, model_id, inference):
        self.requests.append([*messages])
        self.offered = [t.name for t in tools]
        if not self.replies:
            raise ModelError("internal", "no reply queued")
        return self.replies.pop(0)

    def list_tools(self):
        return [ToolInfo(name, f"{name} tool", '{"type":"object"}') for name in self.tools]

    def call_tool(self, name, arguments):
        self.calls.append((name, arguments))
        if name not in self.tools:
            raise ToolNotFound(name)
        return self.tools[name](arguments)

    def log(self, level, message, fields):
        self.lines.append((level, message, fields))

    def append_event(self, turns, blobs):
        if not self.memory_attached:
            raise MemoryAccessError("not-configured")
        self.events.append((list(turns), list(blobs)))
        return f"event-{len(self.events)}"

    def list_events(self, max_results):
        return [
            Event(f"event-{i}", "s", "a", 0, turns, blobs)
            for i, (turns, blobs) in enumerate(self.events[-max_results:])
        ]

    def retrieve_records(self, namespace, query, top_k):
        raise MemoryAccessError("denied", namespace)

    def send(self, chunk):
        self.sent.append(chunk)


def deny(_arguments: str) -> str:
    raise ToolDenied("refunds need a human", ["p1"])
