// Write Corral agents in JavaScript.
//
// An agent module registers an entry point and exports its handler;
// `corral build` turns it into a WebAssembly component (ComponentizeJS) that
// runs in its own sandbox per session. Everything it reaches — the model, the
// session's tools, memory, the session log — goes through the host seam
// below (`useHost` swaps it in tests):
//
//   import { Agent, ToolLoop, promptOf } from "corral-agent";
//   const agent = new Agent();
//   const history = [];
//   agent.entrypoint((payload, context) => {
//     const outcome = new ToolLoop("You are a helpful assistant.").ask(history, promptOf(payload));
//     return { response: outcome.text };
//   });
//   export const handler = agent.handler();

import * as model from "corral:agent/model@0.2.0";
import * as toolsApi from "corral:agent/tools@0.2.0";
import * as memoryApi from "corral:agent/memory@0.2.0";
import * as logApi from "corral:agent/log@0.2.0";
import * as streamApi from "corral:agent/response-stream@0.2.0";

// ---------------------------------------------------------------- errors

const AGENT_ERROR_CASES = ["invalid-input", "model-failed", "tool-failed", "limit-exceeded", "internal"];

/** Base of the errors that fail an invocation (`agent-error`). */
export class AgentError extends Error {
  constructor(message, kind = "internal") {
    super(message);
    this.name = "AgentError";
    /** The `agent-error` case: invalid-input, model-failed, tool-failed, limit-exceeded, internal. */
    this.kind = kind;
  }
}
/** The request payload was not what the agent accepts. */
export class InvalidInput extends AgentError {
  constructor(message) { super(message, "invalid-input"); this.name = "InvalidInput"; }
}
/** A model call failed and the agent could not recover. */
export class ModelFailed extends AgentError {
  constructor(message) { super(message, "model-failed"); this.name = "ModelFailed"; }
}
/** A tool call failed and the agent could not recover. */
export class ToolFailed extends AgentError {
  constructor(message) { super(message, "tool-failed"); this.name = "ToolFailed"; }
}
/** The agent hit one of its own limits. */
export class LimitExceeded extends AgentError {
  constructor(message) { super(message, "limit-exceeded"); this.name = "LimitExceeded"; }
}

/** A tool call failed; `kind` is the `tool-error` case. */
export class ToolError extends Error {
  constructor(kind, message, detail = {}) {
    super(message);
    this.name = "ToolError";
    /** not-found, denied, invalid-arguments, upstream, timeout, limit-exceeded. */
    this.kind = kind;
    /** For `denied`: the reason. */
    this.reason = detail.reason;
    /** For `denied`: ids of the deciding policies. */
    this.policyIds = detail.policyIds ?? [];
    /** For `upstream`: the upstream's status, if any. */
    this.status = detail.status;
  }
  /** Whether a policy denied the call (the tool never ran). */
  get denied() { return this.kind === "denied"; }
}

/** A model call failed; `kind` is the `model-error` case. */
export class ModelError extends Error {
  constructor(kind, message) {
    super(`model ${kind}: ${message}`);
    this.name = "ModelError";
    this.kind = kind;
  }
  /** Whether retrying later may succeed. */
  get retryable() { return ["throttled", "unavailable", "timeout"].includes(this.kind); }
}

/** A memory operation failed; `kind` is the `memory-error` case (e.g. not-configured, denied). */
export class MemoryAccessError extends Error {
  constructor(kind, message = "") {
    super(message ? `memory ${kind}: ${message}` : `memory ${kind}`);
    this.name = "MemoryAccessError";
    this.kind = kind;
  }
}

/** The caller has gone away, or the response would exceed its size limit. */
export class StreamError extends Error {
  constructor(kind, message = "") {
    super(message || `stream ${kind}`);
    this.name = "StreamError";
    /** closed or limit-exceeded. */
    this.kind = kind;
  }
}

