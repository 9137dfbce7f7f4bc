// One kernel, seen from the side panel: the comm to interp_widget's target, typed requests with
// replies matched by id, pushed entry updates, and the kernel's life (restart, death, no package).
//
// Finding interp_widget: importing it in a kernel registers the comm target "interp-widget-panel" and a
// *beacon* (a comm of that target that is never opened). The client asks the kernel which comms of
// that target exist (comm_info_request: no error logged, nothing sent to other front ends) when it
// meets a kernel, when the kernel is back from a restart, and after every cell while interp_widget
// is not there yet; once the beacon shows, it opens its own comm. Requests only ever go over the
// client's own comm, so several front ends on one kernel do not share a comm.
import type { Kernel, KernelMessage } from "@jupyterlab/services";
import { Signal, type ISignal } from "@lumino/signaling";
import { putBuffers } from "../../../src/schema/wire";
import { toDataView } from "../../../src/schema/tensor";
import type {
  DescribeReply,
  EntriesPush,
  EntriesReply,
  EntrySummary,
  PanelEnvelope,
  PanelError,
  PanelRequests,
  ReleaseReply,
  RenderReply,
  SnippetReply,
} from "./generated";

type Request = PanelRequests["request"];

export const TARGET = "interp-widget-panel";
export const PROTOCOL = 1;

export type ClientState =
  | "connecting" // opening a comm
  | "connected" // the kernel answers
  | "not-imported" // the kernel has no interp_widget (yet)
  | "restarting"
  | "dead"
  | "disconnected"; // the server lost the kernel's websocket

type Reply = EntriesReply | DescribeReply | RenderReply | SnippetReply | ReleaseReply;
type ReplyOf<T extends Request["type"]> = T extends "list" ? EntriesReply
  : T extends "describe" ? DescribeReply
  : T extends "render" ? RenderReply
  : T extends "snippet" ? SnippetReply
  : ReleaseReply;
/** A request without its id (the client numbers them). */
export type RequestBody = Request extends infer R ? (R extends Request ? Omit<R, "id"> : never) : never;

/** The kernel answered with a typed error (or could not answer). */
export class PanelRequestError extends Error {
  readonly typeName: string;
  constructor(typeName: string, message: string) {
    super(`${typeName}: ${message}`);
    this.name = "PanelRequestError";
    this.typeName = typeName;
  }
}

interface Pending {
  resolve: (reply: Reply) => void;
  reject: (err: Error) => void;
  timer: ReturnType<typeof setTimeout>;
}

let clientCounter = 0;

export class KernelClient {
  private comm: Kernel.IComm | null = null;
  private pending = new Map<string, Pending>();
  private seq = 0;
  private readonly prefix: string;
  private _state: ClientState = "connecting";
  private _entries: EntrySummary[] = [];
  private _version = "";
  private _disposed = false;
  private probing = false;
  private readonly _stateChanged = new Signal<this, ClientState>(this);
  private readonly _entriesChanged = new Signal<this, EntrySummary[]>(this);
  /** milliseconds a request may wait for its reply (a kernel busy with a cell answers afterwards) */
  timeoutMs = 60_000;

  constructor(readonly kernel: Kernel.IKernelConnection) {
    this.prefix = `p${++clientCounter}-${Math.random().toString(36).slice(2, 8)}`;
    kernel.statusChanged.connect(this.onStatus, this);
    kernel.iopubMessage.connect(this.onIOPub, this);
    kernel.connectionStatusChanged.connect(this.onConnection, this);
    kernel.disposed.connect(() => this.dispose());
    this.onStatus(kernel, kernel.status);
  }

  get state(): ClientState {
    return this._state;
  }
  get entries(): readonly EntrySummary[] {
    return this._entries;
  }
  /** interp_widget's version in the kernel (empty until connected) */
  get packageVersion(): string {
    return this._version;
  }
  get stateChanged(): ISignal<this, ClientState> {
    return this._stateChanged;
  }
  get entriesChanged(): ISignal<this, EntrySummary[]> {
    return this._entriesChanged;
  }
  get isDisposed(): boolean {
    return this._disposed;
  }
  /** the id of the panel's comm (the kernel keys the widgets it made for the panel by it) */
  get commId(): string | null {
    return this.comm?.commId ?? null;
  }

