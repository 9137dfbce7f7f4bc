"""TensorPayload: how an array crosses the wire.

A payload is ``{dtype, shape, data}`` with ``data`` the raw little-endian bytes in
C order (a ``DataView`` on the JavaScript side, never a JSON list of numbers).
Quantised payloads add ``scale`` and ``offset``: the value is ``q * scale + offset``
for the stored ``uint8`` ``q``.

float64 is narrowed to float32, int64 to int32 (refused if a value does not fit),
bool to uint8: the wire carries nothing wider than 32 bits.

This module imports numpy and pydantic only (no torch).
"""

from __future__ import annotations

import base64
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

WireDType = Literal["uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32"]
WIRE_DTYPES: tuple[str, ...] = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32")

#: wider dtypes and what they are narrowed to
_NARROW: dict[str, str] = {"float64": "float32", "int64": "int32", "uint64": "uint32", "bool": "uint8"}


class TensorPayload(BaseModel):
    """An n-dimensional array on the wire: dtype, shape and the raw bytes (little-endian, C order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dtype: WireDType = Field(description="element type of `data` (little-endian)")
    shape: list[int] = Field(description="array shape, C order")
    data: bytes = Field(description="raw bytes; a DataView in the browser", json_schema_extra={"tsType": "DataView"})
    scale: float | None = Field(default=None, description="quantised payloads: value = q * scale + offset")
    offset: float | None = Field(default=None, description="quantised payloads: value = q * scale + offset")

    @model_validator(mode="after")
    def _check_size(self) -> TensorPayload:
        if any(d < 0 for d in self.shape):
            msg = f"shape {self.shape} has a negative dimension"
            raise ValueError(msg)
        expected = int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize
        if len(self.data) != expected:
            msg = f"{self.dtype} payload of shape {self.shape} needs {expected} bytes, got {len(self.data)}"
            raise ValueError(msg)
        if (self.scale is None) != (self.offset is None):
            msg = "a quantised payload needs both scale and offset"
            raise ValueError(msg)
        if self.scale is not None and self.dtype != "uint8":
            msg = f"only uint8 payloads are quantised; got scale/offset on {self.dtype}"
            raise ValueError(msg)
        return self

    @property
    def nbytes(self) -> int:
        return len(self.data)

    def to_wire(self) -> dict[str, Any]:
        """A dict for synced widget state / command replies: ``data`` stays ``bytes`` (a binary buffer)."""
        out: dict[str, Any] = {"dtype": self.dtype, "shape": list(self.shape), "data": self.data}
        if self.scale is not None:
            out["scale"] = self.scale
            out["offset"] = self.offset
        return out

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict with ``data`` base64-encoded: for static HTML only, never for live widgets."""
        out = self.to_wire()
        out["data"] = base64.b64encode(self.data).decode("ascii")
        return out

    @classmethod
    def from_wire(cls, obj: dict[str, Any]) -> TensorPayload:
        """Inverse of :meth:`to_wire` (also accepts ``memoryview`` data, as ipywidgets delivers it)."""
        data = obj["data"]
        if isinstance(data, str):
            data = base64.b64decode(data)
        return cls(dtype=obj["dtype"], shape=list(obj["shape"]), data=bytes(data),
                   scale=obj.get("scale"), offset=obj.get("offset"))


def wire_dtype(dtype: np.dtype[Any] | str) -> str:
    """The dtype an array of ``dtype`` travels as (raises for complex, object, ...)."""
    name = np.dtype(dtype).name
    name = _NARROW.get(name, name)
    if name not in WIRE_DTYPES:
        msg = f"arrays of dtype {np.dtype(dtype).name} cannot be sent; use one of {', '.join(WIRE_DTYPES)}"
        raise TypeError(msg)
    return name


def encode(
    array: Any,
    *,
    quantize: Literal["uint8"] | None = None,
    lo: float | None = None,
    hi: float | None = None,
) -> TensorPayload:
    """Encode an array-like (numpy array, CPU torch tensor, nested list) as a :class:`TensorPayload`.

    ``quantize="uint8"`` maps ``[lo, hi]`` (default: the array's min and max) linearly onto
    0..255 (values outside are clipped; NaN becomes ``lo``); decoding gives back the values
    within ``(hi - lo) / 510``.
    """
    arr = np.asarray(array)
    if quantize is not None:
        if quantize != "uint8":
            msg = f"quantize must be 'uint8' or None, not {quantize!r}"
            raise ValueError(msg)
        return _quantize_uint8(arr, lo, hi)
    target = wire_dtype(arr.dtype)
    if target != arr.dtype.name:
        if arr.dtype.kind in "iu" and arr.size:
            info = np.iinfo(target)
            amin, amax = int(arr.min()), int(arr.max())
            if amin < info.min or amax > info.max:
                msg = f"{arr.dtype.name} values in [{amin}, {amax}] do not fit {target}; the wire carries no 64-bit integers"
                raise OverflowError(msg)
        arr = arr.astype(target)
    arr = np.asarray(arr, dtype=np.dtype(target).newbyteorder("<"))
    # tobytes() writes C order whatever the strides (ascontiguousarray would turn a 0-d array into 1-d)
    return TensorPayload(dtype=target, shape=list(arr.shape), data=arr.tobytes(order="C"))  # type: ignore[arg-type]


def _quantize_uint8(arr: np.ndarray, lo: float | None, hi: float | None) -> TensorPayload:
    x = arr.astype(np.float32, copy=False)
    finite = x[np.isfinite(x)]
    if lo is None:
        lo = float(finite.min()) if finite.size else 0.0
    if hi is None:
        hi = float(finite.max()) if finite.size else lo
    if not hi >= lo:
        msg = f"quantisation range needs lo <= hi; got lo={lo}, hi={hi}"
        raise ValueError(msg)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    q = np.nan_to_num((x - lo) / scale, nan=0.0, posinf=255.0, neginf=0.0)
    q = np.clip(np.rint(q), 0, 255).astype(np.uint8)
    return TensorPayload(dtype="uint8", shape=list(arr.shape), data=q.tobytes(order="C"),
                         scale=float(scale), offset=float(lo))


def decode(payload: TensorPayload | dict[str, Any]) -> np.ndarray:
    """Decode a payload (or its wire dict) to a numpy array; quantised payloads come back as float32."""
    p = payload if isinstance(payload, TensorPayload) else TensorPayload.from_wire(payload)
    arr = np.frombuffer(p.data, dtype=np.dtype(p.dtype).newbyteorder("<")).reshape(p.shape)
    if p.scale is not None:
        return arr.astype(np.float32) * np.float32(p.scale) + np.float32(p.offset)
    return arr.astype(np.dtype(p.dtype))  # native byte order, writable copy
