"""The side panel's server in a kernel: the comm wiring (fake comm manager and shell: the beacon,
replies, pushes after cells, throttling, garbage, release on close), the import staying cheap and
inert outside a kernel, the wire schema's committed copy, and a real ipykernel answering over a comm."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import interp_widget as iw
from interp_widget.schema import unpack
from interp_widget.server.kernel import TARGET, KernelServer
from interp_widget.server.messages import wire_schema
from interp_widget.server.registry import Registry

pytestmark = pytest.mark.filterwarnings("ignore:HookedTransformer is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def attn_model() -> iw.Model:
    from transformer_lens import HookedTransformer, HookedTransformerConfig

    from interp_widget.zoo.tokenizer import build_tokenizer

    cfg = HookedTransformerConfig(n_layers=2, d_model=16, n_heads=4, d_head=4, n_ctx=48, d_vocab=72, attn_only=True,
                                  act_fn=None, seed=0, normalization_type="LN")
    ht = HookedTransformer(cfg)
    ht.set_tokenizer(build_tokenizer())
    return iw.load(ht.eval(), name="tiny-attn")


class Thing:
    pass


# --- the comm wiring (fake comm and shell) ---------------------------------------------------------------
class FakeComm:
    counter = 0

    def __init__(self, target_name: str = TARGET, data: Any = None, buffers: Any = None) -> None:
        FakeComm.counter += 1
        self.comm_id = f"comm-{FakeComm.counter}"
        self.target_name = target_name
        self.sent: list[tuple[Any, list[bytes]]] = []
        self.opened_with = (data, buffers)
        self.primary = True
        self._on_msg: Any = None
        self._on_close: Any = None

    def send(self, data: Any = None, buffers: Any = None) -> None:
        self.sent.append((data, list(buffers or [])))

    def on_msg(self, fn: Any) -> None:
        self._on_msg = fn

    def on_close(self, fn: Any) -> None:
        self._on_close = fn

    def close(self) -> None:
        if self._on_close:
            self._on_close({})

    def messages(self) -> list[dict[str, Any]]:
        return [unpack(d["message"], d["buffer_paths"], b) for d, b in self.sent]


class FakeCommModule:
    def __init__(self) -> None:
        self.targets: dict[str, Any] = {}
        self.created: list[FakeComm] = []
        self.comms: dict[str, FakeComm] = {}  # what the kernel's comm_info_request lists

    def get_comm_manager(self) -> Any:
        return self

    def register_target(self, name: str, fn: Any) -> None:
        self.targets[name] = fn

    def unregister_target(self, name: str, fn: Any) -> None:
        self.targets.pop(name, None)

    def create_comm(self, target_name: str, data: Any = None, buffers: Any = None, comm_id: str = "",
                    primary: bool = True) -> FakeComm:
        c = FakeComm(target_name, data, buffers)
        c.primary = primary
        self.created.append(c)
        return c

    def register_comm(self, c: FakeComm) -> None:
        self.comms[c.comm_id] = c

    def unregister_comm(self, c: FakeComm) -> None:
        self.comms.pop(c.comm_id)


class FakeShell:
    def __init__(self) -> None:
        self.user_ns: dict[str, Any] = {}
        self.events = self
        self.callbacks: dict[str, list[Any]] = {}

    def register(self, event: str, fn: Any) -> None:
        self.callbacks.setdefault(event, []).append(fn)

    def unregister(self, event: str, fn: Any) -> None:
        self.callbacks[event].remove(fn)

    def run_cell(self, fn: Any) -> None:
        fn(self.user_ns)
        for cb in self.callbacks.get("post_run_cell", []):
            cb(None)


@pytest.fixture
def kernel() -> Any:
    reg = Registry()
    shell, comms = FakeShell(), FakeCommModule()
    ks = KernelServer(shell, registry=reg, comm_module=comms)
    ks.start()
    yield ks, shell, comms, reg
    ks.stop()


def test_kernel_server_has_a_beacon_answers_and_pushes(kernel: Any, attn_model: iw.Model) -> None:
    _ks, shell, comms, _reg = kernel
    assert TARGET in comms.targets
    # the beacon: registered with the comm manager (comm_info lists it), never opened (nothing sent anywhere)
    beacon = comms.created[0]
    assert beacon.primary is False and beacon.target_name == TARGET and beacon.sent == []
    assert list(comms.comms.values()) == [beacon]
    # the panel opens its own comm with a request: answered on that comm
    panel = FakeComm()
    comms.targets[TARGET](panel, {"content": {"data": {"id": "hello", "type": "list"}}, "buffers": []})
    assert [m["type"] for m in panel.messages()] == ["entries"]
    # a cell binds a model: the panel gets one update after the cell, naming the variable
    shell.run_cell(lambda ns: ns.update(m=attn_model))
    update = panel.messages()[-1]
    assert update["type"] == "update" and update["id"] is None
    assert [(e["kind"], e["names"]) for e in update["entries"]] == [("model", ["m"])]
    assert beacon.sent == []
    n = len(panel.sent)
    shell.run_cell(lambda ns: None)  # nothing changed: nothing sent
    assert len(panel.sent) == n
    shell.run_cell(lambda ns: ns.update(m2=ns["m"]))  # a new name is news
    assert panel.messages()[-1]["entries"][0]["names"] == ["m", "m2"]


def test_kernel_server_survives_garbage_and_releases_on_close(kernel: Any, attn_model: iw.Model) -> None:
    ks, shell, comms, reg = kernel
    panel = FakeComm()
    comms.targets[TARGET](panel, {"content": {"data": None}})
    assert panel.messages()[-1]["type"] == "update"
    for junk in (None, {}, {"content": None}, {"content": {"data": 3}}, {"content": {"data": {"id": "z", "type": "?"}}},
                 "garbage", {"content": {"data": {"id": "y", "type": "describe", "entry": "view-77"}}}):
        panel._on_msg(junk)
    replies = panel.messages()[1:]
    assert len(replies) == 7 and all(r["ok"] is False and r["type"] == "error" for r in replies)
    assert [r["id"] for r in replies] == [None, None, None, None, "z", None, "y"]
    # a widget made for this panel is closed when the panel's comm closes
    shell.run_cell(lambda ns: ns.update(m=attn_model))
    eid = reg.entries()[0].id
    panel._on_msg({"content": {"data": {"id": "r", "type": "render", "entry": eid, "text": "abcabc"}}})
    view = panel.messages()[-1]["view"]
    from ipywidgets.widgets.widget import _instances

    w = _instances[view["model_id"]]
    panel.close()
    assert w.comm is None and view["model_id"] not in _instances
    assert panel.comm_id not in ks.comms


def test_push_during_a_cell_is_throttled(kernel: Any) -> None:
    ks, shell, comms, reg = kernel
    panel = FakeComm()
    comms.targets[TARGET](panel, {"content": {"data": None}})
    keep = [Thing() for _ in range(50)]
    ks._last_push = 0.0
    for t in keep:
        reg.track(t, "result")  # 50 registrations in a burst
    during = len(panel.sent) - 1
    assert 1 <= during <= 2, during  # the first one went out at once, the rest wait for the end of the cell
    shell.run_cell(lambda ns: None)
    assert len(panel.messages()[-1]["entries"]) == 50


# --- the facade and a real kernel --------------------------------------------------------------------------
def test_import_stays_cheap_and_inert_outside_a_kernel() -> None:
    code = ("import sys, interp_widget, interp_widget.server as s; "
            "print(sorted(m for m in ('torch', 'pydantic', 'numpy', 'comm', 'IPython') if m in sys.modules), "
            "s.serve_in_kernel())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] None"


def test_wire_schema_covers_every_message_and_matches_the_panels_copy() -> None:
    schema = wire_schema()
    committed = Path(__file__).resolve().parents[1] / "labextension" / "src" / "panel" / "wire-schema.json"
    assert committed.read_text() == json.dumps(schema, indent=2) + "\n", (
        "labextension/src/panel/wire-schema.json is out of date: run `npm run gen:panel-types`")
    defs = set(schema["$defs"])
    for name in ("ListRequest", "DescribeRequest", "RenderRequest", "SnippetRequest", "ReleaseRequest", "EntriesReply",
                 "EntriesPush", "DescribeReply", "RenderReply", "SnippetReply", "ReleaseReply", "PanelError",
                 "ModelDetails", "ViewDetails", "ResultDetails", "TraceDetails", "WidgetView", "StaticView", "MimeView"):
        assert name in defs, name
    json.dumps(schema)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_real_kernel_answers_over_the_comm_and_stays_alive() -> None:
    """An ipykernel: ``import interp_widget`` registers the target; good and malformed requests are answered;
    a cell that makes a model is pushed to the panel, and so is its deletion."""
    from jupyter_client.manager import start_new_kernel

    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    km, kc = start_new_kernel(kernel_name="python3", env=env)
    comm_id = "panel-test-1"
    got: list[dict[str, Any]] = []

    opened: list[dict[str, Any]] = []

    def collect(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "comm_msg" and msg["content"]["comm_id"] == comm_id:
            got.append(msg["content"]["data"]["message"])
        if msg["msg_type"] == "comm_open":
            opened.append(msg["content"])

    def execute(code: str) -> dict[str, Any]:
        return kc.execute_interactive(code, timeout=60, output_hook=collect)["content"]

    def comm_info() -> dict[str, Any]:
        msg_id = kc.comm_info(target_name=TARGET)
        while True:
            reply = kc.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                return dict(reply["content"]["comms"])

    try:
        assert comm_info() == {}  # no interp_widget: nothing of the panel's target
        assert execute("import interp_widget as iw")["status"] == "ok"
        assert opened == []  # importing sends nothing to the front end...
        assert list(comm_info().values()) == [{"target_name": TARGET}]  # ... but the beacon answers comm_info
        kc.shell_channel.send(kc.session.msg("comm_open", {"comm_id": comm_id, "target_name": TARGET,
                                                           "data": {"id": "l1", "type": "list"}}))
        requests: list[Any] = [{"id": "d1", "type": "describe", "entry": "model-1"}, None, {"id": "u", "type": "nope"},
                               {"id": "v", "type": "render", "entry": "view-1", "mode": "3d"}, "text", {"id": ["x"]}]
        for data in requests:
            kc.shell_channel.send(kc.session.msg("comm_msg", {"comm_id": comm_id, "data": data}))
        while len(got) < 1 + len(requests):
            collect(kc.get_iopub_msg(timeout=30))
        assert got[0]["type"] == "entries" and got[0]["id"] == "l1"
        assert [(g["id"], g["type"], g["error"]["type_name"]) for g in got[1:]] == [
            ("d1", "error", "EntryNotFoundError"), (None, "error", "RequestError"), ("u", "error", "RequestError"),
            ("v", "error", "ValidationError"), (None, "error", "RequestError"), (None, "error", "RequestError")]
        assert execute("1 + 1")["status"] == "ok"  # the kernel is alive and well
        assert km.is_alive()

        got.clear()
        code = ("from types import SimpleNamespace\nfrom interp_widget.tracing.base import ModelSpec\n"
                "m = iw.Model(SimpleNamespace(spec=ModelSpec('fake', 3, 2, 8, 4, 16, 10)), name='fake')")
        assert execute(code)["status"] == "ok"
        updates = [g for g in got if g["type"] == "update"]
        assert updates, got
        assert [(e["kind"], e["label"], e["names"]) for e in updates[-1]["entries"]] == [("model", "fake", ["m"])]
        got.clear()
        assert execute("del m")["status"] == "ok"
        assert [g["entries"] for g in got if g["type"] == "update"] == [[]]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
