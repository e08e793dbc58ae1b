// The lifecycle of a manifest's parts against the Batch API: upload, create,
// refresh, resubmit after an enqueued-token refusal, cancel.
//
// In:  a Manifest (and its path), a BatchApi.  Out: the manifest moved along,
//      rewritten after every state change; BatchEvents for displays.
// Owns crash safety: every upload and create is written down before it is
// sent ("uploading", "creating") and after it answered, and a part found in
// one of those in-between states is first looked up on the server (files by
// name, batches by metadata) so nothing is uploaded or created twice.

import { basename } from 'node:path';
import { isEnded, type BatchApi, type BatchErrorData, type BatchObject, type FileObject } from './api.js';
import { writeManifest, type Manifest, type ManifestPart } from './manifest.js';

export type BatchEvent =
  | { type: 'uploaded'; part: number; fileId: string; isReused: boolean }
  | { type: 'created'; part: number; batchId: string; isReused: boolean }
  | { type: 'waiting_for_capacity'; part: number; model: string; enqueuedTokens: number; availableTokens: number }
  | { type: 'status'; part: number; batchId: string; status: string; completed: number; failed: number; total: number }
  | { type: 'refused'; part: number; batchId: string; message: string; retryAt: string | null }
  | { type: 'cancel_requested'; part: number; batchId: string | null };

export interface SessionOptions {
  /** Never rewrite the manifest (`batch status` looks without taking the lock). Default false. */
  isReadOnly?: boolean;
  /** Wait before re-creating a part refused for the enqueued-token limit when nothing else of its model is running, ms; doubles per refusal up to 10 min. Default 60,000. */
  refusalBackoffMs?: number;
  now?: () => number;
  onEvent?: (event: BatchEvent) => void;
}

/** The metadata key that ties a batch to its manifest (with `part` and `attempt`). */
export const MANIFEST_METADATA_KEY = 'oai_batch_manifest';
const MAX_REFUSAL_BACKOFF_MS = 10 * 60_000;
/** How far before the manifest's creation a batch listing is searched (clock skew between us and the API). */
const LISTING_SLACK_SECONDS = 3600;

export class BatchSession {
  readonly manifest: Manifest;
  private readonly refusalBackoffMs: number;
  private readonly now: () => number;
  private readonly emit: (event: BatchEvent) => void;
  private readonly isReadOnly: boolean;
  /** Uploaded batch files by name, listed once when a lost upload must be found. */
  private filesByName: Map<string, FileObject> | null = null;
  /** Parts already reported as waiting for capacity (reported once, not on every poll). */
  private readonly reportedWaiting = new Set<number>();

  constructor(
    readonly path: string,
    manifest: Manifest,
    private readonly api: BatchApi,
    options: SessionOptions = {},
  ) {
    this.manifest = manifest;
    this.refusalBackoffMs = options.refusalBackoffMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.emit = options.onEvent ?? (() => {});
    this.isReadOnly = options.isReadOnly ?? false;
  }

  async save(): Promise<void> {
    if (!this.isReadOnly) await writeManifest(this.path, this.manifest, new Date(this.now()));
  }

  /** Uploads a part's file (at `filePath`), or finds the upload a crash left unrecorded. */
  async upload(part: ManifestPart, filePath: string): Promise<void> {
    if (part.state !== 'pending' && part.state !== 'uploading') return;
    if (part.state === 'uploading') {
      const found = await this.findUploadedFile(part);
      if (found) {
        part.file_id = found.id;
        part.state = 'uploaded';
        await this.save();
        this.emit({ type: 'uploaded', part: part.part, fileId: found.id, isReused: true });
        return;
      }
    }
    part.state = 'uploading';
    await this.save();
    const file = await this.api.uploadFile(filePath, part.filename);
    part.file_id = file.id;
    part.state = 'uploaded';
    await this.save();
    this.emit({ type: 'uploaded', part: part.part, fileId: file.id, isReused: false });
  }

