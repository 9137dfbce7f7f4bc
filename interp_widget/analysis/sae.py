"""Sparse autoencoders through SAELens: train on our activations, evaluate, save and load.

>>> res = train_sae(acts, d_sae=64, l1_coefficient=1.0, steps=2000)           # doctest: +SKIP
>>> res = train_sae(model, site="blocks.0.hook_mlp_out", tokens=toks, d_sae=256, architecture="topk", k=8)  # doctest: +SKIP
>>> res.metrics.explained_variance, res.W_dec.shape                           # doctest: +SKIP
>>> res.save("my_sae"); load_sae("my_sae")                                    # doctest: +SKIP

What SAELens does and what we do:

* the SAE classes, configs and their training maths are SAELens's: ``StandardTrainingSAE`` /
  ``TopKTrainingSAE`` (loss, L1 or top-k, auxiliary loss, decoder-norm handling) and its
  ``SAETrainer`` (Adam, LR schedule, L1 warm-up, dead-feature tracking, gradient clipping). The SAE
  handed back is SAELens's inference class (``StandardSAE`` / ``TopKSAE``), converted by its own
  ``save_inference_model`` + ``SAE.load_from_disk``, so a saved SAE is a plain SAELens directory.
* the trainer takes its data from any iterator of activation batches (SAELens's ``DataProvider``), so
  we feed it our sources (an in-memory tensor, an :class:`ActivationStore`'s shuffled batches, or
  activations captured from a model). SAELens's own ``ActivationsStore`` / ``LanguageModelSAETrainingRunner``
  are not used: they run a TransformerLens model from a Hugging Face dataset and cannot read our stores,
  nnsight models, or an in-memory tensor.
* we drive ``SAETrainer.step`` ourselves (the same public seams ``SAETrainer.fit`` and SAELens's
  ``MultiSAETrainer`` use) instead of calling ``fit()``: ``fit`` draws its own tqdm bar and offers no
  callback, while our analyses report ``progress(done, total)`` (which a widget can use to cancel)
  and keep a loss history. No loss or optimiser code is written here.

Metrics (:class:`SAEMetrics`, computed on held-out rows of the source): MSE per element, explained
variance ``1 - sum|x - x_hat|^2 / sum|x - mean(x)|^2``, L0 (mean number of active features per token),
the fraction of features never active on the evaluation rows, and, when a model, site and tokens are
known, the next-token loss with the SAE's reconstruction spliced in at the site (through the model's
``set`` intervention), the clean loss, the zero-ablation loss and the fraction of loss recovered.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from interp_widget.analysis.activation_store import (
    ActivationStore,
    Progress,
    as_sequences,
    iter_activations,
    progress_reporter,
    select_rows,
    unselect_rows,
)
from interp_widget.errors import InputMismatchError
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

Architecture = Literal["standard", "topk"]
_EXTRA = "interp_widget.json"  # our side file next to SAELens's cfg.json / sae_weights.safetensors


@dataclass(frozen=True)
class SAEMetrics:
    """Standard SAE metrics; the ``ce_loss_*`` fields are None unless a model, site and tokens were given."""

    mse: float
    explained_variance: float
    l0: float
    dead_fraction: float
    n_dead: int
    n_rows: int
    ce_loss_clean: float | None = None
    ce_loss_spliced: float | None = None
    ce_loss_zero_ablated: float | None = None

    @property
    def ce_loss_delta(self) -> float | None:
        """Next-token loss with the reconstruction spliced in, minus the clean loss."""
        if self.ce_loss_spliced is None or self.ce_loss_clean is None:
            return None
        return self.ce_loss_spliced - self.ce_loss_clean

    @property
    def ce_loss_recovered(self) -> float | None:
        """``(zero - spliced) / (zero - clean)``: 1 when splicing costs nothing, 0 when as bad as zeroing."""
        if self.ce_loss_spliced is None or self.ce_loss_clean is None or self.ce_loss_zero_ablated is None:
            return None
        gap = self.ce_loss_zero_ablated - self.ce_loss_clean
        return (self.ce_loss_zero_ablated - self.ce_loss_spliced) / gap if gap else float("nan")

    def as_dict(self) -> dict[str, float | int | None]:
        return {**asdict(self), "ce_loss_delta": self.ce_loss_delta, "ce_loss_recovered": self.ce_loss_recovered}

    def __repr__(self) -> str:
        parts = [f"mse={self.mse:.4g}", f"explained_variance={self.explained_variance:.3f}", f"l0={self.l0:.2f}",
                 f"dead={self.n_dead} ({self.dead_fraction:.1%})"]
        if self.ce_loss_delta is not None:
            parts.append(f"ce_loss {self.ce_loss_clean:.4f} -> {self.ce_loss_spliced:.4f} (delta {self.ce_loss_delta:+.4f})")
        return f"SAEMetrics({', '.join(parts)}; {self.n_rows} rows)"


@dataclass
class SAEResult:
    """A trained or loaded SAE: ``.sae`` is the SAELens SAE (inference class)."""

    sae: Any
    site: Site | None = None
    metrics: SAEMetrics | None = None
    history: list[dict[str, float]] = field(default_factory=list)  # losses every few steps (training only)
    model_name: str | None = None

    @property
    def d_in(self) -> int:
        return int(self.sae.cfg.d_in)

    @property
    def d_sae(self) -> int:
        return int(self.sae.cfg.d_sae)

    @property
    def architecture(self) -> str:
        return str(self.sae.cfg.architecture())

    @property
    def W_dec(self) -> torch.Tensor:
        """Decoder directions ``[d_sae, d_in]`` (row ``i`` is feature ``i``'s direction; not unit-normed)."""
        return self.sae.W_dec.detach()

    @property
    def W_enc(self) -> torch.Tensor:
        """Encoder ``[d_in, d_sae]``."""
        return self.sae.W_enc.detach()

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Feature activations ``[..., d_sae]`` of activations ``[..., d_in]``."""
        import torch

        self._check_width(x, self.d_in, "activations")
        with torch.no_grad():
            return self.sae.encode(x.to(self.sae.W_dec.dtype))

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """Reconstruction ``[..., d_in]`` from feature activations ``[..., d_sae]``."""
        import torch

        self._check_width(f, self.d_sae, "feature activations")
        with torch.no_grad():
            return self.sae.decode(f.to(self.sae.W_dec.dtype))

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    @staticmethod
    def _check_width(x: torch.Tensor, d: int, what: str) -> None:
        if x.shape[-1] != d:
            msg = f"{what} have width {x.shape[-1]} but this SAE expects {d} (last axis)"
            raise InputMismatchError(msg)

    def save(self, path: str | Path) -> Path:
        """Save as a SAELens directory (``cfg.json`` + ``sae_weights.safetensors``) plus our metrics/history."""
        out = Path(path)
        self.sae.save_model(out)
        extra = {"site": str(self.site) if self.site is not None else None,
                 "metrics": asdict(self.metrics) if self.metrics is not None else None,
                 "history": self.history, "model_name": self.model_name}
        (out / _EXTRA).write_text(json.dumps(extra))
        return out

    def __repr__(self) -> str:
        site = f" at {self.site}" if self.site is not None else ""
        return f"<SAEResult {self.architecture} d_in={self.d_in} d_sae={self.d_sae}{site}; {self.metrics!r}>"


def load_sae(path: str | Path, *, device: str = "cpu") -> SAEResult:
    """Load a SAE saved by SAELens (``sae.save_model(dir)``) or by :meth:`SAEResult.save`."""
    from sae_lens import SAE

    p = Path(path)
    if not (p / "cfg.json").is_file():
        msg = f"{p} is not a SAELens SAE directory (no cfg.json); save one with sae.save_model(dir)"
        raise FileNotFoundError(msg)
    sae = SAE.load_from_disk(p, device=device)
    extra = json.loads((p / _EXTRA).read_text()) if (p / _EXTRA).is_file() else {}
    site = _site_from(extra.get("site"), sae.cfg.metadata)
    metrics = SAEMetrics(**extra["metrics"]) if extra.get("metrics") else None
    model_name = extra.get("model_name") or sae.cfg.metadata.get("model_name")
    return SAEResult(sae, site, metrics, list(extra.get("history") or []), model_name)


def _site_from(saved: str | None, metadata: Any) -> Site | None:
    """Our site string (``blocks.0.attn.hook_z[head=1]``), else SAELens's ``hook_name`` / ``hook_head_index``."""
    import re

    text = saved or metadata.get("hook_name")
    if not text:
        return None
    m = re.match(r"^([^\[]+)(?:\[(.*)\])?$", text)
    if m is None:
        return None
    kw = dict(kv.split("=") for kv in (m.group(2) or "").split(", ") if "=" in kv)
    head = int(kw["head"]) if "head" in kw else metadata.get("hook_head_index")
    pos = int(kw["pos"]) if "pos" in kw else None
    try:
        return Site.parse(m.group(1), head=head, position=pos)
    except Exception:
        return None


# --- sources --------------------------------------------------------------------------------------


@dataclass
class _Source:
    """Training rows (a provider of shuffled batches), held-out rows, and the model context if any."""

    d_in: int
    batches: Callable[[int], Iterator[torch.Tensor]]  # seed -> one pass of shuffled batches
    eval_rows: torch.Tensor
    site: Site | None = None
    model: Model | None = None
    tokens: list[torch.Tensor] | None = None


def _tensor_source(x: torch.Tensor, batch_size: int, eval_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    import torch

    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        msg = "an activation source tensor must be a float tensor [n, d]"
        raise InputMismatchError(msg)
    x = x.detach().reshape(-1, x.shape[-1]).float()
    if x.shape[0] < 2:
        msg = f"need at least 2 activation rows to train a SAE, got {x.shape[0]}"
        raise InputMismatchError(msg)
    n_eval = min(eval_rows, max(1, x.shape[0] // 10))
    del batch_size
    return x[:-n_eval] if x.shape[0] - n_eval >= 1 else x, x[-n_eval:]


def _shuffled(x: torch.Tensor, batch_size: int) -> Callable[[int], Iterator[torch.Tensor]]:
    import torch

    def one_pass(seed: int) -> Iterator[torch.Tensor]:
        perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
        for s in range(0, x.shape[0] - batch_size + 1, batch_size):
            yield x[perm[s:s + batch_size]]

    return one_pass


def _resolve_source(source: Any, *, site: str | Site | None, tokens: Any, batch_size: int, eval_rows: int,
                    capture_batch: int, progress: bool | Progress | None) -> _Source:
    import torch

    if isinstance(source, tuple) and len(source) == 3:
        source, site, tokens = source
    if isinstance(source, torch.Tensor):
        train, held = _tensor_source(source, batch_size, eval_rows)
        if train.shape[0] < batch_size:
            msg = f"batch_size {batch_size} is larger than the {train.shape[0]} training rows"
            raise InputMismatchError(msg)
        return _Source(train.shape[1], _shuffled(train, batch_size), held, Site.parse(site) if site else None)
    if isinstance(source, ActivationStore):
        name = source._site(site)
        n_eval_shards = 1 if len(source.shards) > 1 else 0
        held = source.shard(len(source.shards) - 1, [name])[name].float()[:eval_rows] if n_eval_shards else \
            source.read(name).float()[-min(eval_rows, max(1, len(source) // 10)):]
        train_store = source
        if n_eval_shards:  # hold the last shard out of training
            train_store = ActivationStore.__new__(ActivationStore)
            train_store.__dict__.update(source.__dict__)
            train_store.shards = source.shards[:-1]

        def store_pass(seed: int) -> Iterator[torch.Tensor]:
            return train_store.batches(name, batch_size=batch_size, seed=seed, drop_last=True)

        return _Source(source.d(name), store_pass, held, Site.parse(name))
    # a model (anything interp_widget.load takes, except strings, which are ambiguous here)
    if isinstance(source, (str, bytes)):
        msg = "train_sae takes an activation tensor, an ActivationStore, or a model (with site= and tokens=)"
        raise TypeError(msg)
    from interp_widget.models.loading import load

    model = load(source)
    if site is None or tokens is None:
        msg = "training a SAE from a model needs site= (a hook name) and tokens= (the dataset)"
        raise InputMismatchError(msg)
    s = model.check_site(site)
    seqs = as_sequences(tokens, model)
    rows: list[torch.Tensor] = []
    with progress_reporter(progress, len(seqs), "capturing activations") as report:
        for first, n, out in iter_activations(model, [s], seqs, batch_size=capture_batch):
            rows.append(out[s.hook_name].float())
            report(first + n)
    train, held = _tensor_source(torch.cat(rows), batch_size, eval_rows)
    if train.shape[0] < batch_size:
        msg = f"batch_size {batch_size} is larger than the {train.shape[0]} captured training rows"
        raise InputMismatchError(msg)
    return _Source(train.shape[1], _shuffled(train, batch_size), held, s, model, seqs)


# --- training -------------------------------------------------------------------------------------


def train_sae(source: Any, *, d_sae: int, site: str | Site | None = None, tokens: Any = None,
              architecture: Architecture = "standard", l1_coefficient: float = 1.0, k: int | None = None,
              steps: int | None = None, n_tokens: int | None = None, batch_size: int = 1024, lr: float = 1e-3,
              l1_warm_up_steps: int = 0, lr_warm_up_steps: int = 0, dead_feature_window: int = 1000,
              seed: int = 0, eval_rows: int = 4096, eval_sequences: int = 32, capture_batch: int = 16,
              model: Any = None, device: str = "cpu", progress: bool | Progress | None = True) -> SAEResult:
    """Train a SAELens SAE on ``source``; see the module docstring.

    ``source``: activations ``[n, d]`` (or ``[..., d]``), an :class:`ActivationStore` (``site`` picks a
    captured site), a model with ``site=`` and ``tokens=``, or a tuple ``(model, site, tokens)``.
    Metrics use held-out rows: the last tenth of a tensor (at most ``eval_rows``), a store's last shard
    (a one-shard store is evaluated on its last rows, which training also saw).
    ``architecture="standard"`` (ReLU + L1, weight ``l1_coefficient``) or ``"topk"`` (``k`` active features).
    Train for ``steps`` batches of ``batch_size`` rows (or ``n_tokens`` rows; default 2000 steps).
    ``model`` and ``tokens`` with a tensor / store source enable the spliced-loss metrics.
    """
    import torch
    from sae_lens import SAE, LoggingConfig, SAETrainer
    from sae_lens.config import SAETrainerConfig
    from sae_lens.saes.sae import SAEMetadata

    if architecture not in ("standard", "topk"):
        msg = f"unknown SAE architecture {architecture!r}; use 'standard' (L1) or 'topk'"
        raise ValueError(msg)
    if d_sae < 1 or batch_size < 1:
        msg = f"d_sae and batch_size must be >= 1 (got {d_sae}, {batch_size})"
        raise ValueError(msg)
    if architecture == "topk" and (k is None or not 1 <= k <= d_sae):
        msg = f"a top-k SAE needs k between 1 and d_sae={d_sae} (got k={k})"
        raise ValueError(msg)
    n_steps = steps if steps is not None else (math.ceil(n_tokens / batch_size) if n_tokens else 2000)
    src = _resolve_source(source, site=site, tokens=tokens, batch_size=batch_size, eval_rows=eval_rows,
                          capture_batch=capture_batch, progress=progress)
    ctx_model = src.model if src.model is not None else (_load_model(model) if model is not None else None)
    ctx_tokens = src.tokens if src.tokens is not None else (as_sequences(tokens, ctx_model) if tokens is not None
                                                             and ctx_model is not None else None)
    meta = SAEMetadata(hook_name=src.site.hook_name if src.site else None,
                       hook_head_index=src.site.head if src.site else None,
                       model_name=ctx_model.name if ctx_model is not None else None)
    common = {"d_in": src.d_in, "d_sae": d_sae, "device": device, "metadata": meta}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if architecture == "topk":
            from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig

            tsae: Any = TopKTrainingSAE(TopKTrainingSAEConfig(k=int(k), **common))  # type: ignore[arg-type]
        else:
            from sae_lens import StandardTrainingSAE, StandardTrainingSAEConfig

            tsae = StandardTrainingSAE(StandardTrainingSAEConfig(
                l1_coefficient=l1_coefficient, l1_warm_up_steps=l1_warm_up_steps, **common))
    cfg = SAETrainerConfig(total_training_samples=n_steps * batch_size, train_batch_size_samples=batch_size, lr=lr, lr_end=lr / 10,
                           lr_warm_up_steps=lr_warm_up_steps, device=device, dead_feature_window=dead_feature_window,
                           feature_sampling_window=max(1, min(2000, n_steps)),
                           logger=LoggingConfig(log_to_wandb=False))
    data = _forever(src.batches, seed)
    trainer: Any = SAETrainer(cfg=cfg, sae=tsae, data_provider=data)
    history: list[dict[str, float]] = []
    every = max(1, n_steps // 100)
    with progress_reporter(progress, n_steps, "training SAE") as report:
        for step in range(n_steps):
            trainer.maybe_reset_sparsity()
            out = trainer.step(next(data))
            trainer.n_training_steps += 1
            if step % every == 0 or step == n_steps - 1:
                history.append({"step": float(step), "loss": float(out.loss.detach()),
                                **{k_: float(v.detach()) for k_, v in out.losses.items()}})
                report(step + 1)
    trainer.set_final_sae_metadata()
    with tempfile.TemporaryDirectory(prefix="iw-sae-") as tmp:
        tsae.save_inference_model(tmp)
        sae = SAE.load_from_disk(tmp, device=device)
    result = SAEResult(sae, src.site, None, history, ctx_model.name if ctx_model is not None else None)
    result.metrics = evaluate_sae(result, src.eval_rows, model=ctx_model, tokens=ctx_tokens,
                                  max_sequences=eval_sequences)
    return result


def _load_model(model: Any) -> Model:
    from interp_widget.models.loading import load

    return load(model)


def _forever(one_pass: Callable[[int], Iterator[torch.Tensor]], seed: int) -> Iterator[torch.Tensor]:
    epoch = 0
    while True:
        got = False
        for b in one_pass(seed * 1_000_003 + epoch):
            got = True
            yield b
        if not got:
            msg = "the activation source gave no full batch; lower batch_size"
            raise InputMismatchError(msg)
        epoch += 1


# --- evaluation -----------------------------------------------------------------------------------


def evaluate_sae(sae: SAEResult | Any, rows: torch.Tensor | ActivationStore, *, site: str | Site | None = None,
                 model: Any = None, tokens: Any = None, max_sequences: int = 32,
                 batch_size: int = 4096) -> SAEMetrics:
    """Metrics of ``sae`` (a :class:`SAEResult` or a SAELens SAE) on activation ``rows`` ``[n, d_in]``
    (or a store's rows at ``site``); with ``model`` and ``tokens`` also the spliced next-token loss."""
    import torch

    res = sae if isinstance(sae, SAEResult) else SAEResult(sae)
    if isinstance(rows, ActivationStore):
        rows = rows.read(site if site is not None else (res.site.hook_name if res.site else None))
    x = rows.reshape(-1, rows.shape[-1]).float()
    SAEResult._check_width(x, res.d_in, "activations")
    sq_err = 0.0
    l0_sum = 0.0
    fired = torch.zeros(res.d_sae, dtype=torch.bool)
    mean = x.mean(0)
    total_var = float(((x - mean) ** 2).sum())
    for s in range(0, x.shape[0], batch_size):
        xb = x[s:s + batch_size]
        f = res.encode(xb)
        xh = res.decode(f).float()
        sq_err += float(((xb - xh) ** 2).sum())
        active = f > 0
        l0_sum += float(active.sum())
        fired |= active.any(0).cpu()
    n = x.shape[0]
    n_dead = int((~fired).sum())
    ev = 1.0 - sq_err / total_var if total_var > 0 else float("nan")
    ce: dict[str, float] = {}
    if model is not None and tokens is not None:
        the_site = Site.parse(site) if site is not None else res.site
        if the_site is None:
            msg = "the spliced loss needs the SAE's site: pass site="
            raise InputMismatchError(msg)
        ce = spliced_loss(res, _load_model(model), the_site, tokens, max_sequences=max_sequences)
    return SAEMetrics(mse=sq_err / (n * res.d_in), explained_variance=ev, l0=l0_sum / n,
                      dead_fraction=n_dead / res.d_sae, n_dead=n_dead, n_rows=n, **ce)


def spliced_loss(sae: SAEResult, model: Model, site: Site | str, tokens: Any, *,
                 max_sequences: int = 32, batch_size: int = 16) -> dict[str, float]:
    """Mean next-token loss on ``tokens``: clean, with ``sae``'s reconstruction set at ``site``, and with
    the site zero-ablated (``ce_loss_clean`` / ``ce_loss_spliced`` / ``ce_loss_zero_ablated``)."""
    import torch

    from interp_widget.analysis.metrics import loss
    from interp_widget.tracing.base import Intervention

    s = model.check_site(site)
    seqs = as_sequences(tokens, model)[:max_sequences]
    sums = {"ce_loss_clean": 0.0, "ce_loss_spliced": 0.0, "ce_loss_zero_ablated": 0.0}
    count = 0
    i = 0
    while i < len(seqs):
        j = i + 1
        while j < len(seqs) and j - i < batch_size and seqs[j].shape[0] == seqs[i].shape[0]:
            j += 1
        batch = torch.stack(list(seqs[i:j]))
        if batch.shape[1] < 2:
            i = j
            continue
        metric = loss(targets=batch)
        with torch.no_grad():
            clean = model.run(batch, capture=[s])
            act = clean.cache[s.hook_name]
            recon = unselect_rows(s, sae.reconstruct(select_rows(s, act).float()).to(act.dtype), act)
            spliced = model.run(batch, interventions=[Intervention(s, "set", recon)])
            zeroed = model.run(batch, interventions=[Intervention(s, "zero")])
        for key, run in (("ce_loss_clean", clean), ("ce_loss_spliced", spliced), ("ce_loss_zero_ablated", zeroed)):
            if run.logits is None:
                msg = f"{model.name} gives no logits: the spliced next-token loss needs a language model"
                raise InputMismatchError(msg)
            sums[key] += float(metric(run.logits).sum())
        count += batch.shape[0]
        i = j
    if count == 0:
        msg = "the spliced loss needs sequences of at least 2 tokens"
        raise InputMismatchError(msg)
    return {key: v / count for key, v in sums.items()}


def best_cosine(true_dirs: torch.Tensor, sae: SAEResult | torch.Tensor) -> torch.Tensor:
    """For each true direction (rows of ``true_dirs`` ``[n, d]``), the best cosine with a decoder row."""
    dec = sae.W_dec if isinstance(sae, SAEResult) else sae
    if dec.shape[-1] != true_dirs.shape[-1]:
        msg = f"true directions have width {true_dirs.shape[-1]} but the decoder {dec.shape[-1]}"
        raise InputMismatchError(msg)
    a = true_dirs.float() / true_dirs.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b = dec.float() / dec.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return (a @ b.T).max(dim=1).values


__all__: Sequence[str] = ["SAEMetrics", "SAEResult", "best_cosine", "evaluate_sae", "load_sae", "spliced_loss",
                          "train_sae"]
