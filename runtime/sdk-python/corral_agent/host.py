"""The one seam between agent code and Corral: every host call crosses it.

:class:`WitHost` calls the ``corral:agent`` imports that componentize-py
generates (``wit_world``); tests install another :class:`Host` with
:func:`use_host` and run the same agent code on plain CPython.
"""

from __future__ import annotations

import re
from typing import Protocol, Sequence

from .errors import (
    InvalidToolArguments,
    MemoryAccessError,
    ModelError,
    ToolDenied,
    ToolError,
    ToolLimitExceeded,
    ToolNotFound,
    ToolTimeout,
    ToolUpstreamError,
)
from .types import (
    Event,
    Inference,
    MemoryRecord,
    Message,
    ModelReply,
    Text,
    ToolInfo,
    ToolResult,
    ToolSpec,
    ToolUse,
    Usage,
)


class StreamClosed(Exception):
    """The caller has gone away; further chunks are pointless."""


class StreamLimitExceeded(Exception):
    """The response (chunks plus final payload) would exceed its size limit."""


class Host(Protocol):
    """What an agent can ask of its host."""

    def converse(
        self,
        system: Sequence[str],
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        model_id: str | None,
        inference: Inference,
    ) -> ModelReply:
        """Sends the conversation to the model; raises :class:`ModelError`."""
        ...

    def list_tools(self) -> list[ToolInfo]:
        """The session's tools; raises :class:`ToolError`."""
        ...

    def call_tool(self, name: str, arguments: str) -> str:
        """Runs a tool with JSON arguments, returns its JSON result; raises :class:`ToolError`."""
        ...

    def log(self, level: str, message: str, fields: dict[str, str]) -> None:
        """Writes a session log line (dropped silently over budget)."""
        ...

    def append_event(self, turns: Sequence[tuple[str, str]], blobs: Sequence[str]) -> str:
        """Appends a memory event; raises :class:`MemoryAccessError`."""
        ...

    def list_events(self, max_results: int) -> list[Event]:
        """The session's latest events, oldest first; raises :class:`MemoryAccessError`."""
        ...

    def retrieve_records(self, namespace: str, query: str, top_k: int) -> list[MemoryRecord]:
        """Long-term records of this actor; raises :class:`MemoryAccessError`."""
        ...

    def send(self, chunk: bytes) -> None:
        """Streams a chunk; raises :class:`StreamClosed` or :class:`StreamLimitExceeded`."""
        ...


_host: Host | None = None


def use_host(host: Host | None) -> None:
    """Routes host calls to ``host`` (``None`` restores the real host)."""
    global _host
    _host = host


def current() -> Host:
    """The host calls go to: the one set with :func:`use_host`, else the real one."""
    global _host
    if _host is None:
        _host = WitHost()
    return _host


def _kebab(name: str) -> str:
    """``LIMIT_EXCEEDED`` / ``LimitExceeded`` → ``limit-exceeded``."""
    if "_" in name or name.isupper():
        return name.lower().replace("_", "-")
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def _case(value: object) -> str:
    """The WIT case name of a generated variant value (``ToolError_NotFound`` → ``not-found``)."""
    return _kebab(type(value).__name__.split("_", 1)[-1])


