// Request identity and deterministic draws for the simulator.
//
// In:  the raw request body (and the simulator's seed).  Out: a 16-hex digest
// and numbers in [0, 1) derived from it.
// Owns every source of "randomness" in the simulator: the same seed and body
// always give the same output length, cache hit, fault and latency, so a test
// can predict an answer and a resumed run meets the same faults.

import { createHash } from 'node:crypto';

/**
 * First 16 hex characters of the sha256 of the request body bytes as
 * received. The simulator echoes it in every answer text (`[sim:<digest>] …`)
 * so a client test can check that a body answers its own request.
 */
export function requestDigest(rawBody: string | Uint8Array): string {
  return createHash('sha256').update(rawBody).digest('hex').slice(0, 16);
}

/** murmur3's 32-bit finaliser: a cheap, well-mixing integer hash. */
export function fmix32(value: number): number {
  let h = value >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Folds a seed of any safe-integer size into 32 bits. */
export function seedWord(seed: number): number {
  return fmix32((seed >>> 0) ^ fmix32(Math.floor(seed / 4294967296)));
}

/** Independent streams of draws for one request; a salt names each decision. */
export const SALT = {
  output: 1,
  reasoning: 2,
  cache: 3,
  fault: 4,
  latency: 5,
  text: 6,
  vector: 7,
  moderation: 8,
} as const;

/**
 * Deterministic draws for one request, keyed by (seed, digest, salt).
 * Built once per request: two integer words from the digest, no more hashing
 * of the body.
 */
export class RequestHash {
  private readonly high: number;
  private readonly low: number;

  constructor(digest: string, seed: number) {
    this.high = (Number.parseInt(digest.slice(0, 8), 16) ^ seedWord(seed)) >>> 0;
    this.low = Number.parseInt(digest.slice(8, 16), 16) >>> 0;
  }

  /** A 32-bit unsigned integer for this salt (and optional index, e.g. a choice or an attempt). */
  word(salt: number, index = 0): number {
    const salted = fmix32(this.high ^ Math.imul(salt * 0x10000 + index + 1, 0x9e3779b1));
    return fmix32(salted ^ this.low);
  }

  /** A number in [0, 1). */
  unit(salt: number, index = 0): number {
    return this.word(salt, index) / 4294967296;
  }
}

/** A small, fast PRNG for longer sequences: answer words, embedding vectors. */
export { mulberry32 } from '../shared/random.js';
