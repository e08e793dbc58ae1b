// validate: check an input without sending anything.
//
// In:  an input path (or `-` with a stdin stream) and the run's input flags.
// Out: every input problem (streamed to a callback, in line order) and a
//      report: lines read, problems by code, lines per endpoint and model.
// Owns: `planInput`, the read → plan pass that validate, estimate, compare
//      and export share, so every command sees the input exactly as `run` does.
//
// One streaming pass; memory stays flat (problems are handed out as they are
// found, never collected), apart from the compact custom_id set plan keeps.

import type { Readable } from 'node:stream';
import { createPlanContext, isInputProblem, planRecord } from '../pipeline/plan.js';
import { openInput, readRecords } from '../pipeline/read.js';
import { DEFAULT_MAX_LINE_BYTES } from '../shared/types.js';
import type { Endpoint, InputProblem, InputProblemCode, RequestItem } from '../shared/types.js';

export interface InputScanOptions {
  /** Input path, or `-` for `stdin`. */
  input: string;
  /** The stream read when `input` is `-`. */
  stdin?: Readable;
  /** Endpoint for bare-form lines (--endpoint). Default `/v1/chat/completions`. */
  endpoint?: Endpoint;
  /** Longest accepted line, bytes (--max-line-bytes). Default 8 MiB. */
  maxLineBytes?: number;
  /** Only the first N non-blank lines (--limit), as `run --limit` counts them. Default: all. */
  limit?: number;
}

/**
 * Every non-blank line of the input, planned as `run` plans it: a request
 * item or an input problem, in line order. A missing or unreadable input
 * throws InputError (exit 1) before anything is yielded.
 */
export async function* planInput(options: InputScanOptions): AsyncGenerator<RequestItem | InputProblem> {
  const maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const source = await openInput(options.input, options.stdin);
  const context = createPlanContext(options.endpoint ?? '/v1/chat/completions', maxLineBytes);
  let lines = 0;
  try {
    for await (const record of readRecords(source.stream, maxLineBytes)) {
      if (options.limit !== undefined && lines >= options.limit) break;
      lines += 1;
      yield planRecord(record, context);
    }
  } finally {
    source.close();
  }
}

export interface ValidationReport {
  input: string;
  /** Non-blank lines read (within --limit). */
  lines: number;
  /** Lines that would be sent. */
  valid: number;
  /** Lines that would become errors-file records. */
  problems: number;
  /** Problems by code (codes that did not occur are absent). */
  problemCounts: Partial<Record<InputProblemCode, number>>;
  /** Valid lines per endpoint, then per model as the line names it. */
  byEndpoint: Partial<Record<Endpoint, Record<string, number>>>;
}

export interface ValidateHooks {
  /** Each problem as it is found, in line order; awaited, so a slow writer holds the reading back. */
  onProblem?: (problem: InputProblem) => void | Promise<void>;
  /** Each valid request (lets `run --dry-run` estimate in the same pass). */
  onItem?: (item: RequestItem) => void;
}

/** One pass over the input: problems out through `onProblem`, counts in the report. */
export async function validateInput(options: InputScanOptions, hooks: ValidateHooks = {}): Promise<ValidationReport> {
  const report: ValidationReport = {
    input: options.input,
    lines: 0,
    valid: 0,
    problems: 0,
    problemCounts: {},
    byEndpoint: {},
  };
  for await (const planned of planInput(options)) {
    report.lines += 1;
    if (isInputProblem(planned)) {
      report.problems += 1;
      report.problemCounts[planned.code] = (report.problemCounts[planned.code] ?? 0) + 1;
      await hooks.onProblem?.(planned);
      continue;
    }
    report.valid += 1;
    const models = (report.byEndpoint[planned.url] ??= {});
    models[planned.model] = (models[planned.model] ?? 0) + 1;
    hooks.onItem?.(planned);
  }
  return report;
}

/** Exit code of `validate` (DESIGN.md §3): 0 when every line is valid, 2 when some line has a problem. */
export function validateExitCode(report: Pick<ValidationReport, 'problems'>): number {
  return report.problems > 0 ? 2 : 0;
}
