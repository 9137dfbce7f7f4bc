"""A CPU model deployment for NDIF 0.1.2 (imported inside the Ray workers of the test stack).

Selected with ``NDIF_MODEL_IMPORT_PATH=iw_ndif_cpu.CpuModelActor`` and
``NDIF_CONTROLLER_IMPORT_PATH=iw_ndif_cpu.ShimControllerActor`` (this directory is on the Ray
workers' ``PYTHONPATH``; ``interp_widget`` is deliberately not, so the client has to ship its code).

* :class:`CpuModelActor`: NDIF's model actor loads onto the GPUs it was given and calls
  ``torch.cuda.synchronize()`` (after loading and after every request); this one loads the checkpoint on the CPU (float32) and passes the
  tokenizer explicitly (with transformers 5.x nnsight's ``TransformersModel(path)`` does not find it).
* two compatibility shims, applied in the controller and in the model actors: the ndif 0.1.2 evaluator
  passes ``trust_remote_code=`` to ``Remotable.describe_checkpoint`` / ``max_tp_size``, which nnsight
  0.8.1 does not accept; and with transformers 5.x ``TransformersModel(path)`` cannot find the tokenizer
  saved beside the weights by itself, so it is passed explicitly.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import ray
from nnsight.modeling.mixins.remotable import Remotable


def _drop_trust_remote_code(fn: Any) -> Any:
    @functools.wraps(fn)
    def wrapper(*args: Any, trust_remote_code: bool = False, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    return wrapper


def apply_shims() -> None:
    """Idempotent. Called at import and again in each actor's ``__init__``: Ray ships an actor class
    that ``@ray.remote`` wrapped by value, so a worker does not necessarily import this module."""
    for name in ("describe_checkpoint", "max_tp_size"):
        fn = getattr(Remotable, name).__func__
        if not getattr(fn, "__wrapped__", None):
            setattr(Remotable, name, classmethod(_drop_trust_remote_code(fn)))


    from nnsight.modeling.transformers import TransformersModel

    init = TransformersModel.__init__
    if not getattr(init, "__wrapped__", None):

        @functools.wraps(init)
        def with_tokenizer(self: Any, repo_id: Any = None, *args: Any, **kwargs: Any) -> None:
            if isinstance(repo_id, str) and kwargs.get("tokenizer") is None:
                from transformers import AutoTokenizer

                kwargs["tokenizer"] = AutoTokenizer.from_pretrained(repo_id)
            init(self, repo_id, *args, **kwargs)

        TransformersModel.__init__ = with_tokenizer  # type: ignore[method-assign]


apply_shims()

from ndif.services.ray.deployments.controller.controller import _ControllerActor  # noqa: E402
from ndif.services.ray.deployments.modeling.base import BaseModelDeployment  # noqa: E402


class CpuModelDeployment(BaseModelDeployment):
    """Loads the model on the CPU in float32; see the module docstring."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        apply_shims()
        super().__init__(*args, **kwargs)

    def load_from_disk(self) -> Any:
        from nnsight.modeling.huggingface import HuggingFaceModel
        from transformers import AutoTokenizer

        repo_id = json.loads(self.model_key.split(":", 1)[1])["repo_id"]
        model = HuggingFaceModel.from_model_key(self.model_key, dispatch=True, dtype="float32",
                                                tokenizer=AutoTokenizer.from_pretrained(repo_id))
        model._module.requires_grad_(False)
        return model

    def cleanup(self) -> None:
        """NDIF's cleanup without the CUDA calls (``torch.cuda.synchronize`` fails on a CPU build)."""
        import gc

        self.kill_switch.clear()
        self.kill_reason = None
        self.execution_ident = None
        self.model.interleaver.cancel()
        gc.collect()


CpuModelActor = ray.remote(num_cpus=0, max_restarts=0)(CpuModelDeployment)


@ray.remote(num_cpus=0, num_gpus=0, max_restarts=0, resources={"head": 1})
class ShimControllerActor(_ControllerActor):
    """NDIF's controller, in a process that has the shims above applied."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        apply_shims()
        super().__init__(*args, **kwargs)
