// A compact set of custom_ids: a fixed-size 64-bit hash per key in an
// open-addressing table, not the strings. 16 bytes per key at worst
// (8 bytes per slot, load ≤ 1/2), so ten million keys take ~160 MB and one
// million ~16 MB. Two different keys collide with probability about
// n² / 2⁶⁵ (≈ 3·10⁻⁶ for ten million keys); the consequence of a collision is
// a key reported as a duplicate or already done, never a lost record.
//
// The table is split into 64 shards by the hash's top bits, each doubling on
// its own: a doubling briefly holds the old and the new table, and one shard's
// worth of that is a 64th of what doubling one big table would hold.

const SHARD_BITS = 6;
const SHARDS = 1 << SHARD_BITS;

interface Shard {
  hi: Uint32Array;
  lo: Uint32Array;
  size: number;
  mask: number;
}

export class KeySet {
  readonly #shards: Shard[] = [];
  #size = 0;

  constructor(initialCapacity = 1024) {
    let capacity = 16;
    while (capacity * SHARDS < initialCapacity * 2) capacity *= 2;
    for (let i = 0; i < SHARDS; i++) {
      this.#shards.push({ hi: new Uint32Array(capacity), lo: new Uint32Array(capacity), size: 0, mask: capacity - 1 });
    }
  }

  get size(): number {
    return this.#size;
  }

  has(key: string): boolean {
    const [hi, lo] = hash64(key);
    return find(this.#shards[hi >>> (32 - SHARD_BITS)]!, hi, lo) >= 0;
  }

  /** Adds the key; returns false when it was already present. */
  add(key: string): boolean {
    const [hi, lo] = hash64(key);
    const shard = this.#shards[hi >>> (32 - SHARD_BITS)]!;
    if (find(shard, hi, lo) >= 0) return false;
    if ((shard.size + 1) * 2 > shard.hi.length) grow(shard);
    insert(shard, hi, lo);
    shard.size += 1;
    this.#size += 1;
    return true;
  }
}

function find(shard: Shard, hi: number, lo: number): number {
  let slot = lo & shard.mask;
  for (;;) {
    const h = shard.hi[slot]!;
    const l = shard.lo[slot]!;
    if (h === 0 && l === 0) return -1;
    if (h === hi && l === lo) return slot;
    slot = (slot + 1) & shard.mask;
  }
}

function insert(shard: Shard, hi: number, lo: number): void {
  let slot = lo & shard.mask;
  while (shard.hi[slot] !== 0 || shard.lo[slot] !== 0) slot = (slot + 1) & shard.mask;
  shard.hi[slot] = hi;
  shard.lo[slot] = lo;
}

function grow(shard: Shard): void {
  const oldHi = shard.hi;
  const oldLo = shard.lo;
  shard.hi = new Uint32Array(oldHi.length * 2);
  shard.lo = new Uint32Array(oldLo.length * 2);
  shard.mask = shard.hi.length - 1;
  for (let i = 0; i < oldHi.length; i++) {
    const h = oldHi[i]!;
    const l = oldLo[i]!;
    if (h !== 0 || l !== 0) insert(shard, h, l);
  }
}

/** Two independent 32-bit MurmurHash3-style lanes over the UTF-16 code units; never (0, 0). */
export function hash64(key: string): [number, number] {
  let h1 = 0x9747b28c ^ key.length;
  let h2 = 0x85ebca6b ^ key.length;
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0xcc9e2d51);
    h1 = (h1 << 15) | (h1 >>> 17);
    h1 = Math.imul(h1, 0x1b873593) + 0xe6546b64;
    h2 = Math.imul(h2 ^ c, 0x85ebca77);
    h2 = (h2 << 13) | (h2 >>> 19);
    h2 = Math.imul(h2, 0xc2b2ae3d) + 0x27d4eb2f;
  }
  h1 = fmix(h1);
  h2 = fmix(h2 ^ h1);
  if (h1 === 0 && h2 === 0) h2 = 1;
  return [h1 >>> 0, h2 >>> 0];
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h;
}
