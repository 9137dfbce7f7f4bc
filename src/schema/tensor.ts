// TensorPayload codec: {dtype, shape, data: DataView (+ scale/offset)} -> typed arrays.
// Mirrors interp_widget/schema/tensor.py; bytes are little-endian, C order.
import type { TensorPayload } from "./generated";

export type WireDType = TensorPayload["dtype"];

/** A decoded tensor: float32 values (dequantised, widened from float16, or small integers);
 * float64 for int32/uint32, which float32 cannot hold exactly. */
export interface Tensor {
  shape: number[];
  values: Float32Array | Float64Array;
}

const ITEM_SIZE: Record<WireDType, number> = {
  uint8: 1,
  int8: 1,
  uint16: 2,
  int16: 2,
  uint32: 4,
  int32: 4,
  float16: 2,
  float32: 4,
};

export function itemSize(dtype: WireDType): number {
  const size = ITEM_SIZE[dtype];
  if (size === undefined) throw new Error(`unknown wire dtype ${JSON.stringify(dtype)}`);
  return size;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** IEEE 754 half-precision bits -> number (subnormals, infinities and NaN included). */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const frac = bits & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 0x1f) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** Turn base64 text (static HTML pages) or a buffer into a DataView. */
export function toDataView(data: DataView | ArrayBuffer | ArrayBufferView | string): DataView {
  if (data instanceof DataView) return data;
  if (typeof data === "string") {
    const bin = atob(data);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new DataView(bytes.buffer);
  }
  if (ArrayBuffer.isView(data)) return new DataView(data.buffer, data.byteOffset, data.byteLength);
  return new DataView(data);
}

/** Check a payload's byte length against its dtype and shape. */
export function checkPayload(p: TensorPayload): void {
  const expected = numel(p.shape) * itemSize(p.dtype);
  if (p.data.byteLength !== expected) {
    throw new Error(`${p.dtype} payload of shape [${p.shape}] needs ${expected} bytes, got ${p.data.byteLength}`);
  }
}

/** Decode a payload to numbers (quantised uint8 -> q * scale + offset). */
export function decode(p: TensorPayload): Tensor {
  checkPayload(p);
  const n = numel(p.shape);
  const dv = p.data;
  const out = p.dtype === "int32" || p.dtype === "uint32" ? new Float64Array(n) : new Float32Array(n);
  switch (p.dtype) {
    case "uint8":
      for (let i = 0; i < n; i++) out[i] = dv.getUint8(i);
      break;
    case "int8":
      for (let i = 0; i < n; i++) out[i] = dv.getInt8(i);
      break;
    case "uint16":
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(2 * i, true);
      break;
    case "int16":
      for (let i = 0; i < n; i++) out[i] = dv.getInt16(2 * i, true);
      break;
    case "uint32":
      for (let i = 0; i < n; i++) out[i] = dv.getUint32(4 * i, true);
      break;
    case "int32":
      for (let i = 0; i < n; i++) out[i] = dv.getInt32(4 * i, true);
      break;
    case "float16":
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      break;
    case "float32":
      for (let i = 0; i < n; i++) out[i] = dv.getFloat32(4 * i, true);
      break;
  }
  if (p.scale != null && p.offset != null) {
    const { scale, offset } = p;
    for (let i = 0; i < n; i++) out[i] = out[i] * scale + offset;
  }
  return { shape: [...p.shape], values: out };
}

/** Decode a payload to float32 values (what the views draw from). */
export function decodeFloat32(p: TensorPayload): { shape: number[]; values: Float32Array } {
  const t = decode(p);
  return { shape: t.shape, values: t.values instanceof Float32Array ? t.values : Float32Array.from(t.values) };
}

/** The raw bytes of a uint8 payload (no dequantisation): what thumbnails are drawn from. */
export function rawUint8(p: TensorPayload): Uint8Array {
  if (p.dtype !== "uint8") throw new Error(`expected a uint8 payload, got ${p.dtype}`);
  checkPayload(p);
  return new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength);
}