// ---------------------------------------------------------------- the host seam

/** The payload of an error thrown by an imported function (`result<_, E>`). */
function errorPayload(e) {
  return e && typeof e === "object" && "payload" in e ? e.payload : e;
}

function toolError(e) {
  const err = errorPayload(e);
  if (!err || typeof err !== "object" || !("tag" in err)) {
    return new ToolError("upstream", String(e));
  }
  switch (err.tag) {
    case "denied": {
      const ids = err.val.policyIds ?? [];
      const suffix = ids.length ? ` (policies: ${ids.join(", ")})` : "";
      return new ToolError("denied", `denied by policy: ${err.val.reason}${suffix}`, {
        reason: err.val.reason, policyIds: ids,
      });
    }
    case "not-found": return new ToolError("not-found", `tool not found: ${err.val}`);
    case "invalid-arguments": return new ToolError("invalid-arguments", `invalid arguments: ${err.val}`);
    case "upstream": {
      const { status, message } = err.val;
      const text = status === undefined || status === null
        ? `upstream failed: ${message}` : `upstream failed with status ${status}: ${message}`;
      return new ToolError("upstream", text, { status });
    }
    case "timeout": return new ToolError("timeout", `tool timed out: ${err.val}`);
    default: return new ToolError(err.tag, `tool limit exceeded: ${err.val}`);
  }
}

function memoryError(e) {
  const err = errorPayload(e);
  if (err && typeof err === "object" && "tag" in err) {
    return new MemoryAccessError(err.tag, typeof err.val === "string" ? err.val : "");
  }
  return new MemoryAccessError("internal", String(e));
}

const encoder = new TextEncoder();

/** Log levels by name, with the usual aliases. */
const LEVELS = { trace: "trace", debug: "debug", info: "info", warn: "warn", warning: "warn", error: "error" };
const decoder = new TextDecoder("utf-8", { fatal: true });

/** The real host: the `corral:agent` imports of the component. */
export const witHost = {
  converse(request) {
    try {
      return model.converse(request);
    } catch (e) {
      const err = errorPayload(e);
      throw new ModelError(err?.tag ?? "internal", err?.val ?? String(e));
    }
  },
  listTools() {
    try { return toolsApi.listTools(); } catch (e) { throw toolError(e); }
  },
  callTool(name, argumentsJson) {
    try { return toolsApi.callTool(name, argumentsJson); } catch (e) { throw toolError(e); }
  },
  log(level, message, fields) {
    const wit = LEVELS[level] ?? "info";
    try {
      logApi.write(wit, String(message), Object.entries(fields ?? {}).map(([key, value]) => ({ key, value: String(value) })));
    } catch (e) {
      // Over the log budget the host dropped and counted the line; anything
      // else is a bug worth seeing.
      if (!(e && typeof e === "object" && "payload" in e)) throw e;
    }
  },
  appendEvent(payload) {
    try { return memoryApi.appendEvent(payload); } catch (e) { throw memoryError(e); }
  },
  listEvents(maxResults) {
    try { return memoryApi.listEvents(maxResults); } catch (e) { throw memoryError(e); }
  },
  retrieveRecords(namespace, query, topK) {
    try { return memoryApi.retrieveRecords(namespace, query, topK); } catch (e) { throw memoryError(e); }
  },
  send(chunk) {
    try {
      streamApi.send(chunk);
    } catch (e) {
      if (!(e && typeof e === "object" && "payload" in e)) throw e;
      throw new StreamError(e.payload?.tag ?? "closed", e.payload?.val ?? "");
    }
  },
};

let host = witHost;

/** Routes host calls to `replacement` (`undefined` restores the real host). */
export function useHost(replacement) {
  host = replacement ?? witHost;
}

// ---------------------------------------------------------------- messages

/** A user message with one text block. */
export function userMessage(text) {
  return { role: "user", content: [{ tag: "text", val: text }] };
}