  /** Send a request; resolves with the typed reply, rejects with PanelRequestError. */
  request<B extends RequestBody>(body: B): Promise<ReplyOf<B["type"]>> {
    if (this._disposed) return Promise.reject(new PanelRequestError("Disposed", "the panel stopped watching this kernel"));
    const comm = this.comm;
    if (!comm || comm.isDisposed || this._state !== "connected") {
      return Promise.reject(new PanelRequestError("NotConnected", this.describeState()));
    }
    const id = `${this.prefix}-${++this.seq}`;
    const promise = this.expect(id);
    try {
      comm.send({ ...body, id } as unknown as KernelMessage.ICommMsgMsg["content"]["data"]);
    } catch (err) {
      this.settle(id, null, new PanelRequestError("SendError", String(err)));
    }
    return promise as Promise<ReplyOf<B["type"]>>;
  }

  /** Ask the kernel whether interp_widget is there (its beacon); connect if so. */
  async probe(): Promise<void> {
    if (this._disposed || this.kernel.isDisposed || this.probing) return;
    const status = this.kernel.status;
    if (status === "dead" || status === "restarting" || status === "autorestarting") return;
    this.probing = true;
    try {
      const reply = await this.kernel.requestCommInfo({ target_name: TARGET });
      const content = reply.content;
      const found = content.status === "ok"
        && Object.values(content.comms).some((c) => c.target_name === TARGET);
      if (this._disposed || this.comm) return;
      if (found) this.connect();
      else this.setState("not-imported");
    } catch (err) {
      if (!this._disposed && !this.comm && this._state === "connecting") this.setState("not-imported");
      console.debug("interp-widget: comm_info_request failed", err);
    } finally {
      this.probing = false;
    }
  }

  /** Open the panel's comm (again); the kernel answers with its entries (or closes it: no interp_widget). */
  connect(): void {
    if (this._disposed || this.kernel.isDisposed) return;
    const status = this.kernel.status;
    if (status === "dead" || status === "restarting" || status === "autorestarting") return;
    this.dropComm();
    this.setState("connecting");
    let comm: Kernel.IComm;
    try {
      comm = this.kernel.createComm(TARGET);
    } catch (err) {
      console.warn("interp-widget: could not open a comm", err);
      this.setState("not-imported");
      return;
    }
    this.comm = comm;
    comm.onMsg = (msg) => this.onMessage(msg);
    comm.onClose = () => {
      if (this.comm !== comm) return;
      this.comm = null;
      this.failPending("Closed", "the kernel closed the panel's comm");
      if (this._state === "connecting" || this._state === "connected") this.setState("not-imported");
    };
    const id = `${this.prefix}-${++this.seq}`;
    this.expect(id)
      .then((reply) => {
        if (this.comm !== comm) return;
        const list = reply as EntriesReply;
        this.setEntries(list.entries, list.package_version);
        this.setState("connected");
      })
      .catch(() => undefined); // onClose / a timeout already set the state
    try {
      comm.open({ id, type: "list" });
    } catch (err) {
      this.settle(id, null, new PanelRequestError("SendError", String(err)));
      this.setState("not-imported");
    }
  }

  /** Ask for the entries again. */
  async refresh(): Promise<void> {
    if (this._state !== "connected") {
      await this.probe();
      return;
    }
    const reply = await this.request({ type: "list" });
    this.setEntries(reply.entries, reply.package_version);
  }

