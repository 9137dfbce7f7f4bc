"""The feature dashboard and the steering widget, kernel side: commands and their replies (errors too),
synced state against the schema, progress and cancel, and the static snapshot."""

from __future__ import annotations

import threading
from typing import Any

import _tiny_models as tiny
import numpy as np
import pytest
import torch

from interp_widget.errors import InputMismatchError, SiteIndexError
from interp_widget.models.model import Model
from interp_widget.schema import decode, unpack
from interp_widget.schema.features import FeaturesEnvelope, FeaturesState, SteeringEnvelope, SteeringState
from interp_widget.widgets.features import FeatureDashboard, feature_dashboard
from interp_widget.widgets.steering import SteeringWidget, result_mimebundle, steering_widget

SITE = "blocks.1.mlp.hook_post"
D_MLP = 4 * tiny.D_MODEL


@pytest.fixture(scope="module")
def sae() -> Any:
    from sae_lens import StandardSAE, StandardSAEConfig

    g = torch.Generator().manual_seed(1)
    s = StandardSAE(StandardSAEConfig(d_in=D_MLP, d_sae=8))
    with torch.no_grad():
        s.W_enc.copy_(torch.randn(D_MLP, 8, generator=g) * 0.2)
        s.b_enc.copy_(torch.rand(8, generator=g) * 0.2)
        s.W_dec.copy_(torch.randn(8, D_MLP, generator=g) * 0.2)
    s.cfg.metadata.hook_name = SITE
    return s


@pytest.fixture(scope="module")
def dash(tl: Model, sae: Any) -> FeatureDashboard:
    return feature_dashboard(tl, sae, [tiny.text(8, seed=i) for i in range(6)], k=3, kind="neuron", index=2,
                             prompt="a b c")


def _reply(out: tuple[dict[str, Any], list[bytes]], envelope: Any) -> dict[str, Any]:
    import copy

    response, buffers = out
    assert len(buffers) == len(response["buffer_paths"])
    reply = unpack(copy.deepcopy(response["reply"]), response["buffer_paths"], buffers)
    envelope.model_validate({"reply": reply, "buffer_paths": response["buffer_paths"]})
    return reply  # type: ignore[no-any-return]


def test_dashboard_state_and_select(dash: FeatureDashboard) -> None:
    FeaturesState.model_validate(dash.state_model().model_dump())
    assert (dash.kind, dash.index) == ("neuron", 2)
    assert dash.prompt_acts is not None and dash.prompt_acts["tokens"] == ["<bos>", "a", "b", "c"]
    reply = _reply(dash.select_unit({"kind": "feature", "index": 5}, []), FeaturesEnvelope)
    assert reply["ok"] is True
    assert reply["panel"]["title"] == "SAE feature 5"
    assert (dash.kind, dash.index) == ("feature", 5)
    assert dash.panel is not None and dash.panel["index"] == 5
    assert dash.prompt_acts is None  # a new unit clears the old prompt's activations
    want = dash.panel_data
    assert [lk["index"] for lk in reply["panel"]["links"]] == [i for _, i, _ in want.links]


def test_activations_command(dash: FeatureDashboard, tl: Model, sae: Any) -> None:
    response, buffers = dash.get_activations({"kind": "feature", "index": 1, "text": "b c d"}, [])
    reply = _reply((response, buffers), FeaturesEnvelope)
    assert reply["ok"] is True and reply["acts"]["tokens"] == ["<bos>", "b", "c", "d"]
    assert response["buffer_paths"] == [["acts", "acts", "data"]]
    acts = np.frombuffer(buffers[0], dtype="<f4")
    with torch.no_grad():
        x = tl.run("b c d", capture=[SITE]).cache[SITE][0]
        ref = sae.encode(x)[:, 1].numpy()
    np.testing.assert_allclose(acts, ref, rtol=1e-5, atol=1e-6)
    assert (dash.kind, dash.index, dash.prompt) == ("feature", 1, "b c d")


@pytest.mark.parametrize(("name", "msg", "error"), [
    ("select_unit", {"kind": "feature", "index": 8}, "SiteIndexError: feature 8 is out of range"),
    ("select_unit", {"kind": "head", "index": 0}, "ValidationError: invalid SelectRequest: kind"),
    ("select_unit", "feature 3", "TypeError: select_unit expects an object, got str"),
    ("select_unit", {"kind": "neuron"}, "ValidationError: invalid SelectRequest: index: Field required"),
    ("get_activations", {"kind": "neuron", "index": 0, "text": ""}, "ValidationError"),
    ("get_activations", {"kind": "neuron", "index": 0, "text": "a " * 40}, "ContextLengthError"),
])
def test_dashboard_errors_reply(dash: FeatureDashboard, name: str, msg: Any, error: str) -> None:
    reply = _reply(getattr(dash, name)(msg, []), FeaturesEnvelope)
    assert reply["ok"] is False
    assert f"{reply['error']['type_name']}: {reply['error']['message']}".startswith(error)


def test_unknown_command_replies(dash: FeatureDashboard) -> None:
    sent: list[Any] = []
    dash.send = lambda content, buffers=None: sent.append(content)  # type: ignore[method-assign]
    dash._handle_custom_msg({"kind": "anywidget-command", "id": "x1", "name": "nope", "msg": {}}, [])
    assert sent and sent[-1]["kind"] == "anywidget-command-response"
    assert sent[-1]["response"]["reply"]["error"]["message"].startswith("unknown command 'nope'")
    del dash.send


