// Calling a kernel command from any widget view: the reply's buffers are
// put back at their paths, `{ok: false}` becomes a CommandError, and a call gives up after `timeoutMs`.
import type { ErrorReply } from "../schema/generated";
import { CommandError, putBuffers } from "../schema/wire";
import type { Invoke } from "../attention/source";

export type { Invoke };

/** Unpack a command response `{reply, buffer_paths}`; throws CommandError for `{ok: false}`. */
export function unpackResponse<T>(response: unknown, buffers: readonly DataView[]): T {
  if (response === null || typeof response !== "object" || !("reply" in response) || !("buffer_paths" in response)) {
    throw new Error(`malformed command response: ${JSON.stringify(response)?.slice(0, 200)}`);
  }
  const env = response as { reply: { ok: boolean }; buffer_paths: (string | number)[][] };
  const reply = putBuffers(env.reply, env.buffer_paths, buffers);
  if (!reply.ok) throw new CommandError((reply as unknown as ErrorReply).error);
  return reply as unknown as T;
}

/** Call kernel command `name` and unpack its reply; gives up after `timeoutMs`. */
export async function callCommand<T>(invoke: Invoke, name: string, msg: unknown, timeoutMs = 60_000): Promise<T> {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(new Error(`no reply from the kernel to ${name} within ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    const [response, buffers] = await invoke<unknown>(name, msg, { signal: ctrl.signal });
    return unpackResponse<T>(response, buffers);
  } finally {
    clearTimeout(timer);
  }
}