/** An assistant message with one text block. */
export function assistantMessage(text) {
  return { role: "assistant", content: [{ tag: "text", val: text }] };
}

/** The text blocks of a message joined with newlines. */
export function messageText(message) {
  return message.content.filter((b) => b.tag === "text").map((b) => b.val).join("\n");
}

/** True for a user message with text (a new turn, not tool results). */
export function isPrompt(message) {
  return message.role === "user" && message.content.some((b) => b.tag === "text");
}

// ---------------------------------------------------------------- tools, memory, log, stream

/** The session's tools (served by Corral's gateway, decided by Cedar policy). */
export const tools = {
  /** The tools this session may use. */
  list() { return host.listTools(); },
  /** Calls a tool; returns its result parsed from JSON (text if not JSON). Throws ToolError. */
  call(name, args = {}) {
    const output = host.callTool(name, JSON.stringify(args));
    try { return JSON.parse(output); } catch { return output; }
  },
};

/** Short- and long-term memory of the agent's memory resource, if attached. */
export const memory = {
  /** Appends an event of [role, text] turns (user, assistant, tool, other); returns its id. */
  appendEvent(turns, blobs = []) {
    const payload = turns.map(([role, text]) => ({ tag: "conversational", val: { role, text } }));
    for (const blob of blobs) payload.push({ tag: "blob", val: blob });
    return host.appendEvent(payload);
  },
  /** Records one turn; returns the event id, or undefined when no memory is attached. */
  rememberTurn(prompt, answer) {
    try {
      return memory.appendEvent([["user", prompt], ["assistant", answer]]);
    } catch (e) {
      if (!(e instanceof MemoryAccessError) || e.kind !== "not-configured") {
        log.warn(`could not record the turn in memory: ${e.message}`);
      }
      return undefined;
    }
  },
  /** The session's latest events, oldest first. */
  listEvents(maxResults = 20) { return host.listEvents(maxResults); },
  /** Long-term records of this actor at or below `namespace`, most relevant first. */
  retrieve(namespace, query, topK = 5) { return host.retrieveRecords(namespace, query, topK); },
};

/** Structured lines in the session log. */
export const log = {
  write(level, message, fields = {}) { host.log(level, message, fields); },
  debug(message, fields) { host.log("debug", message, fields); },
  info(message, fields) { host.log("info", message, fields); },
  warn(message, fields) { host.log("warn", message, fields); },
  error(message, fields) { host.log("error", message, fields); },
};

/** Encodes a chunk: Uint8Array as-is, string as UTF-8, anything else as one JSON line. */
function encodeChunk(chunk) {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === "string") return encoder.encode(chunk);
  return encoder.encode(JSON.stringify(chunk) + "\n");
}

/** Streams parts of the response before the invocation returns. Throws StreamError. */
export const stream = {
  send(chunk) { host.send(encodeChunk(chunk)); },
};

// ---------------------------------------------------------------- the tool loop

/**
 * The agent loop: ask the model, run the tools it requests, feed the results
 * back, until the model ends its turn or `maxSteps` (default 10) is reached.
 * Failed and denied tool calls go back to the model as error results.
 */
export class ToolLoop {
  constructor(system, options = {}) {
    this.system = [system];
    this.maxSteps = Math.max(1, options.maxSteps ?? 10);
    this.modelId = options.modelId;
    this.onlyTools = options.tools;
    this.useTools = options.useTools ?? true;
    this.historyLimit = options.historyLimit;
    this.inference = {
      maxTokens: options.maxTokens,
      temperature: options.temperature,
      topP: options.topP,
      stopSequences: options.stopSequences ?? [],
    };
  }

  /**
   * Appends `prompt` as a user message and runs the loop. When the run
   * fails, the turn is taken back out of `conversation`, so the next prompt
   * does not follow an unanswered one.
   */
  ask(conversation, prompt) {
    const before = conversation.length;
    conversation.push(userMessage(prompt));
    try {
      return this.run(conversation);
    } catch (e) {
      conversation.length = before;
      throw e;
    }
  }

