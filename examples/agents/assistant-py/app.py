"""A multi-step assistant in Python: keeps the session's conversation in its
sandbox, records each turn in the session's short-term memory (when
attached), and runs the tool loop over whatever tools the session may use.
The same agent as examples/agents/assistant (Rust)."""

from corral_agent import Agent, Context, Message, ToolLoop, memory, prompt_of

SYSTEM = (
    "You are a helpful assistant. Use the tools you are given for anything "
    "you cannot answer with certainty, then answer briefly."
)

agent = Agent()

# The conversation so far; module state lives as long as the session's sandbox.
history: list[Message] = []


@agent.entrypoint
def invoke(payload: dict, context: Context) -> dict:
    prompt = prompt_of(payload)
    outcome = ToolLoop(SYSTEM, max_steps=8, history_limit=40).ask(history, prompt)
    remembered = memory.remember_turn(prompt, outcome.text)
    return {
        "response": outcome.text,
        "steps": outcome.steps,
        "toolCalls": [
            {"name": c.name, "ok": c.ok, "denied": c.denied is not None}
            for c in outcome.tool_calls
        ],
        "denials": [d.reason for d in outcome.denials],
        "turns": sum(1 for m in history if m.is_prompt()),
        "memoryEventId": remembered,
        "sessionId": context.session_id,
        "usage": {
            "inputTokens": outcome.usage.input_tokens,
            "outputTokens": outcome.usage.output_tokens,
        },
    }
