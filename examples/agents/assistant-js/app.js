// A multi-step assistant in JavaScript: keeps the session's conversation in
// its sandbox, records each turn in the session's short-term memory (when
// attached), and runs the tool loop over whatever tools the session may use.
// The same agent as examples/agents/assistant (Rust) and assistant-py.

import { Agent, ToolLoop, isPrompt, memory, promptOf } from "corral-agent";

const SYSTEM =
  "You are a helpful assistant. Use the tools you are given for anything " +
  "you cannot answer with certainty, then answer briefly.";

const agent = new Agent();

// The conversation so far; module state lives as long as the session's sandbox.
const history = [];

agent.entrypoint((payload, context) => {
  const prompt = promptOf(payload);
  const outcome = new ToolLoop(SYSTEM, { maxSteps: 8, historyLimit: 40 }).ask(history, prompt);
  const remembered = memory.rememberTurn(prompt, outcome.text);
  return {
    response: outcome.text,
    steps: outcome.steps,
    toolCalls: outcome.toolCalls.map(({ name, ok, denied }) => ({ name, ok, denied })),
    denials: outcome.toolCalls.filter((c) => c.denied).map((c) => c.reason),
    turns: history.filter(isPrompt).length,
    memoryEventId: remembered ?? null,
    sessionId: context.sessionId,
    usage: { inputTokens: outcome.usage.inputTokens, outputTokens: outcome.usage.outputTokens },
  };
});

export const handler = agent.handler();