def test_snapshot_html(dash: FeatureDashboard) -> None:
    data, _ = dash._repr_mimebundle_()
    assert 'data-iw-static="features"' in data["text/html"]
    from interp_widget.widgets.attention import SNAPSHOT_MIME

    assert SNAPSHOT_MIME in data


@pytest.fixture
def steering(tl: Model, sae: Any) -> SteeringWidget:
    return steering_widget(tl, sae=sae, directions={"random": torch.randn(tiny.D_MODEL)}, prompt="a b",
                           max_new_tokens=4, greedy=True)


def test_steering_widget_generates(steering: SteeringWidget, tl: Model) -> None:
    SteeringState.model_validate(steering.state_model().model_dump())
    assert steering.site == SITE and steering.direction == "named:random"
    assert [d["id"] for d in steering.directions][:3] == ["named:random", "feature:0", "feature:1"]
    pushed: list[Any] = []
    steering.send = lambda content, buffers=None: pushed.append(content)  # type: ignore[method-assign]
    reply = _reply(steering.start_generate({"prompt": "a b", "site": SITE, "direction": "feature:2", "op": "clamp",
                                            "strength": 6.0, "max_new_tokens": 4, "greedy": True}, []),
                   SteeringEnvelope)
    assert reply == {"ok": True, "run_id": reply["run_id"], "n_prompt_tokens": 3}
    res = steering.wait(30)
    assert res is not None and steering.status["state"] == "done"
    assert [p["status"]["done"] for p in pushed if p["status"]["state"] == "running"] == [0, 1, 2, 3, 4]
    from interp_widget.analysis.steering import sae_feature, steer

    ref = steer(tl, "a b", SITE, sae_feature(steering._directions["feature:2"].sae, 2), op="clamp", strength=6.0,
                max_new_tokens=4, greedy=True)
    assert torch.equal(res.steered_tokens, ref.steered_tokens)
    ids = decode(steering.result["steered_ids"])
    assert ids.tolist() == ref.steered_tokens.tolist()
    assert steering.op == "clamp" and steering.strength == 6.0  # the form shows what ran
    del steering.send


@pytest.mark.parametrize(("msg", "error"), [
    ({"prompt": "a b", "site": "blocks.0.hook_resid_post", "direction": "feature:2"},
     "InputMismatchError: this SAE reads blocks.1.mlp.hook_post, not blocks.0.hook_resid_post"),
    ({"prompt": "a b", "site": "blocks.0.hook_resid_post", "direction": "named:random", "op": "clamp",
      "strength": 1.0, "max_new_tokens": 2}, None),
    ({"prompt": "a b", "site": SITE, "direction": "feature:99"}, "InputMismatchError: unknown direction 'feature:99'"),
    ({"prompt": "a b", "site": SITE, "direction": "feature:1", "op": "set"}, "ValidationError"),
    ({"prompt": "a b", "site": SITE, "direction": "feature:1", "max_new_tokens": 40},
     "InputMismatchError: the prompt is 3 tokens; with 40 new tokens"),
    ([1, 2], "TypeError: start_generate expects an object"),
])
def test_steering_errors_reply(steering: SteeringWidget, msg: Any, error: str | None) -> None:
    reply = _reply(steering.start_generate(msg, []), SteeringEnvelope)
    if error is None:  # a good request beside the bad ones: it runs
        assert reply["ok"] is True
        steering.wait(30)
        assert steering.status["state"] == "done"
        return
    assert reply["ok"] is False
    assert f"{reply['error']['type_name']}: {reply['error']['message']}".startswith(error)


def test_steering_cancel(steering: SteeringWidget, monkeypatch: Any) -> None:
    import interp_widget.analysis.steering as steering_mod

    gate, started = threading.Event(), threading.Event()
    real = steering_mod.steered_logits

    def slow(*args: Any, **kwargs: Any) -> Any:
        started.set()
        gate.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(steering_mod, "steered_logits", slow)
    run_id = steering.generate(direction="feature:1", max_new_tokens=5)
    assert started.wait(10)
    reply = _reply(steering.cancel_run({"run_id": run_id}, []), SteeringEnvelope)
    assert reply["cancelled"] is True
    gate.set()
    steering.wait(30)
    assert steering.status["state"] == "cancelled"
    assert "cancelled after" in steering.status["message"]
    wrong = _reply(steering.cancel_run({"run_id": run_id + 100}, []), SteeringEnvelope)
    assert wrong["cancelled"] is False


def test_result_displays_as_static_view(tl: Model) -> None:
    from interp_widget.analysis.steering import steer

    res = steer(tl, "a b", "blocks.0.hook_resid_post", torch.ones(tiny.D_MODEL), max_new_tokens=2, greedy=True)
    data, _ = result_mimebundle(res)
    assert data["text/plain"] == repr(res)
    assert 'data-iw-static="steering"' in data["text/html"]


def test_steering_feature_list(tl: Model, sae: Any) -> None:
    w = steering_widget(tl, sae=sae, features=[5, 2])
    assert [d["id"] for d in w.directions] == ["feature:5", "feature:2"]
    with pytest.raises(SiteIndexError, match="feature 9 is out of range: the SAE has 8 features"):
        steering_widget(tl, sae=sae, features=[9])
    with pytest.raises(InputMismatchError, match="needs directions"):
        steering_widget(tl)