class WitHost:
    """The real host: the ``corral:agent`` imports of the component."""

    def __init__(self) -> None:
        # Imported here so the package also imports on plain CPython.
        from componentize_py_types import Err
        from wit_world.imports import log, memory, model, response_stream, tools

        self._err = Err
        self._log = log
        self._memory = memory
        self._model = model
        self._stream = response_stream
        self._tools = tools

    def converse(self, system, messages, tools, model_id, inference):
        m = self._model
        request = m.ConverseRequest(
            model_id=model_id,
            system=list(system),
            messages=[self._to_wit_message(msg) for msg in messages],
            tools=[m.ToolSpec(t.name, t.description, t.input_schema) for t in tools],
            inference=m.InferenceConfig(
                max_tokens=inference.max_tokens,
                temperature=inference.temperature,
                top_p=inference.top_p,
                stop_sequences=list(inference.stop_sequences),
            ),
        )
        try:
            reply = m.converse(request)
        except self._err as e:
            raise ModelError(_case(e.value), str(getattr(e.value, "value", ""))) from None
        return ModelReply(
            message=self._from_wit_message(reply.output),
            stop_reason=_kebab(reply.stop_reason.name),  # type: ignore[arg-type]
            usage=Usage(
                reply.usage.input_tokens, reply.usage.output_tokens, reply.usage.total_tokens
            ),
        )

    def list_tools(self):
        try:
            listed = self._tools.list_tools()
        except self._err as e:
            raise self._tool_error(e.value) from None
        return [ToolInfo(t.name, t.description, t.input_schema) for t in listed]

    def call_tool(self, name, arguments):
        try:
            return self._tools.call_tool(name, arguments)
        except self._err as e:
            raise self._tool_error(e.value) from None

    def log(self, level, message, fields):
        name = {"WARNING": "WARN", "CRITICAL": "ERROR"}.get(level.upper(), level.upper())
        lv = self._log.Level.__members__.get(name, self._log.Level.INFO)
        try:
            self._log.write(lv, message, [self._log.Field(k, v) for k, v in fields.items()])
        except self._err:
            pass  # over the log budget: the host dropped and counted the line

    def append_event(self, turns, blobs):
        mem = self._memory
        items: list = []
        for role, text in turns:
            member = mem.Role.__members__.get(str(role).upper())
            if member is None:
                raise MemoryAccessError(
                    "validation", f"role {role!r} is not one of user, assistant, tool, other"
                )
            items.append(mem.PayloadItem_Conversational(mem.Conversational(member, text)))
        items.extend(mem.PayloadItem_Blob(blob) for blob in blobs)
        try:
            return mem.append_event(items)
        except self._err as e:
            raise self._memory_error(e.value) from None

    def list_events(self, max_results):
        mem = self._memory
        try:
            events = mem.list_events(max_results)
        except self._err as e:
            raise self._memory_error(e.value) from None
        out = []
        for ev in events:
            turns, blobs = [], []
            for item in ev.payload:
                if isinstance(item, mem.PayloadItem_Conversational):
                    turns.append((item.value.role.name.lower(), item.value.text))
                else:
                    blobs.append(item.value)
            out.append(Event(ev.event_id, ev.session_id, ev.actor_id, ev.timestamp_ms, turns, blobs))
        return out

    def retrieve_records(self, namespace, query, top_k):
        try:
            records = self._memory.retrieve_records(namespace, query, top_k)
        except self._err as e:
            raise self._memory_error(e.value) from None
        return [
            MemoryRecord(r.record_id, r.content, list(r.namespaces), r.strategy_id, r.score)
            for r in records
        ]

    def send(self, chunk):
        try:
            self._stream.send(chunk)
        except self._err as e:
            if _case(e.value) == "closed":
                raise StreamClosed("the caller has gone away") from None
            raise StreamLimitExceeded(str(e.value.value)) from None

    def _to_wit_message(self, message: Message):
        m = self._model
        blocks = []
        for block in message.content:
            if isinstance(block, Text):
                blocks.append(m.ContentBlock_Text(block.text))
            elif isinstance(block, ToolUse):
                blocks.append(
                    m.ContentBlock_ToolUse(m.ToolUse(block.tool_use_id, block.name, block.input))
                )
            else:
                content = (
                    m.ToolResultContent_Json(block.content)
                    if block.is_json
                    else m.ToolResultContent_Text(block.content)
                )
                status = m.ToolResultStatus.SUCCESS if block.ok else m.ToolResultStatus.ERROR
                blocks.append(
                    m.ContentBlock_ToolResult(m.ToolResult(block.tool_use_id, [content], status))
                )
        role = m.Role.USER if message.role == "user" else m.Role.ASSISTANT
        return m.Message(role, blocks)

    def _from_wit_message(self, message) -> Message:
        m = self._model
        blocks: list = []
        for block in message.content:
            if isinstance(block, m.ContentBlock_Text):
                blocks.append(Text(block.value))
            elif isinstance(block, m.ContentBlock_ToolUse):
                u = block.value
                blocks.append(ToolUse(u.tool_use_id, u.name, u.input))
            else:
                r = block.value
                text = "\n".join(c.value for c in r.content)
                is_json = any(isinstance(c, m.ToolResultContent_Json) for c in r.content)
                ok = r.status == m.ToolResultStatus.SUCCESS
                blocks.append(ToolResult(r.tool_use_id, text, ok=ok, is_json=is_json))
        role = "user" if message.role == m.Role.USER else "assistant"
        return Message(role, blocks)

    def _tool_error(self, value) -> ToolError:
        case = _case(value)
        if case == "denied":
            return ToolDenied(value.value.reason, list(value.value.policy_ids))
        if case == "not-found":
            return ToolNotFound(value.value)
        if case == "invalid-arguments":
            return InvalidToolArguments(value.value)
        if case == "upstream":
            return ToolUpstreamError(value.value.message, value.value.status)
        if case == "timeout":
            return ToolTimeout(value.value)
        return ToolLimitExceeded(str(value.value))

    @staticmethod
    def _memory_error(value) -> MemoryAccessError:
        return MemoryAccessError(_case(value), str(getattr(value, "value", "") or ""))
