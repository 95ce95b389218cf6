// Module hooks for the SDK's tests on plain Node: every `corral:agent/*`
// import resolves to a stub whose functions call `globalThis.corralImports`,
// so a test decides what the host's imports do.
export async function resolve(specifier, context, next) {
  if (specifier.startsWith("corral:agent/")) {
    return { url: `corral-stub:${specifier.slice("corral:agent/".length).split("@")[0]}`, shortCircuit: true };
  }
  return next(specifier, context);
}

const FUNCTIONS = {
  model: ["converse"],
  tools: ["listTools", "callTool"],
  memory: ["appendEvent", "listEvents", "retrieveRecords"],
  log: ["write"],
  "response-stream": ["send"],
};

export async function load(url, context, next) {
  if (url.startsWith("corral-stub:")) {
    const iface = url.slice("corral-stub:".length);
    const source = (FUNCTIONS[iface] ?? [])
      .map((f) => `export function ${f}(...args) { return globalThis.corralImports["${iface}.${f}"](...args); }`)
      .join("\n");
    return { format: "module", source, shortCircuit: true };
  }
  return next(url, context);
}
