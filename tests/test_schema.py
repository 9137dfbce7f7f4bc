"""Wire schema: TensorPayload round trips, message models, drift of the generated TypeScript types,
and the golden fixture that vitest decodes (src/schema/fixtures/).

Regenerate the fixture after a deliberate change: ``python tests/test_schema.py --write``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from interp_widget.schema import (
    GetPatternRequest,
    PatternReply,
    PatternWindow,
    TensorPayload,
    decode,
    encode,
    pack,
    unpack,
)
from interp_widget.schema.jsonschema import dumps

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "src" / "schema" / "fixtures"


# --- TensorPayload -----------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["uint8", "int8", "uint16", "int16", "uint32", "int32", "float16", "float32"])
@pytest.mark.parametrize("shape", [(), (0,), (5,), (2, 3), (2, 1, 4)])
def test_round_trip_every_wire_dtype(dtype: str, shape: tuple[int, ...]) -> None:
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    if info is not None:
        arr = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    else:
        arr = rng.standard_normal(shape).astype(dtype)
    p = encode(arr)
    assert p.dtype == dtype
    assert p.shape == list(shape)
    assert len(p.data) == arr.nbytes
    out = decode(p)
    assert out.dtype == np.dtype(dtype) and out.shape == shape
    np.testing.assert_array_equal(out, arr)
    # through the wire dict (bytes as memoryview, as ipywidgets hands them over) and base64 JSON
    wire = p.to_wire()
    wire["data"] = memoryview(wire["data"])
    np.testing.assert_array_equal(decode(wire), arr)
    np.testing.assert_array_equal(decode(TensorPayload.from_wire(json.loads(json.dumps(p.to_json())))), arr)


def test_bytes_are_little_endian_c_order() -> None:
    arr = np.arange(6, dtype=">i4").reshape(2, 3).T  # big-endian, not C-contiguous
    p = encode(arr)
    assert p.data == np.ascontiguousarray(arr).astype("<i4").tobytes()
    assert p.data[:4] == (0).to_bytes(4, "little") and p.data[4:8] == (3).to_bytes(4, "little")


def test_wide_dtypes_are_narrowed() -> None:
    assert encode(np.array([0.1, 2.0])).dtype == "float32"
    assert encode(np.array([1, -2], dtype=np.int64)).dtype == "int32"
    assert encode(np.array([1, 2], dtype=np.uint64)).dtype == "uint32"
    assert encode(np.array([True, False])).dtype == "uint8"
    np.testing.assert_array_equal(decode(encode(np.array([True, False]))), [1, 0])
    with pytest.raises(OverflowError, match="do not fit int32"):
        encode(np.array([2**40], dtype=np.int64))
    with pytest.raises(TypeError, match="cannot be sent"):
        encode(np.array([1 + 2j]))


def test_quantised_uint8_error_is_within_half_a_step() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(-3.0, 5.0, size=(4, 50)).astype(np.float32)
    p = encode(x, quantize="uint8")
    assert p.dtype == "uint8" and p.scale is not None and p.offset == pytest.approx(float(x.min()))
    err = np.abs(decode(p) - x).max()
    assert err <= (x.max() - x.min()) / 510 + 1e-6
    # a fixed range clips outside values; NaN becomes lo
    q = decode(encode(np.array([-0.5, 0.0, 0.5, 1.0, 2.0, np.nan]), quantize="uint8", lo=0.0, hi=1.0))
    np.testing.assert_allclose(q, [0.0, 0.0, 0.5, 1.0, 1.0, 0.0], atol=1 / 510 + 1e-6)
    # a constant array keeps its value
    np.testing.assert_allclose(decode(encode(np.full(3, 0.25), quantize="uint8")), 0.25)


def test_payload_validation() -> None:
    with pytest.raises(ValidationError, match="needs 12 bytes"):
        TensorPayload(dtype="float32", shape=[3], data=b"\x00" * 11)
    with pytest.raises(ValidationError, match="needs both scale and offset"):
        TensorPayload(dtype="uint8", shape=[1], data=b"\x00", scale=1.0)
    with pytest.raises(ValidationError, match="only uint8 payloads are quantised"):
        TensorPayload(dtype="float32", shape=[1], data=b"\x00" * 4, scale=1.0, offset=0.0)
    with pytest.raises(ValidationError):
        TensorPayload(dtype="float64", shape=[1], data=b"\x00" * 8)  # type: ignore[arg-type]


# --- messages ------------------------------------------------------------------------------
def test_get_pattern_request_validation() -> None:
    req = GetPatternRequest.model_validate({"prompt": 0, "layer": 1, "head": 2, "q0": 0, "q1": 4, "k0": 0, "k1": 4})
    assert req.precision == "float16" and req.max_size is None
    with pytest.raises(ValidationError, match="empty window"):
        GetPatternRequest(prompt=0, layer=0, head=0, q0=5, q1=5, k0=0, k1=3)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        GetPatternRequest(prompt=0, layer=-1, head=0, q0=0, q1=1, k0=0, k1=1)
    with pytest.raises(ValidationError, match="Extra inputs"):
        GetPatternRequest.model_validate({"prompt": 0, "layer": 0, "head": 0, "q0": 0, "q1": 1, "k0": 0, "k1": 1, "x": 1})


def test_pack_unpack_round_trip() -> None:
    win = PatternWindow(prompt=0, layer=1, head=2, q0=0, q1=2, k0=0, k1=2, values=encode(np.eye(2, dtype=np.float32)))
    obj = {"a": [b"xy", {"b": bytearray(b"z")}], "reply": PatternReply(window=win).model_dump()}
    stripped, paths, buffers = pack(obj)
    assert paths == [["a", 0], ["a", 1, "b"], ["reply", "window", "values", "data"]]
    assert stripped["a"][0] is None and stripped["reply"]["window"]["values"]["data"] is None
    json.dumps(stripped)  # no bytes left
    back = unpack(stripped, paths, buffers)
    assert back["a"] == [b"xy", {"b": b"z"}]
    assert PatternReply.model_validate(back["reply"]) == PatternReply(window=win)
    with pytest.raises(ValueError, match="2 buffer paths but 1 buffers"):
        unpack({}, [["a"], ["b"]], [b""])


# --- drift of the generated TypeScript ----------------------------------------------------------
def test_wire_schema_json_matches_models() -> None:
    committed = (ROOT / "src" / "schema" / "wire-schema.json").read_text()
    assert committed == dumps(), "src/schema/wire-schema.json is stale: run `npm run gen:types`"


def test_generated_typescript_matches_models() -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "json-schema-to-typescript").is_dir():
        pytest.skip("needs node and `npm install` (json-schema-to-typescript)")
    res = subprocess.run([node, "scripts/gen-types.mjs", "--check"], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHON": sys.executable, "PATH": str(Path(node).parent)}, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_drift_check_fails_on_a_changed_model(tmp_path: Path) -> None:
    """The drift check really compares: a schema with a renamed field no longer matches."""
    committed = json.loads((ROOT / "src" / "schema" / "wire-schema.json").read_text())
    current = json.loads(dumps())
    assert committed == current
    current["$defs"]["GetPatternRequest"]["properties"]["q_start"] = current["$defs"]["GetPatternRequest"]["properties"].pop("q0")
    assert committed != current


def test_schema_modules_import_no_torch() -> None:
    code = ("import sys, interp_widget.schema, interp_widget.widgets.attention, interp_widget.report; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)


# --- golden fixture (read by src/schema/golden.test.ts) -----------------------------------------
def _golden() -> tuple[dict[str, Any], bytes]:
    from interp_widget.widgets._commands import envelope
    from interp_widget.widgets._patterns import maxpool2d

    blob = bytearray()

    def add(data: bytes) -> dict[str, int]:
        ref = {"start": len(blob), "length": len(data)}
        blob.extend(data)
        return ref

    def num(v: float) -> float | str:
        return v if np.isfinite(v) else str(v)  # "nan", "inf", "-inf"

    cases: list[tuple[str, np.ndarray, dict[str, Any]]] = [
        ("float32", np.array([[0.0, 1.5, -2.25], [1024.125, 0.1, -0.0]], dtype=np.float32), {}),
        ("float64 narrowed", np.array([[0.1, -7.5]], dtype=np.float64), {}),
        ("int64 narrowed", np.array([-3, 0, 2**31 - 1], dtype=np.int64), {}),
        ("float16", np.array([0.0, 1.0, -2.0, 65504.0, 6.1035156e-05, 5.9604645e-08, np.inf, -np.inf, np.nan], dtype=np.float16), {}),
        ("int16", np.array([-32768, -1, 32767], dtype=np.int16), {}),
        ("uint16", np.array([0, 1, 65535], dtype=np.uint16), {}),
        ("int8", np.array([-128, 5, 127], dtype=np.int8), {}),
        ("uint32", np.array([0, 4294967295], dtype=np.uint32), {}),
        ("bool", np.array([[True, False], [False, True]]), {}),
        ("uint8 quantised [0, 1]", np.array([0.0, 0.25, 0.5, 1.0], dtype=np.float32), {"quantize": "uint8", "lo": 0.0, "hi": 1.0}),
        ("uint8 quantised min-max", np.array([[-1.0, 0.0], [3.0, 1.0]], dtype=np.float32), {"quantize": "uint8"}),
    ]
    payloads = []
    for name, arr, kwargs in cases:
        p = encode(arr, **kwargs)
        meta = {k: v for k, v in p.to_wire().items() if k != "data"}
        payloads.append({"name": name, "payload": meta, "bytes": add(p.data),
                         "expected": [num(float(v)) for v in decode(p).ravel()]})

    values = np.arange(12, dtype=np.float32).reshape(3, 4) / 16
    win = PatternWindow(prompt=1, layer=0, head=3, q0=2, q1=5, k0=1, k1=5, values=encode(values.astype(np.float16)))
    response, buffers = envelope(PatternReply(window=win))
    reply = {"response": response, "buffers": [add(b) for b in buffers], "expected": values.ravel().tolist()}

    from interp_widget.widgets._commands import error_reply

    err_response, err_buffers = envelope(error_reply(IndexError("layer 9 is out of range")))
    assert err_buffers == []

    rng = np.random.default_rng(0)
    mat = rng.integers(0, 100, size=(7, 10)).astype(np.float32)
    pooled = maxpool2d(mat, 3, 4)
    maxpool = {"rows": 7, "cols": 10, "out_rows": 3, "out_cols": 4, "input": mat.ravel().tolist(),
               "expected_shape": list(pooled.shape), "expected": pooled.ravel().tolist()}
    doc = {"payloads": payloads, "reply": reply, "error_reply": err_response, "maxpool": maxpool}
    return doc, bytes(blob)


def test_golden_fixture_is_current() -> None:
    doc, blob = _golden()
    assert json.loads((FIXTURES / "golden.json").read_text()) == json.loads(json.dumps(doc)), \
        "golden fixture is stale: python tests/test_schema.py --write"
    assert (FIXTURES / "golden.bin").read_bytes() == blob


if __name__ == "__main__" and "--write" in sys.argv:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    d, b = _golden()
    (FIXTURES / "golden.json").write_text(json.dumps(d, indent=1) + "\n")
    (FIXTURES / "golden.bin").write_bytes(b)
    print(f"wrote {FIXTURES}/golden.json and golden.bin ({len(b)} bytes)")
