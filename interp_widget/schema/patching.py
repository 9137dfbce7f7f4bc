"""Wire models of the result heatmap and the patching-controls widget: state, commands, replies.

A :class:`HeatmapData` is any sweep result (activation / path / attribution patching, head scores)
as the views draw it: an n-dimensional float32 tensor, one label list per axis, which axes are the
rows and columns (the others are sliced with a selector), and the clean / corrupted metrics.

The patching widget's commands: ``start_run`` (:class:`RunRequest` -> :class:`RunStarted`), ``cancel_run``
(:class:`CancelRequest` -> :class:`CancelReply`), ``open_head`` (:class:`OpenHeadRequest` ->
:class:`HeadPatternsReply`) and the attention view's ``get_pattern``. While a run goes on the kernel
pushes :class:`StatusMessage` custom messages; the final status also lands in the ``status`` trait.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from interp_widget.schema.attention import ErrorReply, PatternReply, PatternWindow, PromptData
from interp_widget.schema.tensor import TensorPayload

MetricName = Literal["logit_diff", "probability", "kl", "loss"]
Component = Literal["resid", "attn", "mlp", "heads", "path"]
RunState = Literal["idle", "running", "done", "cancelled", "error"]

#: component type of the controls -> the sweep it runs (see interp_widget.analysis.sweeps.KINDS)
COMPONENT_SWEEPS: dict[str, str] = {
    "resid": "resid_pre",
    "attn": "attn_out",
    "mlp": "mlp_out",
    "heads": "heads",
    "path": "heads",  # senders: every head; receiver: RunRequest.receiver
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_serialization_defaults_required=True)


class HeatmapData(_Model):
    """A result as the heatmap view draws it.

    ``values`` is float32 with one axis per entry of ``axes`` (``labels[i]`` names the indices of
    axis ``i``; NaN marks cells that do not exist). ``rows`` / ``cols`` are the axes drawn as rows and
    columns (``cols`` None: one column); every other axis is shown one index at a time, ``slice[i]``
    being the index shown first.
    """

    title: str
    kind: str = Field(description="activation_patching, path_patching, attribution, ablation or head_scores")
    sites: str = Field(description="the sweep, e.g. 'heads', 'resid_pre'")
    metric: str
    axes: list[str]
    labels: list[list[str]]
    values: TensorPayload
    rows: int = Field(ge=0, description="the axis drawn as rows")
    cols: int | None = Field(default=None, ge=0, description="the axis drawn as columns (None: a single column)")
    slice: list[int] = Field(description="per axis: the index shown first (ignored for the rows / cols axes)")
    clean_metric: float | None = None
    corrupted_metric: float | None = None
    normalized: bool = False
    scale: Literal["diverging", "sequential"] = Field(description="diverging: around `center`; sequential: min..max")
    center: float = Field(description="the value drawn in the background colour (diverging scale)")
    note: str = Field(default="", description="one line of context (direction, forward passes, ...)")

    @model_validator(mode="after")
    def _check_axes(self) -> HeatmapData:
        n = len(self.axes)
        if len(self.labels) != n or len(self.slice) != n or list(self.values.shape) != [len(x) for x in self.labels]:
            msg = (f"heatmap of shape {self.values.shape} needs one label list and one slice index per axis; "
                   f"got axes {self.axes}, {len(self.labels)} label lists, {len(self.slice)} slice indices")
            raise ValueError(msg)
        if self.rows >= n or (self.cols is not None and (self.cols >= n or self.cols == self.rows)):
            msg = f"rows={self.rows} / cols={self.cols} must be two different axes of {self.axes}"
            raise ValueError(msg)
        return self


class RunStatus(_Model):
    """Where the widget's run stands (the ``status`` trait, and each progress message)."""

    state: RunState = "idle"
    run_id: int = Field(default=0, ge=0)
    done: int = Field(default=0, ge=0, description="work done, in `unit`")
    total: int = Field(default=0, ge=0, description="work in the run, in `unit` (0: not known yet)")
    unit: Literal["runs", "permille"] = Field(default="runs", description="runs: patched runs; permille: "
                                              "thousandths of a run of several sweeps (path patching)")
    elapsed_s: float = 0.0
    error_type: str = Field(default="", description="the Python exception class when state is 'error'")
    message: str = ""


class StatusMessage(_Model):
    """Custom message the kernel pushes while a run goes on (anywidget ``msg:custom``)."""

    kind: Literal["iw-status"] = "iw-status"
    status: RunStatus


class PatchingState(_Model):
    """The patching widget's synced state (one trait per field)."""

    model_name: str
    n_layers: int = Field(ge=0)
    n_heads: int = Field(ge=0)
    has_mlp: bool = Field(description="False for attention-only models: no MLP sweep")
    controls: bool = Field(description="show the run controls (False: a result without a model)")
    clean: str = Field(description="clean prompt(s), one per line")
    corrupted: str = Field(description="corrupted prompt(s), one per line")
    metric: MetricName
    answer: str = Field(description="the correct answer token (logit difference, probability)")
    wrong: str = Field(description="the wrong answer token (logit difference)")
    component: Component
    receiver: str = Field(description="path patching receiver: 'logits' or e.g. 'L1H2.k'")
    normalize: bool
    result: HeatmapData | None = None
    status: RunStatus


class RunRequest(_Model):
    """Command ``start_run``: patch with these inputs; the reply comes at once, the result when it is done."""

    clean: str = Field(min_length=1)
    corrupted: str = Field(min_length=1)
    metric: MetricName = "logit_diff"
    answer: str = ""
    wrong: str = ""
    component: Component = "heads"
    receiver: str = "logits"
    normalize: bool = False


class RunStarted(_Model):
    ok: Literal[True] = True
    run_id: int
    n_prompts: int
    n_tokens: int


class CancelRequest(_Model):
    """Command ``cancel_run``: stop the run ``run_id`` (None: whichever is running)."""

    run_id: int | None = None


class CancelReply(_Model):
    ok: Literal[True] = True
    run_id: int | None = Field(description="the run that was asked to stop (None: nothing was running)")
    cancelled: bool


class OpenHeadRequest(_Model):
    """Command ``open_head``: one head's attention on the clean and the corrupted prompt."""

    layer: int = Field(ge=0)
    head: int = Field(ge=0)
    window_size: int = Field(default=48, ge=4, le=512)


class HeadPatternsReply(_Model):
    """``prompts[0]`` is the clean prompt, ``prompts[1]`` the corrupted one (as in the attention view:
    ``get_pattern`` requests address them as prompt 0 and 1); ``windows[i]`` is the first window of
    the head on prompt ``i``."""

    ok: Literal[True] = True
    model_name: str
    n_layers: int
    n_heads: int
    layer: int
    head: int
    names: list[str] = Field(description="['clean', 'corrupted']")
    prompts: list[PromptData]
    windows: list[PatternWindow]


class PatchingEnvelope(_Model):
    """The ``response`` of a patching-widget command (see ``CommandEnvelope``)."""

    reply: RunStarted | CancelReply | HeadPatternsReply | PatternReply | ErrorReply
    buffer_paths: list[list[str | int]]


class StaticHeatmap(_Model):
    """What a static page (notebook snapshot, HTML export) embeds for a result heatmap; ``data``
    fields are base64 text there."""

    kind: Literal["heatmap"] = "heatmap"
    version: Literal[1] = 1
    state: PatchingState