  /** Runs the loop; `conversation` receives every new message. */
  run(conversation) {
    if (this.historyLimit) trimHistory(conversation, this.historyLimit);
    const specs = this.#toolSpecs();
    const outcome = {
      text: "", steps: 0, toolCalls: [], stop: "step-limit",
      usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 },
    };
    while (outcome.steps < this.maxSteps) {
      outcome.steps += 1;
      let reply;
      try {
        reply = host.converse({
          modelId: this.modelId,
          system: this.system,
          messages: conversation,
          tools: specs,
          inference: this.inference,
        });
      } catch (e) {
        throw new ModelFailed(e.message);
      }
      outcome.usage.inputTokens += reply.usage.inputTokens;
      outcome.usage.outputTokens += reply.usage.outputTokens;
      outcome.usage.totalTokens += reply.usage.totalTokens;
      const message = reply.output;
      outcome.text = messageText(message);
      conversation.push(message);
      const uses = message.content.filter((b) => b.tag === "tool-use").map((b) => b.val);
      if (reply.stopReason !== "tool-use" || uses.length === 0) {
        outcome.stop = reply.stopReason === "tool-use" ? "end-turn" : reply.stopReason;
        return outcome;
      }
      const results = [];
      const offered = new Set(specs.map((s) => s.name));
      for (const use of uses) {
        let output;
        try {
          // Only offered tools run, whatever name the model sends.
          if (!offered.has(use.name)) throw new ToolError("not-found", `tool not found: ${use.name}`);
          output = host.callTool(use.name, use.input);
        } catch (e) {
          const error = e instanceof ToolError ? e : new ToolError("upstream", String(e));
          host.log("warn", `tool ${use.name} failed: ${error.message}`, {});
          outcome.toolCalls.push({
            name: use.name, ok: false, denied: error.denied, error: error.message,
            reason: error.reason, policyIds: error.policyIds,
          });
          results.push(toolResult(use.toolUseId, error.message, false));
          continue;
        }
        host.log("debug", `tool ${use.name} succeeded`, {});
        outcome.toolCalls.push({ name: use.name, ok: true, denied: false });
        results.push(toolResult(use.toolUseId, output, true));
      }
      conversation.push({ role: "user", content: results });
    }
    host.log("warn", `tool loop stopped at its step limit of ${this.maxSteps}`, {});
    // The conversation ends with tool results; an assistant turn keeps user
    // and assistant messages alternating for the next prompt.
    conversation.push(assistantMessage(`(I stopped at my step limit of ${this.maxSteps} before finishing.)`));
    return outcome;
  }

  #toolSpecs() {
    if (!this.useTools) return [];
    let listed;
    try {
      listed = host.listTools();
    } catch (e) {
      throw new ToolFailed(`cannot list tools: ${e.message}`);
    }
    return listed
      .filter((t) => !this.onlyTools || this.onlyTools.includes(t.name))
      .map((t) => ({ name: t.name, description: t.description, inputSchema: t.inputSchema }));
  }
}

function toolResult(toolUseId, output, ok) {
  let isJson = false;
  if (ok) {
    try { JSON.parse(output); isJson = true; } catch { isJson = false; }
  }
  return {
    tag: "tool-result",
    val: {
      toolUseId,
      content: [{ tag: isJson ? "json" : "text", val: output }],
      status: ok ? "success" : "error",
    },
  };
}

/** Drops the oldest whole turns until at most `limit` messages remain. */
export function trimHistory(conversation, limit) {
  while (conversation.length > limit) {
    const start = conversation.findIndex((m, i) => i > 0 && isPrompt(m));
    if (start < 0) return;
    conversation.splice(0, start);
  }
}

// ---------------------------------------------------------------- the entry point

