// Counting tokens with tiktoken's byte-pair encodings, in a few megabytes.
//
// In:  a text, an encoding name.  Out: how many tokens the model's encoding makes of it.
//
// gpt-tokenizer holds an encoding as 200,000 JavaScript strings in maps and
// arrays: about 60 MB resident, a third of the whole budget of a run. We read
// the same rank files (gpt-tokenizer/data/*.tiktoken, one `base64 rank` line
// per token) into three typed arrays — every token's bytes packed end to end,
// where each token starts, and an open-addressing hash table from bytes to
// token — about 5 MB for o200k_base. Counting splits the text with the
// encoding's own pattern and merges each piece's bytes pair by pair, lowest
// rank first, exactly as tiktoken's `byte_pair_merge` does; test/bpe.test.ts
// checks the counts against gpt-tokenizer's.
//
// Special-token texts such as `<|endoftext|>` inside a prompt are counted as
// ordinary text, which is how the API treats them in user content.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export type EncodingName = 'o200k_base' | 'cl100k_base';

// The encodings' pre-tokenizer patterns (tiktoken's, in JavaScript's syntax as gpt-tokenizer writes them).
const CONTRACTION = String.raw`'(?:[sS]|[dD]|[mM]|[tT]|[lL][lL]|[vV][eE]|[rR][eE])`;
const SPLIT_PATTERNS: Record<EncodingName, string> = {
  cl100k_base: String.raw`${CONTRACTION}|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s+$|\s*[\r\n]|\s+(?!\S)|\s`,
  o200k_base:
    String.raw`[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?:${CONTRACTION})?` +
    String.raw`|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?:${CONTRACTION})?` +
    String.raw`|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+`,
};

/** Pieces whose merged count is remembered; words repeat, so most pieces are counted once. */
const PIECE_CACHE_SIZE = 8192;
const NO_RANK = 0x7fffffff;

/** The ranks of one encoding: token bytes packed end to end, and a hash table from bytes to token. */
class RankTable {
  private readonly bytes: Uint8Array;
  /** Token i's bytes are bytes[starts[i] .. starts[i + 1]]. */
  private readonly starts: Uint32Array;
  private readonly ranks: Int32Array;
  /** Open addressing: 0 is empty, otherwise token index + 1. */
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(file: Buffer) {
    // First pass: how many tokens, and how many bytes they decode to.
    let lines = 0;
    let digits = 0;
    let inBase64 = true;
    for (let i = 0; i < file.length; i++) {
      const c = file[i]!;
      if (c === 0x0a) {
        lines++;
        inBase64 = true;
      } else if (c === 0x20) inBase64 = false;
      else if (inBase64 && c !== 0x3d) digits++;
    }
    if (file.length > 0 && file[file.length - 1] !== 0x0a) lines++;
    this.bytes = new Uint8Array(Math.floor((digits * 6) / 8) + 3);
    this.starts = new Uint32Array(lines + 1);
    this.ranks = new Int32Array(lines);
    let size = 1;
    while (size < lines * 2) size *= 2;
    this.slots = new Int32Array(size);
    this.mask = size - 1;

    let count = 0;
    let written = 0;
    let pos = 0;
    while (pos < file.length) {
      // `base64 rank\n`
      let space = pos;
      while (space < file.length && file[space] !== 0x20) space++;
      let end = space + 1;
      let rank = 0;
      while (end < file.length && file[end] !== 0x0a) {
        const digit = file[end]! - 0x30;
        if (digit >= 0 && digit <= 9) rank = rank * 10 + digit;
        end++;
      }
      if (space > pos) {
        this.starts[count] = written;
        written = decodeBase64(file, pos, space, this.bytes, written);
        this.ranks[count] = rank;
        count++;
      }
      pos = end + 1;
    }
    this.starts[count] = written;
    for (let i = 0; i < count; i++) this.insert(i);
  }

  private insert(token: number): void {
    const start = this.starts[token]!;
    let slot = hash(this.bytes, start, this.starts[token + 1]!) & this.mask;
    while (this.slots[slot] !== 0) slot = (slot + 1) & this.mask;
    this.slots[slot] = token + 1;
  }