  describeState(): string {
    switch (this._state) {
      case "connecting": return "connecting to the kernel…";
      case "connected": return "connected";
      case "not-imported": return "interp_widget is not imported in this kernel";
      case "restarting": return "the kernel is restarting";
      case "dead": return "the kernel is dead";
      case "disconnected": return "the connection to the kernel is lost";
    }
  }

  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    this.failPending("Disposed", "the panel stopped watching this kernel");
    if (!this.kernel.isDisposed) {
      this.kernel.statusChanged.disconnect(this.onStatus, this);
      this.kernel.iopubMessage.disconnect(this.onIOPub, this);
      this.kernel.connectionStatusChanged.disconnect(this.onConnection, this);
      this.dropComm();
    }
    this.comm = null;
    Signal.clearData(this);
  }

  // --- kernel life -------------------------------------------------------------------------
  private onStatus(_: unknown, status: Kernel.Status): void {
    if (this._disposed) return;
    if (status === "restarting" || status === "autorestarting") {
      this.comm = null; // the kernel connection disposes its comms on restart
      this.failPending("KernelRestarted", "the kernel restarted");
      this.setEntries([], "");
      this.setState("restarting");
    } else if (status === "dead") {
      this.comm = null;
      this.failPending("KernelDead", "the kernel died");
      this.setEntries([], "");
      this.setState("dead");
    } else if ((status === "idle" || status === "busy") && !this.comm
      && this.kernel.connectionStatus === "connected"
      && ["restarting", "dead", "disconnected", "connecting"].includes(this._state)) {
      void this.probe();
    }
  }

  private onConnection(_: unknown, status: Kernel.ConnectionStatus): void {
    if (this._disposed) return;
    if (status === "disconnected") {
      this.comm = null;
      this.failPending("Disconnected", "the connection to the kernel was lost");
      this.setState("disconnected");
    } else if (status === "connected" && !this.comm) {
      this.onStatus(this.kernel, this.kernel.status);
    }
  }

  /** A cell finished (in any front end): interp_widget may have been imported by it. */
  private onIOPub(_: unknown, msg: KernelMessage.IIOPubMessage): void {
    if (this._disposed || this._state !== "not-imported" || msg.header.msg_type !== "status") return;
    const parent = msg.parent_header as Partial<KernelMessage.IHeader>;
    if ((msg.content as { execution_state?: string }).execution_state === "idle" && parent.msg_type === "execute_request") {
      void this.probe();
    }
  }

  // --- messages ---------------------------------------------------------------------------------
  private onMessage(msg: KernelMessage.ICommMsgMsg): void {
    const message = this.unpack(msg.content.data, msg.buffers);
    if (!message) return;
    if (message.type === "update") {
      this.setEntries(message.entries, message.package_version);
      return;
    }
    if (message.id === null || message.id === undefined) return;
    if (message.type === "error") {
      const err = (message as PanelError).error;
      this.settle(message.id, null, new PanelRequestError(err.type_name, err.message));
    } else {
      this.settle(message.id, message as Reply, null);
    }
  }

  private unpack(data: unknown, buffers: KernelMessage.IMessage["buffers"]): PanelEnvelope["message"] | null {
    try {
      const env = data as PanelEnvelope;
      if (!env || typeof env !== "object" || !env.message || !Array.isArray(env.buffer_paths)) {
        console.warn("interp-widget: ignoring a malformed panel message", data);
        return null;
      }
      const views = (buffers ?? []).map((b) => toDataView(b as ArrayBuffer | ArrayBufferView));
      return putBuffers(env.message, env.buffer_paths, views);
    } catch (err) {
      console.warn("interp-widget: ignoring a panel message", err);
      return null;
    }
  }

  private expect(id: string): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.settle(id, null, new PanelRequestError("Timeout",
          `no reply within ${Math.round(this.timeoutMs / 1000)} s (is the kernel busy running a cell?)`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  private settle(id: string, reply: Reply | null, err: Error | null): void {
    const p = this.pending.get(id);
    if (!p) return; // another front end's request, or too late
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve(reply as Reply);
  }

  private failPending(typeName: string, message: string): void {
    for (const id of Array.from(this.pending.keys())) this.settle(id, null, new PanelRequestError(typeName, message));
  }

  private dropComm(): void {
    const comm = this.comm;
    this.comm = null;
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        /* the kernel is gone */
      }
    }
  }

  private setState(state: ClientState): void {
    if (state === this._state) return;
    this._state = state;
    if (state !== "connected" && state !== "connecting") this.setEntries([], this._version);
    this._stateChanged.emit(state);
  }

  private setEntries(entries: EntrySummary[], version: string): void {
    this._version = version;
    const same = entries.length === this._entries.length
      && JSON.stringify(entries) === JSON.stringify(this._entries);
    this._entries = entries;
    if (!same) this._entriesChanged.emit(entries);
  }
}

export type { EntriesPush };