/** The user's prompt: the `prompt` (or `input`, `message`) field, or a string payload. */
export function promptOf(payload) {
  if (typeof payload === "string") return payload;
  if (payload && typeof payload === "object") {
    for (const key of ["prompt", "input", "message"]) {
      if (typeof payload[key] === "string") return payload[key];
    }
  }
  throw new InvalidInput('payload needs a string field "prompt"');
}

/** An explicit response body and MIME type. */
export class Response {
  constructor(payload, contentType = "application/octet-stream") {
    this.payload = payload instanceof Uint8Array ? payload : encoder.encode(String(payload));
    this.contentType = contentType;
  }
  static text(text) { return new Response(encoder.encode(text), "text/plain; charset=utf-8"); }
  static json(value) { return new Response(encoder.encode(JSON.stringify(value)), "application/json"); }
}

function decodePayload(bytes, contentType) {
  let text;
  try {
    text = decoder.decode(bytes);
  } catch {
    if (contentType.includes("json")) throw new InvalidInput("payload is not UTF-8 text");
    return bytes;
  }
  try {
    return JSON.parse(text);
  } catch {
    if (contentType.includes("json")) throw new InvalidInput("payload is not valid JSON");
    return text;
  }
}

function toResponse(result) {
  if (result instanceof Response) return result;
  if (typeof result === "string") return Response.text(result);
  if (result instanceof Uint8Array) return new Response(result);
  if (result && typeof result[Symbol.iterator] === "function" && typeof result.next === "function") {
    for (const chunk of result) stream.send(chunk);
    return new Response(new Uint8Array(0), "text/plain; charset=utf-8");
  }
  return Response.json(result ?? null);
}

/**
 * A Corral agent. Register the entry point with `agent.entrypoint(fn)` and
 * export `agent.handler()` as `handler`. The entry point gets the payload
 * (parsed JSON, else text) and a context { sessionId, actorId, requestId,
 * contentType, body }; it returns a value (sent as JSON), a string, a
 * Uint8Array, a Response, or a generator whose yields are streamed.
 * Throwing an AgentError fails the invocation with its kind; anything else
 * fails it as `internal` and is logged.
 */
export class Agent {
  #entry = undefined;

  /** Registers `fn` as the handler of every invocation; returns it. */
  entrypoint(fn) {
    if (typeof fn !== "function") throw new TypeError("entrypoint expects a function");
    this.#entry = fn;
    return fn;
  }

  /** Runs the entry point for one invocation (for tests); throws AgentError. */
  handle(invocation) {
    if (!this.#entry) throw new AgentError("no entry point registered; call agent.entrypoint(fn)");
    const context = {
      sessionId: invocation.sessionId,
      actorId: invocation.actorId,
      requestId: invocation.requestId,
      contentType: invocation.contentType,
      body: invocation.payload,
    };
    const payload = decodePayload(invocation.payload, invocation.contentType);
    try {
      return toResponse(this.#entry(payload, context));
    } catch (e) {
      if (e instanceof AgentError) throw e;
      const name = e?.name ?? "Error";
      log.error(`entry point threw ${name}: ${e?.message ?? e}`, { stack: String(e?.stack ?? "").slice(-4000) });
      throw new AgentError(`${name}: ${e?.message ?? e}`);
    }
  }

  /** The `corral:agent/handler` export: `export const handler = agent.handler();` */
  handler() {
    return {
      invoke: (invocation) => {
        try {
          const response = this.handle(invocation);
          return { payload: response.payload, contentType: response.contentType };
        } catch (e) {
          // A thrown plain object becomes the `agent-error` variant (a thrown
          // Error would trap the sandbox instead).
          const kind = AGENT_ERROR_CASES.includes(e?.kind) ? e.kind : "internal";
          throw { tag: kind, val: String(e?.message ?? e) };
        }
      },
    };
  }
}