  /** The rank of the bytes piece[start .. end], or NO_RANK when they are not a token. */
  rank(piece: Uint8Array, start: number, end: number): number {
    const length = end - start;
    let slot = hash(piece, start, end) & this.mask;
    for (;;) {
      const entry = this.slots[slot]!;
      if (entry === 0) return NO_RANK;
      const token = entry - 1;
      const tokenStart = this.starts[token]!;
      if (this.starts[token + 1]! - tokenStart === length) {
        let i = 0;
        while (i < length && this.bytes[tokenStart + i] === piece[start + i]) i++;
        if (i === length) return this.ranks[token]!;
      }
      slot = (slot + 1) & this.mask;
    }
  }
}

/** FNV-1a over bytes[start .. end]. */
function hash(bytes: Uint8Array, start: number, end: number): number {
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

const BASE64 = new Int8Array(128).fill(-1);
for (let i = 0; i < 64; i++) BASE64['ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.charCodeAt(i)] = i;

/** Decodes base64 text[from .. to] into out at `at`; returns the new end of out. */
function decodeBase64(text: Uint8Array, from: number, to: number, out: Uint8Array, at: number): number {
  let bits = 0;
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = text[i]!;
    const digit = c < 128 ? BASE64[c]! : -1;
    if (digit < 0) continue; // '=' padding
    value = (value << 6) | digit;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (value >> bits) & 0xff;
    }
  }
  return at;
}

/** Counts tokens of texts in one encoding. */
export class TokenCounter {
  private readonly table: RankTable;
  private readonly pattern: RegExp;
  private readonly encoder = new TextEncoder();
  private readonly cache = new Map<string, number>();
  private scratch = new Uint8Array(1024);
  private bounds = new Int32Array(1024);
  private pairRanks = new Int32Array(1024);

  constructor(ranks: Buffer, pattern: string) {
    this.table = new RankTable(ranks);
    this.pattern = new RegExp(pattern, 'gu');
  }

  count(text: string): number {
    let tokens = 0;
    const pattern = this.pattern;
    pattern.lastIndex = 0;
    let match: RegExpExecArray | null;
    while ((match = pattern.exec(text)) !== null) tokens += this.countPiece(match[0]);
    return tokens;
  }

  private countPiece(piece: string): number {
    if (piece.length === 1 && piece.charCodeAt(0) < 0x80) return 1; // every byte is a token
    const cached = this.cache.get(piece);
    if (cached !== undefined) return cached;
    if (this.scratch.length < piece.length * 3) this.scratch = new Uint8Array(piece.length * 3);
    const length = this.encoder.encodeInto(piece, this.scratch).written;
    const tokens = this.table.rank(this.scratch, 0, length) !== NO_RANK ? 1 : this.merge(length);
    if (this.cache.size >= PIECE_CACHE_SIZE) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(piece, tokens);
    return tokens;
  }

  /** tiktoken's byte_pair_merge on scratch[0 .. length], counting the parts that remain. */
  private merge(length: number): number {
    if (length > LARGE_PIECE_BYTES) return this.mergeLarge(length);
    if (this.bounds.length < length + 1) {
      this.bounds = new Int32Array(length + 1);
      this.pairRanks = new Int32Array(length + 1);
    }
    const piece = this.scratch;
    const bounds = this.bounds;
    const ranks = this.pairRanks;
    // Part i runs from bounds[i] to bounds[i + 1]; ranks[i] is the rank of parts i and i + 1 merged.
    let parts = length;
    for (let i = 0; i <= length; i++) bounds[i] = i;
    for (let i = 0; i < parts - 1; i++) ranks[i] = this.table.rank(piece, i, i + 2);
    while (parts > 1) {
      let lowest = NO_RANK;
      let at = -1;
      for (let i = 0; i < parts - 1; i++) {
        if (ranks[i]! < lowest) {
          lowest = ranks[i]!;
          at = i;
        }
      }
      if (at < 0) break;
      // Merge parts at and at + 1: drop the boundary between them.
      bounds.copyWithin(at + 1, at + 2, parts + 1);
      ranks.copyWithin(at + 1, at + 2, parts - 1);
      parts--;
      ranks[at] = at + 1 < parts ? this.table.rank(piece, bounds[at]!, bounds[at + 2]!) : NO_RANK;
      if (at > 0) ranks[at - 1] = this.table.rank(piece, bounds[at - 1]!, bounds[at + 1]!);
    }
    return parts;
  }

