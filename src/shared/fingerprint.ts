// The input's fingerprint, recorded in the summary (and a batch manifest) so
// that a resume can tell whether the input changed since the results were
// written.
//
// In:  a path.  Out: `sha256:<hex>` or `sha256-sampled:<hex>`; whether an
//      earlier fingerprint still describes the file.
// Owns the two forms and comparing like with like.
//
// - Up to 256 MiB (FULL_HASH_MAX_BYTES) the whole file is hashed: sha256 runs
//   at several hundred MB/s, so this costs well under a second, and every
//   edit is seen — also two lines of equal length swapped, which keeps the
//   size and moves `line-N` keys to other requests.
// - Above that, sha256 over the size and 64 blocks of 4 KiB spread evenly
//   through the file, so that a resume of a file of many gigabytes does not
//   start by reading all of it. This sampled form sees every insertion or
//   deletion (the size changes) but NOT an edit that keeps the size and falls
//   between the sampled blocks: two equal-length lines swapped, a digit
//   changed in place. Such an edit can move `line-N` keys unseen; give lines
//   their own custom_id when a file that large may be edited between runs.
//
// Before the whole-file form existed every fingerprint was sampled (and
// covered files up to 256 KiB whole). An earlier summary's fingerprint is
// compared in its own form: an unchanged file still matches it.

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

/** Files up to this size are hashed whole. */
export const FULL_HASH_MAX_BYTES = 256 * 1024 * 1024;

export type FingerprintForm = 'sha256' | 'sha256-sampled';

const BLOCKS = 64;
const BLOCK_BYTES = 4096;

/** The file's fingerprint, whole-file up to FULL_HASH_MAX_BYTES, else sampled (or in the form asked for). */
export async function fingerprintFile(path: string, form?: FingerprintForm): Promise<string> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const chosen = form ?? (size <= FULL_HASH_MAX_BYTES ? 'sha256' : 'sha256-sampled');
    const hash = createHash('sha256');
    hash.update(`size:${size};`);
    if (chosen === 'sha256') {
      for await (const chunk of file.createReadStream({ start: 0, autoClose: false, highWaterMark: 1024 * 1024 })) {
        hash.update(chunk as Buffer);
      }
    } else if (size <= BLOCKS * BLOCK_BYTES) {
      const all = Buffer.alloc(size);
      await file.read(all, 0, size, 0);
      hash.update(all);
    } else {
      const buffer = Buffer.alloc(BLOCK_BYTES);
      const step = Math.floor((size - BLOCK_BYTES) / (BLOCKS - 1));
      for (let i = 0; i < BLOCKS; i++) {
        const { bytesRead } = await file.read(buffer, 0, BLOCK_BYTES, i * step);
        hash.update(buffer.subarray(0, bytesRead));
      }
    }
    return `${chosen}:${hash.digest('hex').slice(0, 32)}`;
  } finally {
    await file.close();
  }
}

/** The form of a fingerprint string, or null for anything else (`stdin`, a future form). */
export function formOf(fingerprint: string): FingerprintForm | null {
  if (fingerprint.startsWith('sha256:')) return 'sha256';
  if (fingerprint.startsWith('sha256-sampled:')) return 'sha256-sampled';
  return null;
}

/**
 * Whether `previous` (from an earlier summary or manifest) still describes
 * the file at `path`, whose fingerprint now is `current`. Forms are compared
 * like with like: a sampled fingerprint written before the whole-file form
 * existed is checked against the file sampled again. A whole-file
 * fingerprint against a sampled one now means the size crossed
 * FULL_HASH_MAX_BYTES, so the file changed.
 */
export async function isSameInput(path: string, previous: string, current: string): Promise<boolean> {
  if (previous === current) return true;
  if (formOf(previous) !== 'sha256-sampled' || formOf(current) !== 'sha256') return false;
  return previous === (await fingerprintFile(path, 'sha256-sampled'));
}
