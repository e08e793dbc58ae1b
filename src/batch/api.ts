// The Files and Batch API calls oai-batch makes, over the shared transport
// with the run's retry policy (callWithRetry).
//
// In:  a Transport.  Out: typed Batch and File objects, and file contents.
// Owns the request shapes of OPENAI-API.md §7; nothing here keeps state.

import { createWriteStream, openAsBlob } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { callWithRetry, type CallOptions } from '../pipeline/send.js';
import { ConnectionError, OaiBatchError } from '../shared/errors.js';
import type { Transport } from '../pipeline/send/transport.js';

export type BatchStatus = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';

/** Statuses a batch never leaves. */
export const ENDED_STATUSES: ReadonlySet<BatchStatus> = new Set(['failed', 'completed', 'expired', 'cancelled']);

export function isEnded(status: BatchStatus | null): boolean {
  return status !== null && ENDED_STATUSES.has(status);
}

export interface BatchErrorData {
  code: string;
  message: string;
  param?: string | null;
  line?: number | null;
}

export interface RequestCounts {
  total: number;
  completed: number;
  failed: number;
}

/** The fields of the Batch object oai-batch reads. */
export interface BatchObject {
  id: string;
  object: 'batch';
  endpoint: string;
  input_file_id: string;
  status: BatchStatus;
  errors: { object: 'list'; data: BatchErrorData[] } | null;
  output_file_id: string | null;
  error_file_id: string | null;
  request_counts: RequestCounts | null;
  metadata: Record<string, string> | null;
  created_at: number;
  completed_at?: number | null;
  failed_at?: number | null;
  expired_at?: number | null;
  cancelled_at?: number | null;
}

export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  filename: string;
  purpose: string;
  created_at: number;
}

interface ListPage<T> {
  data: T[];
  has_more: boolean;
  last_id: string | null;
}

/** Uploads up to 200 MB: give them time. */
const UPLOAD_TIMEOUT_MS = 15 * 60_000;
const CALL_TIMEOUT_MS = 120_000;
/** A download stalled this long (no bytes) is cut and started again. */
const CONTENT_IDLE_TIMEOUT_MS = 5 * 60_000;
/** Downloads cut off mid-way are started again this many times. */
const CONTENT_ATTEMPTS = 3;

export class BatchApi {
  constructor(
    private readonly transport: Transport,
    private readonly callOptions: CallOptions = {},
    private readonly signal?: AbortSignal,
  ) {}

  /** POST /v1/files (multipart, purpose batch) with the file at `path`, named `filename`. */
  async uploadFile(path: string, filename: string): Promise<FileObject> {
    const form = new FormData();
    form.append('purpose', 'batch');
    form.append('file', await openAsBlob(path), filename);
    const response = await this.call({ method: 'POST', path: '/files', form, timeoutMs: UPLOAD_TIMEOUT_MS });
    return expectObject<FileObject>(response.json, 'file');
  }

  /** POST /v1/batches with a 24 h window. */
  async createBatch(inputFileId: string, endpoint: string, metadata: Record<string, string>): Promise<BatchObject> {
    const response = await this.call({
      method: 'POST',
      path: '/batches',
      body: { input_file_id: inputFileId, endpoint, completion_window: '24h', metadata },
      timeoutMs: CALL_TIMEOUT_MS,
    });
    return expectObject<BatchObject>(response.json, 'batch');
  }

  async getBatch(id: string): Promise<BatchObject> {
    const response = await this.call({ method: 'GET', path: `/batches/${encodeURIComponent(id)}`, timeoutMs: CALL_TIMEOUT_MS });
    return expectObject<BatchObject>(response.json, 'batch');
  }

  async cancelBatch(id: string): Promise<BatchObject> {
    const response = await this.call({ method: 'POST', path: `/batches/${encodeURIComponent(id)}/cancel`, timeoutMs: CALL_TIMEOUT_MS });
    return expectObject<BatchObject>(response.json, 'batch');
  }

  /** Batches newest first, page by page, until `stop` says enough or the list ends. */
  async *listBatches(): AsyncGenerator<BatchObject> {
    let after: string | undefined;
    for (;;) {
      const response = await this.call({ method: 'GET', path: '/batches', query: { limit: 100, after }, timeoutMs: CALL_TIMEOUT_MS });
      const page = response.json as ListPage<BatchObject>;
      yield* page.data;
      if (!page.has_more || !page.last_id) return;
      after = page.last_id;
    }
  }

  /** Files of purpose batch, newest first. */
  async *listFiles(): AsyncGenerator<FileObject> {
    let after: string | undefined;
    for (;;) {
      const response = await this.call({ method: 'GET', path: '/files', query: { purpose: 'batch', limit: 10_000, after }, timeoutMs: CALL_TIMEOUT_MS });
      const page = response.json as ListPage<FileObject>;
      yield* page.data;
      if (!page.has_more || !page.last_id) return;
      after = page.last_id;
    }
  }

  /**
   * GET /v1/files/{id}/content into the file at `path`, streamed: an output
   * file (embeddings above all) can be larger than a string may be. A
   * download cut off mid-way starts again from the beginning.
   */
  async downloadFile(id: string, path: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const response = await callWithRetry(
        this.transport,
        { method: 'GET', path: `/files/${encodeURIComponent(id)}/content`, timeoutMs: CONTENT_IDLE_TIMEOUT_MS, isStreamed: true, ...this.signalOption() },
        { ...this.callOptions, isRawBody: true },
      );
      try {
        await pipeline(response.stream ?? Readable.from([response.text]), createWriteStream(path));
        return;
      } catch (error) {
        if (attempt >= CONTENT_ATTEMPTS) {
          throw new ConnectionError(`the download of ${id} was cut off ${attempt} times: ${(error as Error).message}`, { cause: error });
        }
      }
    }
  }

  private call(request: Parameters<Transport['request']>[0]): ReturnType<typeof callWithRetry> {
    return callWithRetry(this.transport, { ...request, ...this.signalOption() }, this.callOptions);
  }

  private signalOption(): { signal?: AbortSignal } {
    return this.signal ? { signal: this.signal } : {};
  }
}

function expectObject<T>(json: unknown, kind: 'file' | 'batch'): T {
  if (!json || typeof json !== 'object' || (json as { object?: unknown }).object !== kind || typeof (json as { id?: unknown }).id !== 'string') {
    throw new OaiBatchError(`the server answered with something that is not a ${kind} object`, 'invalid_response');
  }
  return json as T;
}