  /** Creates batches for uploaded parts while the enqueued-token limit allows, in part order. */
  async createReady(): Promise<void> {
    for (const part of this.manifest.parts) {
      if (part.state === 'creating') {
        await this.create(part);
        continue;
      }
      if (part.state !== 'uploaded') continue;
      if (part.retry_at !== null && Date.parse(part.retry_at) > this.now() && !this.endedSinceRefusal(part)) continue;
      const available = this.availableTokens(part.model);
      // A part alone always goes: the splitter kept it within the limit, and waiting would not make it smaller.
      if (part.enqueued_tokens > available && this.activeTokens(part.model) > 0) {
        if (!this.reportedWaiting.has(part.part)) {
          this.reportedWaiting.add(part.part);
          this.emit({ type: 'waiting_for_capacity', part: part.part, model: part.model, enqueuedTokens: part.enqueued_tokens, availableTokens: available });
        }
        continue;
      }
      this.reportedWaiting.delete(part.part);
      await this.create(part);
    }
  }

  /** Polls every live batch once and applies what it says; re-queues parts refused for the enqueued-token limit. */
  async refresh(): Promise<boolean> {
    let changed = false;
    for (const part of this.manifest.parts) {
      if (part.state !== 'submitted' || part.batch_id === null || isEnded(part.status)) continue;
      const batch = await this.api.getBatch(part.batch_id);
      if (this.apply(part, batch)) changed = true;
    }
    if (changed) await this.save();
    return changed;
  }

  /** Cancels every live batch; parts not yet created are cancelled here and never sent. */
  async cancel(): Promise<void> {
    for (const part of this.manifest.parts) {
      if (part.state === 'creating') await this.create(part, { findOnly: true });
      if (part.state === 'submitted' && part.batch_id !== null && !isEnded(part.status) && part.status !== 'cancelling') {
        const batch = await this.api.cancelBatch(part.batch_id);
        this.apply(part, batch);
        await this.save();
        this.emit({ type: 'cancel_requested', part: part.part, batchId: part.batch_id });
      } else if (part.state === 'pending' || part.state === 'uploading' || part.state === 'uploaded' || part.state === 'creating') {
        part.state = 'cancelled';
        await this.save();
        this.emit({ type: 'cancel_requested', part: part.part, batchId: null });
      }
    }
  }

  /** Whether some part still has to be uploaded. */
  needsUpload(): boolean {
    return this.manifest.parts.some((part) => part.state === 'pending' || part.state === 'uploading');
  }

  /** Estimated input tokens of this model's live batches (and creates in flight). */
  activeTokens(model: string): number {
    let sum = 0;
    for (const part of this.manifest.parts) {
      if (part.model !== model) continue;
      if (part.state === 'creating' || (part.state === 'submitted' && !isEnded(part.status))) sum += part.enqueued_tokens;
    }
    return sum;
  }

  private availableTokens(model: string): number {
    const limit = this.manifest.limits.max_enqueued_tokens;
    return limit === null ? Number.POSITIVE_INFINITY : limit - this.activeTokens(model);
  }

  /** Creates the part's batch, or adopts the one a crash left unrecorded. `findOnly`: never create. */
  private async create(part: ManifestPart, options: { findOnly?: boolean } = {}): Promise<void> {
    if (part.state === 'creating') {
      const found = await this.findCreatedBatch(part);
      if (found) {
        this.apply(part, found);
        await this.save();
        this.emit({ type: 'created', part: part.part, batchId: found.id, isReused: true });
        return;
      }
      if (options.findOnly) {
        part.state = 'uploaded';
        await this.save();
        return;
      }
    } else {
      part.attempt += 1;
      part.state = 'creating';
      await this.save();
    }
    const batch = await this.api.createBatch(part.file_id as string, part.endpoint, this.metadataOf(part));
    this.apply(part, batch);
    await this.save();
    this.emit({ type: 'created', part: part.part, batchId: batch.id, isReused: false });
  }

  private metadataOf(part: ManifestPart): Record<string, string> {
    return {
      [MANIFEST_METADATA_KEY]: this.manifest.manifest_id,
      part: String(part.part),
      attempt: String(part.attempt),
      input: basename(this.manifest.input.path).slice(0, 512),
    };
  }

