"""Plain data types of the agent API: messages, tool specs, model replies.

They mirror ``corral:agent`` WIT records but are owned by this package, so
agent code (and its tests) runs on plain CPython too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Union

Role = Literal["user", "assistant"]
"""Who authored a message."""

StopReason = Literal[
    "end-turn",
    "tool-use",
    "max-tokens",
    "stop-sequence",
    "guardrail-intervened",
    "content-filtered",
    "malformed-model-output",
    "malformed-tool-use",
    "context-window-exceeded",
]
"""Why the model stopped generating (Bedrock Converse's stop reasons)."""


@dataclass
class Text:
    """A text block."""

    text: str


@dataclass
class ToolUse:
    """The model asks for a tool run; ``input`` is a JSON object as text."""

    tool_use_id: str
    name: str
    input: str

    def arguments(self) -> Any:
        """The input parsed as JSON (``{}`` when the model sent invalid JSON)."""
        try:
            return json.loads(self.input)
        except ValueError:
            return {}


@dataclass
class ToolResult:
    """The result of a tool run, sent back in a user message."""

    tool_use_id: str
    content: str
    ok: bool = True
    is_json: bool = False

    @classmethod
    def success(cls, tool_use_id: str, output: str) -> "ToolResult":
        """A successful result; JSON output is marked as JSON."""
        try:
            json.loads(output)
            is_json = True
        except ValueError:
            is_json = False
        return cls(tool_use_id, output, ok=True, is_json=is_json)

    @classmethod
    def failure(cls, tool_use_id: str, explanation: str) -> "ToolResult":
        """A failed result explaining the error to the model."""
        return cls(tool_use_id, explanation, ok=False, is_json=False)


Block = Union[Text, ToolUse, ToolResult]
"""One block of message content."""


@dataclass
class Message:
    """A conversation message."""

    role: Role
    content: list[Block] = field(default_factory=list)

    @classmethod
    def user(cls, text: str) -> "Message":
        """A user message with one text block."""
        return cls("user", [Text(text)])

    @classmethod
    def assistant(cls, text: str) -> "Message":
        """An assistant message with one text block."""
        return cls("assistant", [Text(text)])

    @property
    def text(self) -> str:
        """The text blocks joined with newlines."""
        return "\n".join(b.text for b in self.content if isinstance(b, Text))

    @property
    def tool_uses(self) -> list[ToolUse]:
        """The tool-use blocks, in order."""
        return [b for b in self.content if isinstance(b, ToolUse)]

    def is_prompt(self) -> bool:
        """True for a user message with text (a new turn, not tool results)."""
        return self.role == "user" and any(isinstance(b, Text) for b in self.content)


@dataclass
class ToolSpec:
    """A tool the model may request; ``input_schema`` is JSON Schema as text."""

    name: str
    description: str
    input_schema: str


@dataclass
class ToolInfo:
    """A tool in the session's catalogue (``<target>___<tool>`` for gateway tools)."""

    name: str
    description: str
    input_schema: str


@dataclass
class Inference:
    """Sampling parameters; ``None`` uses the provider's defaults."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop_sequences: list[str] = field(default_factory=list)


@dataclass
class Usage:
    """Tokens consumed."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def add(self, other: "Usage") -> None:
        """Adds ``other`` to these totals."""
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.total_tokens += other.total_tokens


@dataclass
class ModelReply:
    """One model response: the assistant message, why it stopped, tokens used."""

    message: Message
    stop_reason: StopReason
    usage: Usage


@dataclass
class Event:
    """A stored short-term memory event; ``turns`` are ``(role, text)`` pairs."""

    event_id: str
    session_id: str
    actor_id: str
    timestamp_ms: int
    turns: list[tuple[str, str]]
    blobs: list[str] = field(default_factory=list)


@dataclass
class MemoryRecord:
    """A long-term memory record returned by retrieval."""

    record_id: str
    content: str
    namespaces: list[str]
    strategy_id: str | None
    score: float
