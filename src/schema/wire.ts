// Command replies: put binary buffers back at their key paths (inverse of interp_widget.schema.wire.pack),
// and turn static-page JSON (base64 `data`) into the same shapes the live widget receives.
import type { CommandEnvelope, ErrorInfo, ErrorReply, PatternReply } from "./generated";
import { toDataView } from "./tensor";

type Json = null | boolean | number | string | DataView | Json[] | { [key: string]: Json };

/** Put `buffers[i]` at `paths[i]` inside `obj` (in place); returns `obj`. */
export function putBuffers<T>(obj: T, paths: readonly (readonly (string | number)[])[], buffers: readonly DataView[]): T {
  if (paths.length !== buffers.length) {
    throw new Error(`${paths.length} buffer paths but ${buffers.length} buffers`);
  }
  paths.forEach((path, i) => {
    if (path.length === 0) throw new Error("a buffer cannot replace the whole message");
    let node = obj as unknown as Record<string | number, unknown>;
    for (const key of path.slice(0, -1)) {
      const next = node[key];
      if (next === null || typeof next !== "object") throw new Error(`bad buffer path ${JSON.stringify(path)}`);
      node = next as Record<string | number, unknown>;
    }
    node[path[path.length - 1]] = toDataView(buffers[i]);
  });
  return obj;
}

/** A command failed in the kernel: carries the Python exception's class name and message. */
export class CommandError extends Error {
  readonly typeName: string;
  constructor(info: ErrorInfo) {
    super(`${info.type_name}: ${info.message}`);
    this.name = "CommandError";
    this.typeName = info.type_name;
  }
}

/** Unpack an anywidget command response `[envelope, buffers]`; throws CommandError on `{ok: false}`. */
export function unpackReply(response: unknown, buffers: readonly DataView[]): PatternReply {
  if (response === null || typeof response !== "object" || !("reply" in response)) {
    throw new Error(`malformed command response: ${JSON.stringify(response)?.slice(0, 200)}`);
  }
  const env = response as CommandEnvelope;
  const reply = putBuffers(env.reply, env.buffer_paths, buffers);
  if (!reply.ok) throw new CommandError((reply as ErrorReply).error);
  return reply as PatternReply;
}

/** Static pages embed `data` as base64 text: decode every `{dtype, shape, data: string}` in place. */
export function decodeBase64Payloads<T>(obj: T): T {
  const visit = (node: Json): Json => {
    if (Array.isArray(node)) {
      for (let i = 0; i < node.length; i++) node[i] = visit(node[i]);
      return node;
    }
    if (node !== null && typeof node === "object" && !(node instanceof DataView)) {
      if (typeof node.dtype === "string" && Array.isArray(node.shape) && typeof node.data === "string") {
        node.data = toDataView(node.data);
        return node;
      }
      for (const key of Object.keys(node)) node[key] = visit(node[key]);
    }
    return node;
  };
  return visit(obj as unknown as Json) as unknown as T;
}