  /** Takes a batch object's news into the part; returns whether anything changed. */
  private apply(part: ManifestPart, batch: BatchObject): boolean {
    const before = JSON.stringify([part.state, part.status, part.request_counts, part.output_file_id, part.error_file_id]);
    part.state = 'submitted';
    part.batch_id = batch.id;
    part.status = batch.status;
    part.request_counts = batch.request_counts ?? null;
    part.errors = batch.errors?.data ?? [];
    part.output_file_id = batch.output_file_id ?? null;
    part.error_file_id = batch.error_file_id ?? null;
    part.created_at = typeof batch.created_at === 'number' ? batch.created_at : null;
    part.ended_at = batch.completed_at ?? batch.failed_at ?? batch.expired_at ?? batch.cancelled_at ?? (isEnded(batch.status) ? Math.floor(this.now() / 1000) : null);
    const changed = before !== JSON.stringify([part.state, part.status, part.request_counts, part.output_file_id, part.error_file_id]);
    if (!changed) return false;
    const counts = part.request_counts ?? { total: 0, completed: 0, failed: 0 };
    this.emit({ type: 'status', part: part.part, batchId: batch.id, status: batch.status, ...counts });
    if (batch.status === 'failed' && isTokenLimitRefusal(part.errors)) this.requeue(part, batch.id);
    return true;
  }

  /**
   * A part refused for the enqueued-token limit goes back to "uploaded". It
   * is created again once a batch of its model ends after the refusal (the
   * API's own timestamps, so the order polls saw things in does not matter),
   * or after a backoff when none does (the queue is full of other work).
   */
  private requeue(part: ManifestPart, batchId: string): void {
    part.previous_batches.push({ batch_id: batchId, status: 'failed', failed_at: part.ended_at, errors: part.errors });
    const backoffMs = Math.min(MAX_REFUSAL_BACKOFF_MS, this.refusalBackoffMs * 2 ** (part.previous_batches.length - 1));
    part.retry_at = new Date(this.now() + backoffMs).toISOString();
    const message = part.errors.find((e) => e.code === 'token_limit_exceeded')?.message ?? 'token_limit_exceeded';
    part.state = 'uploaded';
    part.batch_id = null;
    part.status = null;
    part.request_counts = null;
    part.errors = [];
    part.output_file_id = null;
    part.error_file_id = null;
    part.created_at = null;
    part.ended_at = null;
    this.emit({ type: 'refused', part: part.part, batchId, message, retryAt: part.retry_at });
  }

  /** Whether a batch of the part's model ended (and so left the queue) at or after the part's last refusal. */
  private endedSinceRefusal(part: ManifestPart): boolean {
    const refusedAt = part.previous_batches[part.previous_batches.length - 1]?.failed_at;
    if (refusedAt === undefined || refusedAt === null) return false;
    return this.manifest.parts.some(
      (other) => other !== part && other.model === part.model && other.state === 'submitted' && other.ended_at !== null && other.ended_at >= refusedAt,
    );
  }

  private async findUploadedFile(part: ManifestPart): Promise<FileObject | null> {
    if (this.filesByName === null) {
      this.filesByName = new Map();
      const since = Date.parse(this.manifest.created_at) / 1000 - LISTING_SLACK_SECONDS;
      for await (const file of this.api.listFiles()) {
        if (file.created_at < since) break;
        // Newest first: keep the newest file of each name.
        if (!this.filesByName.has(file.filename)) this.filesByName.set(file.filename, file);
      }
    }
    const file = this.filesByName.get(part.filename);
    return file && file.bytes === part.bytes ? file : null;
  }

  private async findCreatedBatch(part: ManifestPart): Promise<BatchObject | null> {
    const since = Date.parse(this.manifest.created_at) / 1000 - LISTING_SLACK_SECONDS;
    for await (const batch of this.api.listBatches()) {
      if (batch.created_at < since) break;
      const m = batch.metadata;
      if (m && m[MANIFEST_METADATA_KEY] === this.manifest.manifest_id && m.part === String(part.part) && m.attempt === String(part.attempt)) {
        return batch;
      }
    }
    return null;
  }
}

export function isPartEnded(part: ManifestPart): boolean {
  return part.state === 'cancelled' || (part.state === 'submitted' && isEnded(part.status));
}

export function isTokenLimitRefusal(errors: readonly BatchErrorData[]): boolean {
  return errors.some((error) => error.code === 'token_limit_exceeded');
}