  /**
   * The same merges for a long piece (a run of thousands of letters or spaces)
   * in O(n log n) rather than O(n²): the parts form a linked list, and a heap
   * ordered by (rank, position) yields the leftmost lowest-ranked pair, which
   * is the pair the quadratic loop picks. An entry whose pair has changed since
   * it was pushed is skipped when it comes up.
   */
  private mergeLarge(length: number): number {
    const piece = this.scratch;
    const table = this.table;
    // Parts are named by their first byte; next[s] is where part s ends (length for the last one).
    const next = new Int32Array(length);
    const prev = new Int32Array(length);
    const pairRank = new Int32Array(length).fill(NO_RANK); // rank of part s merged with the part after it
    const alive = new Uint8Array(length).fill(1);
    const heap = new MinHeap(length * 3);
    for (let i = 0; i < length; i++) {
      next[i] = i + 1;
      prev[i] = i - 1;
    }
    const pairOf = (start: number): number => {
      const after = next[start]!;
      return after < length ? table.rank(piece, start, next[after]!) : NO_RANK;
    };
    for (let i = 0; i < length - 1; i++) {
      pairRank[i] = table.rank(piece, i, i + 2);
      if (pairRank[i] !== NO_RANK) heap.push(pairRank[i]!, i);
    }
    let parts = length;
    while (heap.size > 0) {
      const start = heap.popPosition();
      const rank = heap.lastRank;
      if (!alive[start] || pairRank[start] !== rank) continue; // stale
      const removed = next[start]!;
      const after = next[removed]!;
      alive[removed] = 0;
      next[start] = after;
      if (after < length) prev[after] = start;
      parts--;
      pairRank[start] = pairOf(start);
      if (pairRank[start] !== NO_RANK) heap.push(pairRank[start]!, start);
      const before = prev[start]!;
      if (before >= 0) {
        pairRank[before] = pairOf(before);
        if (pairRank[before] !== NO_RANK) heap.push(pairRank[before]!, before);
      }
    }
    return parts;
  }
}

/** Pieces longer than this are merged with a heap (tiktoken's own cut-over is of the same order). */
const LARGE_PIECE_BYTES = 256;

/** A binary min-heap of (rank, position) pairs packed into one exact double: rank · 2³² + position. */
class MinHeap {
  private readonly keys: Float64Array;
  size = 0;
  /** The rank of the entry popPosition() returned last. */
  lastRank = 0;

  constructor(capacity: number) {
    this.keys = new Float64Array(capacity);
  }

  push(rank: number, position: number): void {
    const keys = this.keys;
    let i = this.size++;
    const key = rank * 4294967296 + position;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent]! <= key) break;
      keys[i] = keys[parent]!;
      i = parent;
    }
    keys[i] = key;
  }

  popPosition(): number {
    const keys = this.keys;
    const top = keys[0]!;
    const last = keys[--this.size]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= this.size) break;
      if (child + 1 < this.size && keys[child + 1]! < keys[child]!) child++;
      if (keys[child]! >= last) break;
      keys[i] = keys[child]!;
      i = child;
    }
    keys[i] = last;
    this.lastRank = Math.floor(top / 4294967296);
    return top - this.lastRank * 4294967296;
  }
}

// An encoding takes a tenth of a second to load, so it is loaded the first time a model needs it.
const require = createRequire(import.meta.url);
const counters: Partial<Record<EncodingName, TokenCounter>> = {};

export function tokenCounter(encoding: EncodingName): TokenCounter {
  let counter = counters[encoding];
  if (!counter) {
    const ranks = readFileSync(require.resolve(`gpt-tokenizer/data/${encoding}.tiktoken`));
    counter = new TokenCounter(ranks, SPLIT_PATTERNS[encoding]);
    counters[encoding] = counter;
  }
  return counter;
}
