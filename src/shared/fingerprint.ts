// The input's fingerprint, recorded in the summary so that a resume can tell
// whether the input changed since the results were written.
//
// It is computed without reading the whole file (which could be gigabytes):
// sha256 over the size and 64 blocks of 4 KiB spread evenly through it (all
// of a file under 256 KiB). Inserting or deleting lines, the edits that make
// `line-N` keys point at other requests, changes the size and so the
// fingerprint; an edit that keeps the size exactly and falls between sampled
// blocks is not seen, but it shifts no line either.

import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';

const BLOCKS = 64;
const BLOCK_BYTES = 4096;

export async function fingerprintFile(path: string): Promise<string> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const hash = createHash('sha256');
    hash.update(`size:${size};`);
    const buffer = Buffer.alloc(BLOCK_BYTES);
    if (size <= BLOCKS * BLOCK_BYTES) {
      const all = Buffer.alloc(size);
      await file.read(all, 0, size, 0);
      hash.update(all);
    } else {
      const step = Math.floor((size - BLOCK_BYTES) / (BLOCKS - 1));
      for (let i = 0; i < BLOCKS; i++) {
        const { bytesRead } = await file.read(buffer, 0, BLOCK_BYTES, i * step);
        hash.update(buffer.subarray(0, bytesRead));
      }
    }
    return `sha256-sampled:${hash.digest('hex').slice(0, 32)}`;
  } finally {
    await file.close();
  }
}
