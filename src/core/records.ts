// Pieces of the results and errors files shared by `run` and the Batch API
// commands: record ids, and the error record of a bad input line.

import { randomBytes } from 'node:crypto';
import type { ErrorRecord, InputProblem } from './types.js';

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
