// The panel's kernel client against a fake kernel connection: the comm handshake, a kernel without
// interp_widget (found by its beacon after the cell that imports it), typed replies and errors,
// buffers, pushes, restart, death and timeouts.
import type { Kernel } from "@jupyterlab/services";
import { Signal } from "@lumino/signaling";
import { afterEach, describe, expect, it } from "vitest";
import { panelTypes } from "../../scripts/panel-types.mjs";
import { KernelClient, PanelRequestError, TARGET } from "./client";
import type { EntrySummary, PanelEnvelope } from "./generated";

const ENTRY: EntrySummary = {
  id: "model-1", kind: "model", type_name: "Model", label: "tiny", detail: "2 layers", names: ["model"],
  model_name: "tiny", seq: 1,
};

function envelope(message: PanelEnvelope["message"], paths: (string | number)[][] = []): PanelEnvelope {
  return { message, buffer_paths: paths };
}

function entriesReply(id: string, entries: EntrySummary[]): PanelEnvelope {
  return envelope({ id, ok: true, type: "entries", protocol: 1, package_version: "0.1.0", version: 1, entries });
}

class FakeComm {
  onMsg: (msg: unknown) => void = () => undefined;
  onClose: (msg: unknown) => void = () => undefined;
  isDisposed = false;
  sent: Record<string, unknown>[] = [];
  constructor(readonly kernel: FakeKernel, readonly commId: string, readonly targetName: string) {}
  open(data: Record<string, unknown>) {
    this.kernel.received(this, data);
    return { done: Promise.resolve() };
  }
  send(data: Record<string, unknown>) {
    this.sent.push(data);
    this.kernel.received(this, data);
    return { done: Promise.resolve() };
  }
  close() {
    this.isDisposed = true;
    this.kernel.closed.push(this.commId);
  }
  /** the kernel sends a message on this comm */
  deliver(data: unknown, buffers: ArrayBuffer[] = []) {
    this.onMsg({ content: { comm_id: this.commId, data }, buffers });
  }
  /** the kernel closes this comm */
  kernelCloses() {
    this.isDisposed = true;
    this.onClose({ content: { comm_id: this.commId, data: {} } });
  }
}

type Answer = (comm: FakeComm, data: Record<string, unknown>) => void;

class FakeKernel {
  status: Kernel.Status = "idle";
  connectionStatus: Kernel.ConnectionStatus = "connected";
  isDisposed = false;
  readonly statusChanged = new Signal<this, Kernel.Status>(this);
  readonly connectionStatusChanged = new Signal<this, Kernel.ConnectionStatus>(this);
  readonly disposed = new Signal<this, void>(this);
  readonly iopubMessage = new Signal<this, unknown>(this);
  comms: FakeComm[] = [];
  commInfoRequests = 0;
  closed: string[] = [];
  /** false: the kernel has no comm target (interp_widget not imported) */
  imported = true;
  answer: Answer = (comm, data) => {
    if (data.type === "list") comm.deliver(entriesReply(String(data.id), [ENTRY]));
  };

  createComm(target: string): FakeComm {
    const c = new FakeComm(this, `c${this.comms.length + 1}`, target);
    this.comms.push(c);
    return c;
  }
  /** comm_info_request: the beacon is there once interp_widget is imported */
  async requestCommInfo(content: { target_name: string }) {
    this.commInfoRequests++;
    const comms = this.imported && content.target_name === TARGET ? { "interp-widget-panel-beacon-1": { target_name: TARGET } } : {};
    return { content: { status: "ok", comms } };
  }
  /** a cell finished running: the kernel goes idle after an execute_request */
  cellDone() {
    this.iopubMessage.emit({
      header: { msg_type: "status" }, parent_header: { msg_type: "execute_request" }, content: { execution_state: "idle" },
    });
  }
  received(comm: FakeComm, data: Record<string, unknown>) {
    queueMicrotask(() => {
      if (!this.imported) comm.kernelCloses();
      else this.answer(comm, data);
    });
  }
  setStatus(status: Kernel.Status) {
    this.status = status;
    this.statusChanged.emit(status);
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));

function client(kernel: FakeKernel): KernelClient {
  return new KernelClient(kernel as unknown as Kernel.IKernelConnection);
}

