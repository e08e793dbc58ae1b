// Pieces of the results and errors files shared by `run`, the Batch API
// commands and the commands that read results: record ids, the error record
// of a bad input line, the `line-N` key of a bare line, what counts as a
// success record, and which endpoint a success body came from.

import { randomBytes } from 'node:crypto';
import type { Endpoint, ErrorRecord, InputProblem, ResultRecord } from './types.js';

/** Ids for the records one command writes: `oaib_req_` + a random run id + a sequence number. */
export function recordIds(): () => string {
  const runId = randomBytes(6).toString('hex');
  let seq = 0;
  return () => `oaib_req_${runId}${(++seq).toString(36).padStart(6, '0')}`;
}

/** The errors-file record of a line that could not become a request. */
export function problemRecord(problem: InputProblem, id: string): ErrorRecord {
  const record: ErrorRecord = {
    id,
    custom_id: problem.customId,
    line: problem.line,
    response: null,
    error: { code: problem.code, message: problem.message },
    attempts: 0,
  };
  if (problem.metadata !== undefined) record.metadata = problem.metadata;
  return record;
}

/** The custom_id a bare-form line gets. */
export function lineKey(line: number): string {
  return `line-${line}`;
}

export function isLineKey(customId: string): boolean {
  return /^line-\d+$/.test(customId);
}

/** The endpoint a success body came from, recognised by its `object` field (results do not store the url). */
export function endpointOfBody(body: unknown): Endpoint {
  const object = body && typeof body === 'object' ? (body as { object?: unknown }).object : undefined;
  switch (object) {
    case 'response':
      return '/v1/responses';
    case 'list':
      return '/v1/embeddings';
    case 'text_completion':
      return '/v1/completions';
    case 'chat.completion':
      return '/v1/chat/completions';
    default:
      return body && typeof body === 'object' && 'results' in body ? '/v1/moderations' : '/v1/chat/completions';
  }
}

/** A success record in the results file: a 2xx response and no error. */
export function isSuccessRecord(value: unknown): value is ResultRecord {
  if (!value || typeof value !== 'object') return false;
  const record = value as Partial<ResultRecord>;
  const status = record.response?.status_code;
  return typeof record.custom_id === 'string' && record.error == null && typeof status === 'number' && status >= 200 && status < 300;
}
