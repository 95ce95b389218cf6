"""The agent loop: ask the model, run the tools it requests, feed the results
back, until the model ends its turn or the step limit is reached."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from . import host as _host
from .errors import ModelError, ModelFailed, ToolDenied, ToolError, ToolFailed, ToolNotFound
from .types import Inference, Message, StopReason, ToolResult, ToolSpec, Usage


@dataclass
class ToolCall:
    """One tool call the loop made."""

    name: str
    ok: bool
    #: Set when a policy denied the call (the tool never ran).
    denied: ToolDenied | None = None
    #: The error's one-line explanation when the call failed.
    error: str | None = None


@dataclass
class LoopOutcome:
    """What a loop run produced."""

    #: Text of the model's last message.
    text: str = ""
    #: Model calls made.
    steps: int = 0
    #: Tool calls made, in order.
    tool_calls: list[ToolCall] = field(default_factory=list)
    #: ``end-turn``, ``max-tokens``, ``stop-sequence``, ``step-limit`` or the
    #: stop reason that halted generation (e.g. ``guardrail-intervened``).
    stop: str = "step-limit"
    #: Tokens used across all steps.
    usage: Usage = field(default_factory=Usage)

    @property
    def denials(self) -> list[ToolDenied]:
        """The policy denials met during the run."""
        return [c.denied for c in self.tool_calls if c.denied is not None]


class ToolLoop:
    """Configuration of the agent loop (model → tools → results → repeat).

    Defaults: up to 10 steps, every tool of the session, the host's model.
    Failed and denied tool calls are reported back to the model as error
    results so it can recover; model failures raise :class:`ModelFailed`.
    """

    def __init__(
        self,
        system: str,
        *,
        max_steps: int = 10,
        model_id: str | None = None,
        tools: Iterable[str] | None = None,
        use_tools: bool = True,
        history_limit: int | None = None,
        inference: Inference | None = None,
    ) -> None:
        self.system = [system]
        self.max_steps = max(1, max_steps)
        self.model_id = model_id
        self.only_tools = list(tools) if tools is not None else None
        self.use_tools = use_tools
        self.history_limit = max(1, history_limit) if history_limit else None
        self.inference = inference or Inference()

    def ask(self, conversation: list[Message], prompt: str) -> LoopOutcome:
        """Appends ``prompt`` as a user message and runs the loop. When the
        run fails, the turn is taken back out of ``conversation``, so the
        next prompt does not follow an unanswered one."""
        before = len(conversation)
        conversation.append(Message.user(prompt))
        try:
            return self.run(conversation)
        except BaseException:
            del conversation[before:]
            raise

    def run(self, conversation: list[Message]) -> LoopOutcome:
        """Runs the loop; ``conversation`` receives every new message."""
        host = _host.current()
        if self.history_limit is not None:
            trim_history(conversation, self.history_limit)
        specs = self._tool_specs(host)
        outcome = LoopOutcome()
        while outcome.steps < self.max_steps:
            outcome.steps += 1
            try:
                reply = host.converse(
                    self.system, conversation, specs, self.model_id, self.inference
                )
            except ModelError as e:
                raise ModelFailed(str(e)) from e
            outcome.usage.add(reply.usage)
            message = reply.message
            outcome.text = message.text
            conversation.append(message)
            uses = message.tool_uses
            if reply.stop_reason != "tool-use" or not uses:
                outcome.stop = _stop_cause(reply.stop_reason)
                return outcome
            results = []
            offered = {spec.name for spec in specs}
            for use in uses:
                try:
                    # Only offered tools run, whatever name the model sends.
                    if use.name not in offered:
                        raise ToolNotFound(use.name)
                    output = host.call_tool(use.name, use.input)
                except ToolError as e:
                    host.log("warn", f"tool {use.name} failed: {e.explain()}", {})
                    denied = e if isinstance(e, ToolDenied) else None
                    outcome.tool_calls.append(ToolCall(use.name, False, denied, e.explain()))
                    results.append(ToolResult.failure(use.tool_use_id, e.explain()))
                else:
                    host.log("debug", f"tool {use.name} succeeded", {})
                    outcome.tool_calls.append(ToolCall(use.name, True))
                    results.append(ToolResult.success(use.tool_use_id, output))
            conversation.append(Message("user", list(results)))
        host.log("warn", f"tool loop stopped at its step limit of {self.max_steps}", {})
        # The conversation ends with tool results; an assistant turn keeps
        # user and assistant messages alternating for the next prompt.
        conversation.append(
            Message.assistant(f"(I stopped at my step limit of {self.max_steps} before finishing.)")
        )
        return outcome

    def _tool_specs(self, host: _host.Host) -> list[ToolSpec]:
        if not self.use_tools:
            return []
        try:
            listed = host.list_tools()
        except ToolError as e:
            raise ToolFailed(f"cannot list tools: {e.explain()}") from e
        return [
            ToolSpec(t.name, t.description, t.input_schema)
            for t in listed
            if self.only_tools is None or t.name in self.only_tools
        ]


def _stop_cause(reason: StopReason) -> str:
    return "end-turn" if reason == "tool-use" else reason


def trim_history(conversation: list[Message], limit: int) -> None:
    """Drops the oldest whole turns until at most ``limit`` messages remain
    (the newest turn is always kept whole, so tool uses stay paired)."""
    while len(conversation) > limit:
        start = next(
            (i for i, m in enumerate(conversation) if i > 0 and m.is_prompt()), None
        )
        if start is None:
            return
        del conversation[:start]
