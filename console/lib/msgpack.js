// msgpack.js - the msgpack the console needs (docs/contract.md §3): a strict decoder
// of one value, and an encoder of canonical msgpack (shortest headers, map
// keys sorted by their UTF-8 bytes) to re-encode what was decoded and to
// build the bytes an envelope's signature covers.
//
// Values: nil -> null, booleans, integers -> Number (BigInt beyond 2^53),
// str -> string, bin -> Uint8Array, array -> Array, map -> plain object
// (string keys only, no duplicates).  Floats and extension types are
// refused: no lianban structure has them.

const MAX_DEPTH = 32;
const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8enc = new TextEncoder();

export class MsgpackError extends Error {}

function fail(msg) {
  throw new MsgpackError(msg);
}

// Decodes exactly one value from bytes; trailing bytes are an error.
export function decode(bytes) {
  if (!(bytes instanceof Uint8Array)) fail("not bytes");
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 0;

  function need(n) {
    if (pos + n > bytes.length) fail("truncated at byte " + pos);
  }
  function u8() { need(1); return bytes[pos++]; }
  function u16() { need(2); const v = dv.getUint16(pos); pos += 2; return v; }
  function u32() { need(4); const v = dv.getUint32(pos); pos += 4; return v; }
  function u64() {
    need(8);
    const v = dv.getBigUint64(pos);
    pos += 8;
    return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  function i64() {
    need(8);
    const v = dv.getBigInt64(pos);
    pos += 8;
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ?
      Number(v) : v;
  }
  function raw(n) { need(n); const v = bytes.slice(pos, pos + n); pos += n; return v; }
  function str(n) {
    need(n);
    let s;
    try {
      s = utf8.decode(bytes.subarray(pos, pos + n));
    } catch (e) {
      fail("a string is not UTF-8");
    }
    pos += n;
    return s;
  }
  function arr(n, depth) {
    const a = [];
    for (let i = 0; i < n; i++) a.push(value(depth + 1));
    return a;
  }
  function map(n, depth) {
    const m = Object.create(null);
    for (let i = 0; i < n; i++) {
      const k = value(depth + 1);
      if (typeof k !== "string") fail("a map key is not a string");
      if (Object.prototype.hasOwnProperty.call(m, k)) fail("duplicate map key " + k);
      m[k] = value(depth + 1);
    }
    return m;
  }
  function value(depth) {
    if (depth > MAX_DEPTH) fail("nested too deep");
    const b = u8();
    if (b <= 0x7f) return b;
    if (b >= 0xe0) return b - 0x100;
    if ((b & 0xf0) === 0x80) return map(b & 0x0f, depth);
    if ((b & 0xf0) === 0x90) return arr(b & 0x0f, depth);
    if ((b & 0xe0) === 0xa0) return str(b & 0x1f);
    switch (b) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return raw(u8());
      case 0xc5: return raw(u16());
      case 0xc6: return raw(u32());
      case 0xcc: return u8();
      case 0xcd: return u16();
      case 0xce: return u32();
      case 0xcf: return u64();
      case 0xd0: need(1); return dv.getInt8(pos++);
      case 0xd1: { need(2); const v = dv.getInt16(pos); pos += 2; return v; }
      case 0xd2: { need(4); const v = dv.getInt32(pos); pos += 4; return v; }
      case 0xd3: return i64();
      case 0xd9: return str(u8());
      case 0xda: return str(u16());
      case 0xdb: return str(u32());
      case 0xdc: return arr(u16(), depth);
      case 0xdd: return arr(u32(), depth);
      case 0xde: return map(u16(), depth);
      case 0xdf: return map(u32(), depth);
      default: return fail("unsupported msgpack type 0x" + b.toString(16));
    }
  }
  const v = value(0);
  if (pos !== bytes.length) fail((bytes.length - pos) + " trailing bytes");
  return v;
}

function cmpBytes(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// Canonical msgpack of v (see decode for the types).
export function encode(v) {
  const out = [];
  function push(...b) { for (const x of b) out.push(x & 0xff); }
  function bytesOut(u) { for (const x of u) out.push(x); }
  function be(n, width) {
    for (let i = width - 1; i >= 0; i--) out.push(Number((BigInt(n) >> BigInt(8 * i)) & 0xffn));
  }
  function int(n) {
    const b = BigInt(n);
    if (b >= 0n) {
      if (b <= 0x7fn) push(Number(b));
      else if (b <= 0xffn) { push(0xcc); be(b, 1); }
      else if (b <= 0xffffn) { push(0xcd); be(b, 2); }
      else if (b <= 0xffffffffn) { push(0xce); be(b, 4); }
      else { push(0xcf); be(b, 8); }
    } else {
      if (b >= -32n) push(Number(b));
      else if (b >= -128n) { push(0xd0); be(b, 1); }
      else if (b >= -32768n) { push(0xd1); be(b, 2); }
      else if (b >= -2147483648n) { push(0xd2); be(b, 4); }
      else { push(0xd3); be(b, 8); }
    }
  }
  function hdr(n, fix, fixmax, c8, c16, c32) {
    if (n <= fixmax && fix !== null) push(fix | n);
    else if (c8 !== null && n <= 0xff) { push(c8); be(n, 1); }
    else if (n <= 0xffff) { push(c16); be(n, 2); }
    else { push(c32); be(n, 4); }
  }
  function value(x, depth) {
    if (depth > MAX_DEPTH) fail("nested too deep");
    if (x === null || x === undefined) push(0xc0);
    else if (x === false) push(0xc2);
    else if (x === true) push(0xc3);
    else if (typeof x === "bigint") int(x);
    else if (typeof x === "number") {
      if (!Number.isSafeInteger(x)) fail("only integers are encoded");
      int(x);
    } else if (typeof x === "string") {
      const u = utf8enc.encode(x);
      hdr(u.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
      bytesOut(u);
    } else if (x instanceof Uint8Array) {
      hdr(x.length, null, -1, 0xc4, 0xc5, 0xc6);
      bytesOut(x);
    } else if (Array.isArray(x)) {
      hdr(x.length, 0x90, 15, null, 0xdc, 0xdd);
      for (const e of x) value(e, depth + 1);
    } else if (typeof x === "object") {
      const keys = Object.keys(x).map((k) => [utf8enc.encode(k), k]);
      keys.sort((a, b) => cmpBytes(a[0], b[0]));
      hdr(keys.length, 0x80, 15, null, 0xde, 0xdf);
      for (const [, k] of keys) {
        value(k, depth + 1);
        value(x[k], depth + 1);
      }
    } else fail("cannot encode a " + typeof x);
  }
  value(v, 0);
  return Uint8Array.from(out);
}

// True when bytes are the canonical encoding of the value they decode to.
export function isCanonical(bytes) {
  try {
    return cmpBytes(encode(decode(bytes)), bytes) === 0;
  } catch (e) {
    return false;
  }
}
