// Types of the Corral agent SDK for JavaScript/TypeScript (corral:agent@0.2.0).

/** The `agent-error` cases an invocation can fail with. */
export type AgentErrorKind = "invalid-input" | "model-failed" | "tool-failed" | "limit-exceeded" | "internal";

/** Base of the errors that fail an invocation. */
export class AgentError extends Error {
  constructor(message: string, kind?: AgentErrorKind);
  readonly kind: AgentErrorKind;
}
export class InvalidInput extends AgentError { constructor(message: string); }
export class ModelFailed extends AgentError { constructor(message: string); }
export class ToolFailed extends AgentError { constructor(message: string); }
export class LimitExceeded extends AgentError { constructor(message: string); }

/** A failed tool call. */
export class ToolError extends Error {
  constructor(
    kind: ToolError["kind"],
    message: string,
    detail?: { reason?: string; policyIds?: string[]; status?: number },
  );
  readonly kind: "not-found" | "denied" | "invalid-arguments" | "upstream" | "timeout" | "limit-exceeded";
  /** For `denied`: the reason. */
  readonly reason?: string;
  /** For `denied`: ids of the deciding policies. */
  readonly policyIds: string[];
  /** For `upstream`: the upstream's status. */
  readonly status?: number;
  /** Whether a policy denied the call. */
  readonly denied: boolean;
}

/** A failed model call. */
export class ModelError extends Error {
  constructor(kind: ModelError["kind"], message: string);
  readonly kind: "throttled" | "validation" | "unavailable" | "timeout" | "limit-exceeded" | "internal";
  readonly retryable: boolean;
}

/** A failed memory operation (`not-configured` when no memory is attached). */
export class MemoryAccessError extends Error {
  constructor(kind: MemoryAccessError["kind"], message?: string);
  readonly kind: "not-configured" | "validation" | "not-found" | "throttled" | "denied" | "limit-exceeded" | "internal";
}

/** The caller left (`closed`) or the response would be too large (`limit-exceeded`). */
export class StreamError extends Error {
  constructor(kind: StreamError["kind"], message?: string);
  readonly kind: "closed" | "limit-exceeded";
}

export type Role = "user" | "assistant";
export interface ToolUse { toolUseId: string; name: string; /** JSON object as text. */ input: string; }
export type ToolResultContent = { tag: "text"; val: string } | { tag: "json"; val: string };
export interface ToolResult { toolUseId: string; content: ToolResultContent[]; status: "success" | "error"; }
export type ContentBlock =
  | { tag: "text"; val: string }
  | { tag: "tool-use"; val: ToolUse }
  | { tag: "tool-result"; val: ToolResult };
export interface Message { role: Role; content: ContentBlock[]; }
export interface ToolInfo { name: string; description: string; /** JSON Schema as text. */ inputSchema: string; }
export interface Usage { inputTokens: number; outputTokens: number; totalTokens: number; }
export type StopReason =
  | "end-turn" | "tool-use" | "max-tokens" | "stop-sequence" | "guardrail-intervened"
  | "content-filtered" | "malformed-model-output" | "malformed-tool-use" | "context-window-exceeded";
export interface ConverseRequest {
  modelId?: string;
  system: string[];
  messages: Message[];
  tools: { name: string; description: string; inputSchema: string }[];
  inference: { maxTokens?: number; temperature?: number; topP?: number; stopSequences: string[] };
}
export interface ConverseResponse { output: Message; stopReason: StopReason; usage: Usage; }
export type PayloadItem =
  | { tag: "conversational"; val: { role: "user" | "assistant" | "tool" | "other"; text: string } }
  | { tag: "blob"; val: string };
export interface MemoryEvent { eventId: string; sessionId: string; actorId: string; timestampMs: bigint; payload: PayloadItem[]; }
export interface MemoryRecord { recordId: string; content: string; namespaces: string[]; strategyId?: string; score: number; }

/** What an agent can ask of its host (swap it with `useHost` in tests). */
export interface Host {
  converse(request: ConverseRequest): ConverseResponse;
  listTools(): ToolInfo[];
  callTool(name: string, argumentsJson: string): string;
  log(level: "trace" | "debug" | "info" | "warn" | "error", message: string, fields: Record<string, unknown>): void;
  appendEvent(payload: PayloadItem[]): string;
  listEvents(maxResults: number): MemoryEvent[];
  retrieveRecords(namespace: string, query: string, topK: number): MemoryRecord[];
  send(chunk: Uint8Array): void;
}
export const witHost: Host;
/** Routes host calls to `host` (`undefined` restores the real host). */
export function useHost(host?: Host): void;

export function userMessage(text: string): Message;
export function assistantMessage(text: string): Message;
export function messageText(message: Message): string;
export function isPrompt(message: Message): boolean;
export function trimHistory(conversation: Message[], limit: number): void;

export const tools: {
  list(): ToolInfo[];
  /** Calls a tool; returns its JSON result parsed. Throws ToolError. */
  call(name: string, args?: Record<string, unknown>): unknown;
};
export const memory: {
  appendEvent(turns: [string, string][], blobs?: string[]): string;
  rememberTurn(prompt: string, answer: string): string | undefined;
  listEvents(maxResults?: number): MemoryEvent[];
  retrieve(namespace: string, query: string, topK?: number): MemoryRecord[];
};
type Fields = Record<string, unknown>;
export const log: {
  write(level: "trace" | "debug" | "info" | "warn" | "error", message: string, fields?: Fields): void;
  debug(message: string, fields?: Fields): void;
  info(message: string, fields?: Fields): void;
  warn(message: string, fields?: Fields): void;
  error(message: string, fields?: Fields): void;
};
export const stream: { send(chunk: Uint8Array | string | unknown): void };

export interface ToolCall {
  name: string;
  ok: boolean;
  /** Whether a policy denied the call (the tool never ran). */
  denied: boolean;
  /** The failure's explanation. */
  error?: string;
  /** For a denial: the reason and the deciding policies. */
  reason?: string;
  policyIds?: string[];
}
export interface LoopOutcome {
  text: string;
  steps: number;
  toolCalls: ToolCall[];
  stop: "end-turn" | "step-limit" | StopReason;
  usage: Usage;
}
export interface ToolLoopOptions {
  /** At most this many model calls per run (default 10). */
  maxSteps?: number;
  modelId?: string;
  /** Offer only these tools. */
  tools?: string[];
  /** Offer no tools when false. */
  useTools?: boolean;
  /** Keep about this many messages of history, dropping whole old turns. */
  historyLimit?: number;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stopSequences?: string[];
}
export class ToolLoop {
  constructor(system: string, options?: ToolLoopOptions);
  ask(conversation: Message[], prompt: string): LoopOutcome;
  run(conversation: Message[]): LoopOutcome;
}

export function promptOf(payload: unknown): string;

export class Response {
  constructor(payload: Uint8Array | string, contentType?: string);
  readonly payload: Uint8Array;
  readonly contentType: string;
  static text(text: string): Response;
  static json(value: unknown): Response;
}

export interface Context {
  sessionId: string;
  actorId: string;
  requestId: string;
  contentType: string;
  body: Uint8Array;
}
export interface Invocation { sessionId: string; actorId: string; requestId: string; payload: Uint8Array; contentType: string; }
export type EntryResult = unknown | string | Uint8Array | Response | Generator<unknown>;
export class Agent {
  entrypoint<F extends (payload: any, context: Context) => EntryResult>(fn: F): F;
  handle(invocation: Invocation): Response;
  handler(): { invoke(invocation: Invocation): { payload: Uint8Array; contentType: string } };
}
