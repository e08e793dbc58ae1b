// A compact set of custom_ids: a fixed-size 64-bit hash per key in an
// open-addressing table, not the strings. 16 bytes per key at worst
// (8 bytes per slot, load ≤ 1/2), so ten million keys take ~160 MB and one
// million ~16 MB. Two different keys collide with probability about
// n² / 2⁶⁵ (≈ 3·10⁻⁶ for ten million keys); the consequence of a collision is
// a key reported as a duplicate or already done, never a lost record.

export class KeySet {
  #hi: Uint32Array;
  #lo: Uint32Array;
  #size = 0;
  #mask: number;

  constructor(initialCapacity = 1024) {
    let capacity = 16;
    while (capacity < initialCapacity * 2) capacity *= 2;
    this.#hi = new Uint32Array(capacity);
    this.#lo = new Uint32Array(capacity);
    this.#mask = capacity - 1;
  }

  get size(): number {
    return this.#size;
  }

  has(key: string): boolean {
    const [hi, lo] = hash64(key);
    return this.#find(hi, lo) >= 0;
  }

  /** Adds the key; returns false when it was already present. */
  add(key: string): boolean {
    const [hi, lo] = hash64(key);
    if (this.#find(hi, lo) >= 0) return false;
    if ((this.#size + 1) * 2 > this.#hi.length) this.#grow();
    this.#insert(hi, lo);
    this.#size += 1;
    return true;
  }

  #find(hi: number, lo: number): number {
    let slot = lo & this.#mask;
    for (;;) {
      const h = this.#hi[slot] as number;
      const l = this.#lo[slot] as number;
      if (h === 0 && l === 0) return -1;
      if (h === hi && l === lo) return slot;
      slot = (slot + 1) & this.#mask;
    }
  }

  #insert(hi: number, lo: number): void {
    let slot = lo & this.#mask;
    while ((this.#hi[slot] as number) !== 0 || (this.#lo[slot] as number) !== 0) slot = (slot + 1) & this.#mask;
    this.#hi[slot] = hi;
    this.#lo[slot] = lo;
  }

  #grow(): void {
    const oldHi = this.#hi;
    const oldLo = this.#lo;
    this.#hi = new Uint32Array(oldHi.length * 2);
    this.#lo = new Uint32Array(oldLo.length * 2);
    this.#mask = this.#hi.length - 1;
    for (let i = 0; i < oldHi.length; i++) {
      const h = oldHi[i] as number;
      const l = oldLo[i] as number;
      if (h !== 0 || l !== 0) this.#insert(h, l);
    }
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
