"""Activation capture to disk: sharded safetensors with a manifest, bounded memory, resume, shuffled reads.

>>> store = capture_activations(model, ["blocks.0.hook_resid_post"], tokens, "acts/")   # doctest: +SKIP
>>> for batch in store.batches(batch_size=4096, seed=0): ...                              # doctest: +SKIP

Layout of ``out_dir``:

* ``manifest.json``: the plan (sites and their trailing shapes, dtype, one entry per shard with its
  sequence range and token count) and which shards are done;
* ``shard_00000.safetensors`` ...: for each site a ``[n_tokens, d]`` tensor named by its hook name (head
  and position selections in the site are applied; trailing axes are flattened, e.g. ``hook_z``'s
  ``head x d_head``), plus ``tokens``, ``sequence`` and ``position`` (int32, one per row).

Shards are a fixed partition of the input sequences (consecutive sequences until ``shard_tokens``), so a
rerun with the same inputs writes the same shards. Each shard is written to a temporary file and
renamed into place (atomic on POSIX), then the manifest is rewritten the same way: a process killed at
any point loses at most the shard in flight, and a rerun skips every shard already on disk, so no shard
is lost or written twice. Memory is bounded by one shard plus one batch.

:class:`ActivationStore` reads a store back: whole (``read``), per shard, or as shuffled batches mixed
across shards through a bounded buffer (``batches``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp_widget.errors import InputMismatchError, UnknownSiteError
from interp_widget.tracing.sites import Site

if TYPE_CHECKING:
    import torch

    from interp_widget.models.model import Model

Progress = Callable[[int, int], Any]
FORMAT = "interp-widget-activations"
MANIFEST = "manifest.json"
_DTYPES = ("float32", "float16", "bfloat16")


# --- progress ---------------------------------------------------------------------------------


@contextlib.contextmanager
def progress_reporter(progress: bool | Progress | None, total: int, desc: str) -> Iterator[Callable[[int], None]]:
    """``report(done)`` for long work: ``progress=True`` draws a tqdm bar (a notebook widget in Jupyter),
    a callable is called as ``progress(done, total)`` (the sweeps' protocol: raising from it cancels),
    ``False`` / ``None`` reports nothing."""
    if callable(progress):
        cb = progress
        yield lambda done: cb(done, total)
        return
    if not progress:
        yield lambda done: None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm comes with transformers
        yield lambda done: None
        return
    bar = tqdm(total=total, desc=desc, leave=False)
    state = {"n": 0}

    def report(done: int) -> None:
        bar.update(done - state["n"])
        state["n"] = done

    try:
        yield report
    finally:
        bar.close()


# --- sites and tokens ----------------------------------------------------------------------------


def select_rows(site: Site, act: torch.Tensor) -> torch.Tensor:
    """The activation of ``site`` (a whole captured tensor, batch first) as rows ``[tokens, d]``.

    The site's head and position are selected; the remaining trailing axes are flattened. Only
    ``[batch, pos, ...]`` sites have one row per token (not attention patterns)."""
    from interp_widget.tracing.interventions import _select

    if site.pos_axis != 1:
        msg = (f"site {site.hook_name!r} has no one-vector-per-token layout ([batch, head, query, key]); "
               "capture a [batch, pos, ...] site such as hook_resid_post, mlp.hook_post or attn.hook_z")
        raise UnknownSiteError(msg)
    part = _select(site, act, pos_index=site.position)
    if site.position is not None:
        return part.reshape(part.shape[0], -1)
    return part.reshape(part.shape[0] * part.shape[1], -1)


def unselect_rows(site: Site, rows: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """Rows ``[tokens, d]`` back into the shape of ``site``'s selected part of ``act`` (an intervention value)."""
    from interp_widget.tracing.interventions import _select

    return rows.reshape(_select(site, act, pos_index=site.position).shape)


def as_sequences(tokens: Any, model: Model | None = None) -> list[torch.Tensor]:
    """Input sequences as 1-D LongTensors: a ``[n, pos]`` / ``[pos]`` tensor, a list of 1-D tensors, or a
    list of strings (each tokenized on its own with ``model``'s tokenizer)."""
    import torch

    if isinstance(tokens, torch.Tensor):
        if tokens.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            msg = f"tokens must be an integer tensor, got {tokens.dtype}"
            raise InputMismatchError(msg)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2:
            msg = f"tokens must be [n_sequences, pos] or [pos], got shape {tuple(tokens.shape)}"
            raise InputMismatchError(msg)
        return list(tokens.long())
    if isinstance(tokens, str):
        tokens = [tokens]
    seqs: list[torch.Tensor] = []
    for i, t in enumerate(tokens):
        if isinstance(t, str):
            if model is None:
                msg = "text inputs need a model to tokenize them"
                raise InputMismatchError(msg)
            seqs.append(model.to_tokens(t)[0].long())
        elif isinstance(t, torch.Tensor) and t.ndim == 1:
            seqs.append(t.long())
        else:
            msg = f"sequence {i} is a {type(t).__name__}; expected a string or a 1-D token tensor"
            raise InputMismatchError(msg)
    if not seqs:
        msg = "no input sequences given"
        raise InputMismatchError(msg)
    return seqs


def iter_activations(model: Model, sites: Sequence[Site], seqs: Sequence[torch.Tensor], *, batch_size: int,
                     shapes: dict[str, list[int]] | None = None) -> Iterator[tuple[int, int, dict[str, torch.Tensor]]]:
    """Run ``seqs`` in batches of equal-length sequences; yield ``(first_seq, n_seqs, {hook: rows})``.

    Rows are ``[tokens, d]`` on the CPU (see :func:`select_rows`); ``"tokens"``, ``"sequence"`` and
    ``"position"`` give each row's token id, sequence index (from ``first_seq``) and position.
    ``shapes``, if given, is filled with each site's per-token shape before flattening."""
    import torch

    from interp_widget.analysis.sweeps import run_backend

    i, n = 0, len(seqs)
    while i < n:
        j = i + 1
        while j < n and j - i < batch_size and seqs[j].shape[0] == seqs[i].shape[0]:
            j += 1
        batch = torch.stack(list(seqs[i:j]))
        with torch.no_grad():
            res = run_backend(model, batch, capture=list(sites), stop_after_capture=True)
        out: dict[str, torch.Tensor] = {s.hook_name: select_rows(s, res.cache[s.hook_name]).detach().cpu()
                                        for s in sites}
        if shapes is not None:
            for s in sites:
                full = list(res.cache[s.hook_name].shape)
                if s.head is not None and s.head_axis is not None:
                    del full[s.head_axis]
                shapes[s.hook_name] = full[1:] if s.position is not None else full[2:]
        b, p = batch.shape
        seq_idx = torch.arange(i, j, dtype=torch.int32)[:, None].expand(b, p)
        pos_idx = torch.arange(p, dtype=torch.int32)[None].expand(b, p)
        tok = batch.to(torch.int32)
        pos_sel = sites[0].position
        if pos_sel is not None:
            tok, seq_idx, pos_idx = tok[:, pos_sel], seq_idx[:, pos_sel], pos_idx[:, pos_sel]
        out["tokens"], out["sequence"], out["position"] = tok.reshape(-1), seq_idx.reshape(-1), pos_idx.reshape(-1)
        yield i, j - i, out
        i = j


# --- capture ---------------------------------------------------------------------------------


def _plan(seqs: Sequence[torch.Tensor], shard_tokens: int, per_seq: Callable[[int], int]) -> list[dict[str, Any]]:
    shards: list[dict[str, Any]] = []
    start, count = 0, 0
    for i, s in enumerate(seqs):
        count += per_seq(int(s.shape[0]))
        if count >= shard_tokens or i == len(seqs) - 1:
            shards.append({"file": f"shard_{len(shards):05d}.safetensors", "start_seq": start, "end_seq": i + 1,
                           "n_tokens": count, "done": False})
            start, count = i + 1, 0
    return shards


def _fingerprint(seqs: Sequence[torch.Tensor], meta: dict[str, Any]) -> str:
    h = hashlib.sha256(json.dumps(meta, sort_keys=True).encode())
    for s in seqs:
        h.update(int(s.shape[0]).to_bytes(4, "little"))
        h.update(s.to("cpu").long().numpy().tobytes())
    return h.hexdigest()


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _shard_complete(path: Path, n_tokens: int) -> bool:
    """A shard file on disk whose header is readable and whose row count matches the plan."""
    from safetensors import safe_open

    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            return int(f.get_slice("tokens").get_shape()[0]) == n_tokens
    except Exception:
        return False


def capture_activations(model: Any, sites: str | Site | Sequence[str | Site], tokens_or_dataset: Any,
                        out_dir: str | os.PathLike[str], *, shard_tokens: int = 65536, batch_size: int = 16,
                        dtype: str = "float32", progress: bool | Progress | None = True) -> ActivationStore:
    """Capture the activations of ``sites`` over ``tokens_or_dataset`` into ``out_dir``; return the store.

    ``tokens_or_dataset``: a ``[n_sequences, pos]`` token tensor, a list of 1-D token tensors, or a list of
    strings. Rerunning on a partly written ``out_dir`` resumes (finished shards are skipped); a directory
    holding a different capture is refused. See the module docstring for the layout.
    """
    import torch
    from safetensors.torch import save_file

    from interp_widget.models.loading import load

    model = load(model)
    site_list = [sites] if isinstance(sites, (str, Site)) else list(sites)
    if not site_list:
        msg = "capture_activations needs at least one site"
        raise InputMismatchError(msg)
    checked = [model.check_site(s) for s in site_list]
    if len({s.hook_name for s in checked}) < len(checked):
        msg = f"each hook may be captured once per store (tensors are named by hook): {[str(s) for s in checked]}"
        raise InputMismatchError(msg)
    if len({s.position for s in checked}) > 1:
        msg = "all sites of one capture must select the same position (or none)"
        raise InputMismatchError(msg)
    if dtype not in _DTYPES:
        msg = f"dtype {dtype!r} is not supported; use one of {', '.join(_DTYPES)}"
        raise ValueError(msg)
    if shard_tokens < 1 or batch_size < 1:
        msg = f"shard_tokens and batch_size must be >= 1 (got {shard_tokens}, {batch_size})"
        raise ValueError(msg)
    seqs = as_sequences(tokens_or_dataset, model)
    position = checked[0].position
    per_seq = (lambda p: 1) if position is not None else (lambda p: p)
    meta = {"sites": [str(s) for s in checked], "dtype": dtype, "shard_tokens": shard_tokens, "model": model.name}
    key = _fingerprint(seqs, meta)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / MANIFEST
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("key") != key:
            msg = (f"{out} already holds a different capture (other sites, inputs, dtype or shard size); "
                   "use a new out_dir or delete it")
            raise InputMismatchError(msg)
    else:
        manifest = {"format": FORMAT, "version": 1, "key": key, **meta,
                    "site_shapes": {}, "n_sequences": len(seqs), "shards": _plan(seqs, shard_tokens, per_seq),
                    "complete": False}
    for tmp in out.glob("*.tmp"):  # left by a killed run
        tmp.unlink()
    shards = manifest["shards"]
    for sh in shards:  # a shard renamed into place just before a kill, not yet in the manifest
        if not sh["done"] and _shard_complete(out / sh["file"], sh["n_tokens"]):
            sh["done"] = True
    _write_json_atomic(manifest_path, manifest)
    total = sum(sh["n_tokens"] for sh in shards)
    torch_dtype = getattr(torch, dtype)
    shapes: dict[str, list[int]] = {}
    with progress_reporter(progress, total, "capturing activations") as report:
        done_tokens = sum(sh["n_tokens"] for sh in shards if sh["done"])
        report(done_tokens)
        for sh in shards:
            if sh["done"]:
                continue
            parts: dict[str, list[torch.Tensor]] = {}
            for first, n, rows in iter_activations(model, checked, seqs[sh["start_seq"]:sh["end_seq"]],
                                                   batch_size=batch_size, shapes=shapes):
                del first, n
                for name, t in rows.items():
                    parts.setdefault(name, []).append(t.to(torch_dtype) if t.is_floating_point() else t)
                done_tokens += int(rows["tokens"].shape[0])
                report(done_tokens)
            tensors = {name: torch.cat(ts).contiguous() for name, ts in parts.items()}
            tensors["sequence"] += sh["start_seq"]
            del parts
            manifest["site_shapes"] = manifest["site_shapes"] or shapes
            tmp = out / (sh["file"] + ".tmp")
            save_file(tensors, str(tmp))
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, out / sh["file"])
            sh["done"] = True
            _write_json_atomic(manifest_path, manifest)
            del tensors
    manifest["complete"] = True
    _write_json_atomic(manifest_path, manifest)
    return ActivationStore(out)


