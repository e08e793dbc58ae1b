// The batch manifest: what was submitted for one input, kept beside it
// (`<input>.batch.json`) so that every later command (and a resubmit after a
// crash) knows each part's file, batch, status and line range.
//
// In:  a path.  Out: a Manifest read back, or written atomically.
// Owns the file format and its version; the lifecycle lives in session.ts.
//
// It is rewritten (temporary file + rename) after every state change, so a
// crash leaves the previous or the next state, never half of one.

import { readFile } from 'node:fs/promises';
import { InputError } from '../shared/errors.js';
import { writeFileAtomic } from '../pipeline/record/writer.js';
import type { Endpoint } from '../shared/types.js';
import type { BatchErrorData, BatchStatus, RequestCounts } from './api.js';

export const MANIFEST_VERSION = 1;

/** The `base_url` of a manifest whose batches lived in an in-process simulator (`--simulate`): gone with that command. */
export const SIMULATED_BASE_URL = 'simulated (in-process; its batches ended with the command)';

/**
 * Where a part is, from our side:
 * - pending:   nothing sent yet;
 * - uploading: an upload was started; the server may hold the file (found again by its filename);
 * - uploaded:  file_id known; no live batch (never created, or refused for the enqueued-token limit);
 * - creating:  a create was started; the server may hold the batch (found again by its metadata);
 * - submitted: batch_id known; `status` is the API's;
 * - cancelled: cancelled before any batch was created (nothing was sent for it).
 */
export type PartState = 'pending' | 'uploading' | 'uploaded' | 'creating' | 'submitted' | 'cancelled';

export interface ManifestPart {
  part: number;
  endpoint: Endpoint;
  model: string;
  first_line: number;
  last_line: number;
  requests: number;
  embedding_inputs: number;
  bytes: number;
  /** Estimated input tokens the part enqueues while it runs. */
  enqueued_tokens: number;
  /** The upload's file name; it names the manifest and part so a lost upload can be found again. */
  filename: string;
  state: PartState;
  file_id: string | null;
  batch_id: string | null;
  /** Batches created (or started) for this part; the current one is tagged with this number. */
  attempt: number;
  status: BatchStatus | null;
  request_counts: RequestCounts | null;
  /** errors.data of the current batch (validation failures, token_limit_exceeded, …). */
  errors: BatchErrorData[];
  output_file_id: string | null;
  error_file_id: string | null;
  /** When the current batch was created (Unix s, the API's clock), or null (absent from manifests written before it was kept). */
  created_at?: number | null;
  /** When the current batch ended (Unix s, the API's clock), or null. */
  ended_at: number | null;
  /** Earlier batches of this part that the API refused for the enqueued-token limit (failed_at: Unix s, the API's clock). */
  previous_batches: Array<{ batch_id: string; status: BatchStatus; failed_at: number | null; errors: BatchErrorData[] }>;
  /** A refused part is created again at this time (ISO), or sooner once a batch of its model ends after the refusal. */
  retry_at: string | null;
}

export interface Manifest {
  version: typeof MANIFEST_VERSION;
  /** Tags every file and batch of this manifest (file names, batch metadata). */
  manifest_id: string;
  tool: { name: 'oai-batch'; version: string };
  input: { path: string; fingerprint: string; lines: number };
  /** The API base the batches live at (batch ids mean nothing elsewhere). */
  base_url: string;
  /** Endpoint of bare-form lines when it was split. */
  endpoint: Endpoint;
  max_line_bytes: number;
  limits: { max_requests: number; max_embedding_inputs: number; max_bytes: number; max_enqueued_tokens: number | null };
  /** Lines that could not become requests (in the errors file; never sent). */
  input_problems: number;
  /**
   * Requests left out because the results file already held a success for
   * them when the manifest was made (a partial `run` before the submit):
   * `lines` as ranges ("1-300,302"; see line-ranges.ts), so that every later
   * split leaves out the same lines. Absent in manifests from before it
   * existed, which left nothing out.
   */
  skipped?: { results: string; requests: number; lines: string };
  created_at: string;
  updated_at: string;
  parts: ManifestPart[];
}

/** `requests.jsonl` → `requests.batch.json` (the same stem as the results and errors files). */
export function defaultManifestPath(input: string): string {
  return `${input.replace(/\.gz$/i, '').replace(/\.(jsonl|json)$/i, '')}.batch.json`;
}

/** Reads a manifest, or null when there is none. */
export async function readManifest(path: string): Promise<Manifest | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new InputError(`cannot read ${path}: ${(error as Error).message}`, 'manifest_unreadable', { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new InputError(`${path} is not valid JSON: it is not a batch manifest oai-batch can read`, 'manifest_unreadable');
  }
  const manifest = value as Partial<Manifest>;
  if (manifest.version !== MANIFEST_VERSION || !Array.isArray(manifest.parts) || typeof manifest.manifest_id !== 'string') {
    throw new InputError(`${path} is not a version ${MANIFEST_VERSION} batch manifest`, 'manifest_unreadable');
  }
  return manifest as Manifest;
}

export async function writeManifest(path: string, manifest: Manifest, now = new Date()): Promise<void> {
  manifest.updated_at = now.toISOString();
  await writeFileAtomic(path, JSON.stringify(manifest, null, 2) + '\n');
}
