// Decode the payloads Python wrote (tests/test_schema.py --write) and compare with Python's decoded values.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { TensorPayload } from "./generated";
import { decode, halfToFloat, toDataView } from "./tensor";
import { CommandError, decodeBase64Payloads, putBuffers, unpackReply } from "./wire";
import { maxPool2d } from "../attention/math";

const here = dirname(fileURLToPath(import.meta.url));
const golden = JSON.parse(readFileSync(join(here, "fixtures/golden.json"), "utf8"));
const blob = readFileSync(join(here, "fixtures/golden.bin"));

interface Ref { start: number; length: number }
// a fresh, unaligned copy: DataView reads must not depend on alignment
function view(ref: Ref): DataView {
  const buf = new ArrayBuffer(ref.length + 1);
  new Uint8Array(buf, 1).set(blob.subarray(ref.start, ref.start + ref.length));
  return new DataView(buf, 1, ref.length);
}
const num = (v: number | string) => (typeof v === "number" ? v : v === "nan" ? Number.NaN : v === "inf" ? Infinity : -Infinity);

describe("golden payloads written by Python", () => {
  for (const c of golden.payloads) {
    it(`decodes ${c.name}`, () => {
      const p = { ...c.payload, data: view(c.bytes) } as TensorPayload;
      const t = decode(p);
      expect(t.shape).toEqual(c.payload.shape);
      const expected = (c.expected as (number | string)[]).map(num);
      expect(t.values.length).toBe(expected.length);
      expected.forEach((e, i) => {
        if (Number.isNaN(e)) expect(Number.isNaN(t.values[i])).toBe(true);
        else expect(t.values[i]).toBeCloseTo(e, 6);
      });
    });
  }

  it("narrows wide dtypes on the Python side", () => {
    const dtypes = Object.fromEntries(golden.payloads.map((c: { name: string; payload: { dtype: string } }) => [c.name, c.payload.dtype]));
    expect(dtypes["float64 narrowed"]).toBe("float32");
    expect(dtypes["int64 narrowed"]).toBe("int32");
    expect(dtypes["bool"]).toBe("uint8");
  });

  it("unpacks a command reply and puts its buffer back", () => {
    const { response, buffers, expected } = golden.reply;
    const reply = unpackReply(structuredClone(response), buffers.map(view));
    expect(reply.ok).toBe(true);
    expect(reply.window).toMatchObject({ prompt: 1, layer: 0, head: 3, q0: 2, q1: 5, k0: 1, k1: 5 });
    const t = decode(reply.window.values);
    expect(t.shape).toEqual([3, 4]);
    expected.forEach((e: number, i: number) => expect(t.values[i]).toBeCloseTo(e, 6));
  });

  it("turns an error reply into a CommandError naming the Python exception", () => {
    expect(() => unpackReply(golden.error_reply, [])).toThrow(CommandError);
    try {
      unpackReply(golden.error_reply, []);
    } catch (e) {
      expect((e as CommandError).typeName).toBe("IndexError");
      expect((e as CommandError).message).toContain("layer 9 is out of range");
    }
  });

  it("max-pools exactly like Python (uneven blocks)", () => {
    const m = golden.maxpool;
    const out = maxPool2d(m.input, m.rows, m.cols, m.out_rows, m.out_cols);
    expect([out.rows, out.cols]).toEqual(m.expected_shape);
    expect(Array.from(out.values)).toEqual(m.expected);
  });
});

describe("codec edge cases", () => {
  it("decodes half floats", () => {
    expect(halfToFloat(0x3c00)).toBe(1);
    expect(halfToFloat(0xc000)).toBe(-2);
    expect(halfToFloat(0x7bff)).toBe(65504);
    expect(halfToFloat(0x0001)).toBe(2 ** -24);
    expect(halfToFloat(0x7c00)).toBe(Infinity);
    expect(Number.isNaN(halfToFloat(0x7e00))).toBe(true);
  });

  it("rejects a payload whose size does not match its shape", () => {
    const p: TensorPayload = { dtype: "float32", shape: [2, 2], data: new DataView(new ArrayBuffer(12)) };
    expect(() => decode(p)).toThrow(/needs 16 bytes, got 12/);
  });

  it("reads base64 payloads of static pages", () => {
    const doc = { a: [{ dtype: "int16", shape: [2], data: btoa(String.fromCharCode(1, 0, 0xff, 0xff)) }] };
    const out = decodeBase64Payloads(doc) as unknown as { a: TensorPayload[] };
    expect(Array.from(decode(out.a[0]).values)).toEqual([1, -1]);
  });

  it("checks buffer paths", () => {
    expect(() => putBuffers({}, [["a"]], [])).toThrow(/1 buffer paths but 0 buffers/);
    expect(() => putBuffers({ a: 1 }, [["a", "b"]], [toDataView(new Uint8Array(1))])).toThrow(/bad buffer path/);
  });
});
