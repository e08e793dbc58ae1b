// Shards of one input (DESIGN.md §6): `--shard I/N` takes the lines whose
// custom_id hashes to I mod N. The hash is FNV-1a 64 over the custom_id's
// UTF-8 bytes: a published, stable function (any tool can compute it), and a
// line's shard depends on its custom_id alone, so moving or adding lines never
// moves others between shards.
//
// Shared by the run (which lines), the CLI (flag, file names) and merge.

/** Shard `index` of `count` (0 ≤ index < count), as Kubernetes' JOB_COMPLETION_INDEX counts. */
export interface Shard {
  index: number;
  count: number;
}

/** Most shards: keeps the hash arithmetic in exact doubles, and is far more than any fleet. */
export const MAX_SHARDS = 1_000_000;

/** "I/N" → a Shard, or null when the text is not of that form or out of range. */
export function parseShard(text: string): Shard | null {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!match) return null;
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || count < 1 || count > MAX_SHARDS || index >= count) return null;
  return { index, count };
}

/** The part shard names add to file names: `.shard-0-of-4`. */
export function shardSuffix(shard: Shard): string {
  return `.shard-${shard.index}-of-${shard.count}`;
}

/** Which of `count` shards a custom_id belongs to. */
export function shardOf(customId: string, count: number): number {
  const [h3, h2, h1, h0] = fnv1a64(customId);
  // The 64-bit value mod count, 16 bits at a time (every step stays below 2⁵³).
  let rest = h3 % count;
  rest = (rest * 65536 + h2) % count;
  rest = (rest * 65536 + h1) % count;
  return (rest * 65536 + h0) % count;
}

export function isInShard(customId: string, shard: Shard): boolean {
  return shard.count === 1 || shardOf(customId, shard.count) === shard.index;
}

/** FNV-1a 64 of the text's UTF-8 bytes, as 16 hex digits (for documentation and tests). */
export function fnv1a64Hex(text: string): string {
  return fnv1a64(text)
    .map((limb) => limb.toString(16).padStart(4, '0'))
    .join('');
}

/**
 * FNV-1a 64 as four 16-bit limbs, most significant first. The multiply by the
 * prime 2⁴⁰ + 0x1b3 is done on limbs so no step leaves exact integer doubles.
 */
function fnv1a64(text: string): [number, number, number, number] {
  // Offset basis 0xcbf29ce484222325.
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  const bytes = Buffer.from(text, 'utf8');
  for (let i = 0; i < bytes.length; i++) {
    h0 ^= bytes[i]!;
    // × 0x1b3 on every limb, plus × 2⁴⁰ (limb 0 into limb 2.5: 0x100 × limb 0 into limb 2, limb 1 into limb 3).
    const r0 = h0 * 0x1b3;
    const r1 = h1 * 0x1b3 + (r0 >>> 16);
    const r2 = h2 * 0x1b3 + h0 * 0x100 + (r1 >>> 16);
    const r3 = h3 * 0x1b3 + h1 * 0x100 + (r2 >>> 16);
    h0 = r0 & 0xffff;
    h1 = r1 & 0xffff;
    h2 = r2 & 0xffff;
    h3 = r3 & 0xffff;
  }
  return [h3, h2, h1, h0];
}
