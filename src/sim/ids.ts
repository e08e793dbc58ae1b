// Identifiers the simulator hands out: request ids and object ids.
//
// In:  the seed.  Out: `req_…`, `chatcmpl-…`, `resp_…` style strings.
// Owns one counter per simulator. Ids follow the order requests arrive in
// (timing), not the bodies; they only need to be unique and look real.

import { fmix32, seedWord } from './digest.js';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export class IdSource {
  private counter = 0;
  private readonly seed: number;

  constructor(seed: number) {
    this.seed = seedWord(seed);
  }

  /** `req_` + 32 hex characters, as in OpenAI's `x-request-id`. */
  requestId(): string {
    return `req_${this.hex(32)}`;
  }

  /** `length` lower-case hex characters, unique per call. */
  hex(length: number): string {
    const n = ++this.counter;
    let out = '';
    for (let word = 0; out.length < length; word++) {
      out += fmix32(this.seed ^ Math.imul(n, 0x9e3779b1) ^ fmix32(word + 1)).toString(16).padStart(8, '0');
    }
    return out.slice(0, length);
  }

  /** `length` base-62 characters (OpenAI's `chatcmpl-` ids look like this), unique per call. */
  base62(length: number): string {
    const n = ++this.counter;
    let out = '';
    let word = 0;
    let bits = 0;
    for (let i = 0; i < length; i++) {
      if (i % 5 === 0) bits = fmix32(this.seed ^ Math.imul(n, 0x9e3779b1) ^ fmix32(++word));
      out += BASE62[bits % 62];
      bits = Math.floor(bits / 62);
    }
    return out;
  }
}