# --- reading ---------------------------------------------------------------------------------


class ActivationStore:
    """A capture written by :func:`capture_activations`, read back from ``out_dir``.

    ``allow_partial=True`` opens a capture that was interrupted (only its finished shards are read).
    """

    def __init__(self, out_dir: str | os.PathLike[str], *, allow_partial: bool = False) -> None:
        self.path = Path(out_dir)
        mpath = self.path / MANIFEST
        if not mpath.is_file():
            msg = f"{self.path} is not an activation store (no {MANIFEST}); write one with capture_activations"
            raise FileNotFoundError(msg)
        self.manifest: dict[str, Any] = json.loads(mpath.read_text())
        if self.manifest.get("format") != FORMAT:
            msg = f"{mpath} is not an interp-widget activation manifest"
            raise InputMismatchError(msg)
        done = [sh for sh in self.manifest["shards"] if sh["done"]]
        if len(done) < len(self.manifest["shards"]) and not allow_partial:
            msg = (f"the capture in {self.path} is incomplete ({len(done)} of {len(self.manifest['shards'])} shards); "
                   "rerun capture_activations with the same arguments to resume, or pass allow_partial=True")
            raise InputMismatchError(msg)
        self.shards: list[dict[str, Any]] = done

    @property
    def sites(self) -> list[str]:
        """Hook names of the captured sites (tensor names in each shard)."""
        return list(self.manifest["site_shapes"]) or [Site.parse(s.split("[")[0]).hook_name
                                                     for s in self.manifest["sites"]]

    @property
    def n_tokens(self) -> int:
        return sum(int(sh["n_tokens"]) for sh in self.shards)

    def __len__(self) -> int:
        return self.n_tokens

    def d(self, site: str | Site | None = None) -> int:
        """Width of one row of ``site``'s activations."""
        return math.prod(self.manifest["site_shapes"][self._site(site)])

    def _site(self, site: str | Site | None) -> str:
        names = self.sites
        if site is None:
            if len(names) != 1:
                msg = f"this store holds several sites ({', '.join(names)}); pass site="
                raise UnknownSiteError(msg)
            return names[0]
        name = Site.parse(site).hook_name
        if name not in names:
            msg = f"site {name!r} was not captured in {self.path}; it holds {', '.join(names)}"
            raise UnknownSiteError(msg)
        return name

    def shard(self, i: int, keys: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Tensors of the ``i``-th finished shard (all, or only ``keys``)."""
        from safetensors import safe_open

        if not 0 <= i < len(self.shards):
            msg = f"shard {i} is out of range: the store has {len(self.shards)} finished shards (0..{len(self.shards) - 1})"
            raise IndexError(msg)
        with safe_open(str(self.path / self.shards[i]["file"]), framework="pt") as f:
            return {k: f.get_tensor(k) for k in (keys if keys is not None else f.keys())}

    def read(self, key: str | Site | None = None) -> torch.Tensor:
        """One site's activations (or ``"tokens"`` / ``"sequence"`` / ``"position"``) over all shards, in order."""
        import torch

        name = key if key in ("tokens", "sequence", "position") else self._site(key)
        return torch.cat([self.shard(i, [name])[name] for i in range(len(self.shards))])

    def batches(self, site: str | Site | None = None, *, batch_size: int = 4096, shuffle: bool = True,
                seed: int = 0, buffer_shards: int = 2, drop_last: bool = False) -> Iterator[torch.Tensor]:
        """One pass over ``site``'s rows in batches ``[batch_size, d]`` (float32).

        With ``shuffle``, shards come in a seeded random order into a mixing buffer of about
        ``buffer_shards`` shards; whenever it is full it is permuted and half of it is handed out, so rows
        mix across shards while memory stays bounded. Every row comes out exactly once per pass.
        """
        import torch

        name = self._site(site)
        if batch_size < 1:
            msg = f"batch_size must be >= 1, got {batch_size}"
            raise ValueError(msg)
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self.shards), generator=g).tolist() if shuffle else range(len(self.shards))
        biggest = max((int(sh["n_tokens"]) for sh in self.shards), default=0)
        cap = max(batch_size, max(1, buffer_shards) * biggest)
        buf = torch.empty(0, self.d(name))
        for i in order:
            buf = torch.cat([buf, self.shard(i, [name])[name].float()])
            if not shuffle:
                n_out = (buf.shape[0] // batch_size) * batch_size
            elif buf.shape[0] >= cap:
                buf = buf[torch.randperm(buf.shape[0], generator=g)]
                n_out = max(batch_size, (buf.shape[0] // 2 // batch_size) * batch_size)
                n_out = min(n_out, (buf.shape[0] // batch_size) * batch_size)
            else:
                continue
            for s in range(0, n_out, batch_size):
                yield buf[s:s + batch_size]
            buf = buf[n_out:]
        if shuffle and buf.shape[0]:
            buf = buf[torch.randperm(buf.shape[0], generator=g)]
        for s in range(0, buf.shape[0], batch_size):
            if drop_last and s + batch_size > buf.shape[0]:
                break
            yield buf[s:s + batch_size]

    def __repr__(self) -> str:
        sites = ", ".join(f"{s} (d={self.d(s)})" for s in self.sites)
        return (f"<ActivationStore {str(self.path)!r}: {self.n_tokens} tokens in {len(self.shards)} shards; "
                f"{sites}; model {self.manifest.get('model', '?')!r}>")
