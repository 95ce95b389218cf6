// The JS SDK on plain Node: `node --import ./test/register.mjs --test test/`.
import assert from "node:assert/strict";
import { beforeEach, test } from "node:test";

import { Agent, MemoryAccessError, ToolError, ToolLoop, memory, tools, userMessage } from "../index.js";

/** A ComponentError as jco's glue throws it: not an Error, with a payload. */
function componentError(payload) {
  return { payload, message: "[object Object] (see error.payload)" };
}

function toolTurn(...calls) {
  return {
    output: {
      role: "assistant",
      content: calls.map(([name, input], i) => ({ tag: "tool-use", val: { toolUseId: `t${i}`, name, input } })),
    },
    stopReason: "tool-use",
    usage: { inputTokens: 10, outputTokens: 1, totalTokens: 11 },
  };
}

function finalTurn(text) {
  return {
    output: { role: "assistant", content: [{ tag: "text", val: text }] },
    stopReason: "end-turn",
    usage: { inputTokens: 20, outputTokens: 1, totalTokens: 21 },
  };
}

let calls;
let lines;
let replies;
let requests;

beforeEach(() => {
  calls = [];
  lines = [];
  requests = [];
  replies = [];
  globalThis.corralImports = {
    "model.converse": (request) => {
      requests.push(structuredClone(request));
      if (replies.length === 0) throw componentError({ tag: "internal", val: "no reply queued" });
      return replies.shift();
    },
    "tools.listTools": () => ["calc", "refund"].map((name) => ({ name, description: name, inputSchema: "{}" })),
    "tools.callTool": (name, args) => {
      calls.push([name, args]);
      if (name === "refund") throw componentError({ tag: "denied", val: { reason: "needs a human", policyIds: ["p1"] } });
      return '{"value":4}';
    },
    "log.write": (level, message) => lines.push([level, message]),
    "memory.appendEvent": () => {
      throw componentError({ tag: "not-configured" });
    },
  };
});

test("the loop runs tools, reports denials and feeds results back", () => {
  replies = [toolTurn(["calc", '{"expression":"2+2"}'], ["refund", "{}"]), finalTurn("4; refund denied")];
  const conversation = [];
  const outcome = new ToolLoop("sys").ask(conversation, "2+2 and refund me");
  assert.equal(outcome.stop, "end-turn");
  assert.equal(outcome.steps, 2);
  assert.deepEqual(outcome.toolCalls.map((c) => [c.name, c.ok, c.denied]), [["calc", true, false], ["refund", false, true]]);
  assert.equal(outcome.toolCalls[1].reason, "needs a human");
  assert.deepEqual(outcome.toolCalls[1].policyIds, ["p1"]);
  const results = conversation[2].content.map((b) => b.val);
  assert.equal(results[0].content[0].tag, "json");
  assert.equal(results[1].status, "error");
  assert.match(results[1].content[0].val, /denied by policy: needs a human \(policies: p1\)/);
  assert.deepEqual(requests[0].inference.stopSequences, [], "every list field is present");
});

test("tools not offered never run", () => {
  replies = [toolTurn(["refund", "{}"]), finalTurn("no")];
  const outcome = new ToolLoop("s", { tools: ["calc"] }).ask([], "refund me");
  assert.deepEqual(calls, []);
  assert.equal(outcome.toolCalls[0].error, "tool not found: refund");
});

test("a failed turn is taken back; the step limit ends with the assistant", () => {
  const conversation = [userMessage("1"), { role: "assistant", content: [{ tag: "text", val: "a" }] }];
  assert.throws(() => new ToolLoop("s").ask(conversation, "2"), /no reply queued/);
  assert.equal(conversation.length, 2);
  replies = [toolTurn(["calc", "{}"])];
  const outcome = new ToolLoop("s", { maxSteps: 1 }).ask(conversation, "3");
  assert.equal(outcome.stop, "step-limit");
  assert.equal(conversation.at(-1).role, "assistant");
});

test("direct tool calls and memory throw typed errors", () => {
  assert.deepEqual(tools.call("calc", { expression: "1+1" }), { value: 4 });
  assert.throws(() => tools.call("refund", {}), (e) => e instanceof ToolError && e.denied && e.policyIds[0] === "p1");
  assert.throws(() => memory.appendEvent([["user", "x"]]), (e) => e instanceof MemoryAccessError && e.kind === "not-configured");
  const { rememberTurn } = memory;
  assert.equal(rememberTurn("q", "a"), undefined, "works detached, quiet without memory");
  assert.deepEqual(lines, []);
});

test("the handler returns responses and throws agent-error variants, never Errors", () => {
  const agent = new Agent();
  const invocation = (body, contentType = "application/json") => ({
    sessionId: "s", actorId: "alice", requestId: "r", contentType, payload: new TextEncoder().encode(body),
  });
  agent.entrypoint((payload, context) => ({ got: payload, actor: context.actorId }));
  const response = agent.handler().invoke(invocation('{"prompt":"hi"}'));
  assert.equal(response.contentType, "application/json");
  assert.deepEqual(JSON.parse(new TextDecoder().decode(response.payload)), { got: { prompt: "hi" }, actor: "alice" });

  agent.entrypoint(() => {
    throw new TypeError("boom");
  });
  assert.throws(() => agent.handler().invoke(invocation("{}")), (e) => !(e instanceof Error) && e.tag === "internal" && /TypeError: boom/.test(e.val));
  assert.ok(lines.some(([level, message]) => level === "error" && /boom/.test(message)));

  assert.throws(() => agent.handler().invoke(invocation("{nope")), (e) => e.tag === "invalid-input");
});