describe("KernelClient", () => {
  const clients: KernelClient[] = [];
  const make = (k: FakeKernel) => {
    const c = client(k);
    clients.push(c);
    return c;
  };
  afterEach(() => clients.splice(0).forEach((c) => c.dispose()));

  it("finds the beacon, connects and lists the entries", async () => {
    const k = new FakeKernel();
    const c = make(k);
    expect(c.state).toBe("connecting");
    await settle();
    expect(k.commInfoRequests).toBe(1);
    expect(c.state).toBe("connected");
    expect(c.entries).toEqual([ENTRY]);
    expect(c.packageVersion).toBe("0.1.0");
    expect(k.comms[0].targetName).toBe(TARGET);
  });

  it("says when interp_widget is not imported, without opening a comm, and connects after the cell that imports it", async () => {
    const k = new FakeKernel();
    k.imported = false;
    const c = make(k);
    await settle();
    expect(c.state).toBe("not-imported");
    expect(k.comms).toHaveLength(0); // asked with comm_info: no comm opened, nothing for the kernel to log
    await expect(c.request({ type: "list" })).rejects.toMatchObject({ typeName: "NotConnected" });
    k.cellDone(); // a cell that does not import it
    await settle();
    expect(c.state).toBe("not-imported");
    expect(k.commInfoRequests).toBe(2);
    k.imported = true;
    k.cellDone(); // `import interp_widget`
    await settle();
    await settle();
    expect(c.state).toBe("connected");
    expect(c.entries).toEqual([ENTRY]);
    expect(k.comms).toHaveLength(1);
    k.cellDone(); // connected: no more probing
    expect(k.commInfoRequests).toBe(3);
  });

  it("matches replies by id, raises typed errors and puts buffers back", async () => {
    const k = new FakeKernel();
    k.answer = (comm, data) => {
      if (data.type === "list") comm.deliver(entriesReply(String(data.id), []));
      else if (data.type === "snippet") {
        comm.deliver(envelope({ id: "someone-else", ok: true, type: "snippet", entry: "model-1", code: "x", description: "" }));
        comm.deliver(envelope({ id: String(data.id), ok: true, type: "snippet", entry: "model-1", code: "model", description: "d" }));
      } else if (data.type === "describe") {
        comm.deliver(envelope({ id: String(data.id), ok: false, type: "error",
          error: { type_name: "EntryNotFoundError", message: "no entry 'model-9'" } }));
      } else if (data.type === "render") {
        const bytes = new Float32Array([0.25, 0.75]).buffer;
        const message = {
          id: String(data.id), ok: true, type: "render", entry: "view-1",
          view: { kind: "static", document: { state: { payload: { dtype: "float32", shape: [2], data: null } } } },
        };
        comm.deliver(envelope(message as never, [["view", "document", "state", "payload", "data"]]), [bytes]);
      }
    };
    const c = make(k);
    await settle();
    const snippet = await c.request({ type: "snippet", entry: "model-1", target: { layer: 0, head: 1 } });
    expect(snippet.code).toBe("model");
    expect(k.comms[0].sent[0]).toMatchObject({ type: "snippet", entry: "model-1", target: { layer: 0, head: 1 } });
    const err = await c.request({ type: "describe", entry: "model-9" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PanelRequestError);
    expect(err).toMatchObject({ typeName: "EntryNotFoundError", message: "EntryNotFoundError: no entry 'model-9'" });
    const render = await c.request({ type: "render", entry: "view-1" });
    const data = (render.view as unknown as { document: { state: { payload: { data: DataView } } } }).document.state.payload.data;
    expect(data).toBeInstanceOf(DataView);
    expect(data.getFloat32(4, true)).toBe(0.75);
  });

  it("takes pushed updates and ignores malformed messages", async () => {
    const k = new FakeKernel();
    const c = make(k);
    await settle();
    const seen: EntrySummary[][] = [];
    c.entriesChanged.connect((_, e) => seen.push(e));
    const comm = k.comms[0];
    comm.deliver({ nonsense: true });
    comm.deliver(null);
    comm.deliver(envelope({ id: null, ok: true, type: "update", protocol: 1, package_version: "0.1.0", version: 3, entries: [] }));
    expect(seen).toEqual([[]]);
    expect(c.state).toBe("connected");
  });

  it("fails pending requests on restart and reconnects when the kernel is back", async () => {
    const k = new FakeKernel();
    const c = make(k);
    await settle();
    k.answer = (comm, data) => {
      if (data.type === "list") comm.deliver(entriesReply(String(data.id), [ENTRY]));
      // describe: never answered (a busy kernel)
    };
    const pending = c.request({ type: "describe", entry: "model-1" });
    k.setStatus("restarting");
    await expect(pending).rejects.toMatchObject({ typeName: "KernelRestarted" });
    expect(c.state).toBe("restarting");
    expect(c.entries).toEqual([]);
    k.imported = false; // a fresh kernel
    k.setStatus("idle");
    await settle();
    expect(c.state).toBe("not-imported");
    expect(k.comms).toHaveLength(1); // no second comm: the fresh kernel has no beacon
    k.imported = true;
    k.cellDone();
    await settle();
    await settle();
    expect(c.state).toBe("connected");
    expect(k.comms).toHaveLength(2);
    k.setStatus("dead");
    expect(c.state).toBe("dead");
  });

  it("times out when the kernel does not answer", async () => {
    const k = new FakeKernel();
    const c = make(k);
    await settle();
    k.answer = () => undefined;
    c.timeoutMs = 20;
    await expect(c.request({ type: "list" })).rejects.toMatchObject({ typeName: "Timeout" });
  });

  it("stops listening when disposed", async () => {
    const k = new FakeKernel();
    const c = client(k);
    await settle();
    c.dispose();
    expect(k.closed).toContain("c1");
    k.cellDone();
    expect(k.commInfoRequests).toBe(1);
    await expect(c.request({ type: "list" })).rejects.toMatchObject({ typeName: "Disposed" });
  });
});

describe("generated panel types", () => {
  it("match the JSON Schema of the pydantic messages (npm run gen:panel-types)", async () => {
    // node:fs through a computed specifier: this package's tsconfig has no Node types
    const specifier = "node:fs";
    const fs = (await import(specifier)) as { readFileSync(path: URL, encoding: "utf8"): string };
    const schema = fs.readFileSync(new URL("./wire-schema.json", import.meta.url), "utf8");
    expect(await panelTypes(schema)).toBe(fs.readFileSync(new URL("./generated.ts", import.meta.url), "utf8"));
  });
});
