// Rendering shared by the commands' terminal output: number formats, plain
// aligned columns, the estimate and validation tables, and a stream writer
// that waits for drain and fails cleanly on a closed pipe. Light at import
// time: no command and no core module is loaded from here.

import type { Writable } from 'node:stream';
import { OaiBatchError } from '../shared/errors.js';
import { fmtInt } from '../shared/figures.js';
import type { Estimate, ModelEstimate, Range } from '../commands/estimate.js';
import type { ValidationReport } from '../commands/validate.js';
import type { InputProblem } from '../shared/types.js';

/** The estimate as a table: one row per model, a total row, then what the figures assume. */
export function estimateTable(estimate: Estimate): string {
  const head = [
    'model',
    'requests',
    'prompt tokens',
    'output tokens min / expected / max',
    'cost USD min / expected / max',
    'Batch API USD min / expected / max',
    'time',
  ];
  const row = (name: string, m: Pick<ModelEstimate, 'requests' | 'prompt_tokens' | 'output_tokens' | 'cost_usd' | 'batch_cost_usd' | 'time_seconds'>): string[] => [
    name,
    fmtInt(m.requests),
    fmtInt(m.prompt_tokens),
    fmtRange(m.output_tokens, fmtInt),
    m.cost_usd ? fmtRange(m.cost_usd, fmtUsd) : 'unpriced',
    m.batch_cost_usd ? fmtRange(m.batch_cost_usd, fmtUsd) : 'unpriced',
    m.time_seconds === null ? '–' : fmtSeconds(m.time_seconds),
  ];
  const rows = Object.entries(estimate.by_model).map(([model, m]) => row(model, m));
  if (rows.length > 1) {
    rows.push(
      row(estimate.unpriced_models.length > 0 ? 'total (priced models)' : 'total', {
        requests: estimate.requests,
        prompt_tokens: estimate.totals.prompt_tokens,
        output_tokens: estimate.totals.output_tokens,
        cost_usd: estimate.totals.cost_usd,
        batch_cost_usd: estimate.totals.batch_cost_usd,
        time_seconds: estimate.totals.time_seconds,
      }),
    );
  }
  const lines = [
    `${estimate.input}: ${counted(estimate.requests, 'request')} in ${counted(estimate.lines, 'line')}` +
      (estimate.problems > 0 ? ` (${fmtInt(estimate.problems)} with problems, not counted: see oai-batch validate)` : '') +
      (estimate.reused_requests > 0 ? ` · ${fmtInt(estimate.reused_requests)} more answered by the cache or an identical earlier line (not bought)` : '') +
      ` · prices as of ${estimate.pricing.as_of}`,
    '',
    renderColumns(head, rows, [false, true, true, true, true, true, true]),
  ];
  if (estimate.unpriced_models.length > 0) {
    lines.push('', `unpriced (no price in the table; add them with --prices FILE): ${estimate.unpriced_models.join(', ')}`);
  }
  lines.push('', ...estimate.notes.map((note) => `- ${note}`));
  return lines.join('\n') + '\n';
}

/** `1 request`, `2 requests`, `1,000 lines`. */
export function counted(n: number, noun: string): string {
  return `${fmtInt(n)} ${noun}${n === 1 ? '' : 's'}`;
}

function fmtRange(range: Range, format: (n: number) => string): string {
  return `${format(range.min)} / ${format(range.expected)} / ${range.max === null ? 'unbounded' : format(range.max)}`;
}

/** USD with enough digits to be useful at any size, never in exponent form: 12.34, 0.0123, 0.000000600. */
export function fmtUsd(usd: number): string {
  if (usd === 0) return '0';
  if (Math.abs(usd) >= 1) return usd.toFixed(2);
  if (Math.abs(usd) >= 0.01) return usd.toFixed(4);
  // Three significant digits.
  const digits = Math.min(12, 2 - Math.floor(Math.log10(Math.abs(usd))));
  return usd.toFixed(digits);
}

/** A duration from seconds; under a second shows as `<1s`. */
export function fmtSeconds(seconds: number): string {
  return seconds < 1 ? '<1s' : fmtDuration(seconds);
}

/** Plain aligned columns (two spaces apart), a header row and a rule; `rightAlign[i]` right-aligns column i. */
export function renderColumns(head: string[], rows: string[][], rightAlign: boolean[] = []): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((cell, i) => (rightAlign[i] ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** Streams writeText has seen fail (a closed pipe: `… | head`), with the error. */
const failedStreams = new WeakMap<Writable, Error>();
const watchedStreams = new WeakSet<Writable>();

/**
 * Writes to a stream, waiting for it to drain when its buffer is full. A
 * stream that fails (the reader of a pipe went away) makes this and every
 * later write reject with one clear error instead of crashing the process.
 */
export async function writeText(stream: Writable, text: string): Promise<void> {
  if (!watchedStreams.has(stream)) {
    watchedStreams.add(stream);
    stream.on('error', (error: Error) => failedStreams.set(stream, error));
  }
  const failed = (): OaiBatchError | null => {
    const error = failedStreams.get(stream);
    return error || stream.destroyed ? new OaiBatchError(`output closed before it was complete${error ? ` (${error.message})` : ''}`, 'output_closed') : null;
  };
  const before = failed();
  if (before) throw before;
  if (stream.write(text)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('error', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('error', done);
    stream.on('close', done);
  });
  const after = failed();
  if (after) throw after;
}

/** `line 3: invalid_json: not valid JSON (…)`: the message without its own `line N: ` prefix. */
export function problemLine(problem: InputProblem): string {
  return `line ${problem.line}: ${problem.code}: ${problem.message.replace(/^line \d+: /, '')}`;
}

export function problemJson(problem: InputProblem): Record<string, unknown> {
  return { line: problem.line, code: problem.code, message: problem.message, custom_id: problem.customId };
}

/** The report in the snake_case form scripts read (`validate --format json`). */
export function reportJson(report: ValidationReport): Record<string, unknown> {
  return {
    input: report.input,
    lines: report.lines,
    valid: report.valid,
    problem_count: report.problems,
    problem_counts: report.problemCounts,
    by_endpoint: report.byEndpoint,
  };
}

/** Lines per endpoint and model, and the one-line verdict. */
export function validationTable(report: ValidationReport): string {
  const rows: string[][] = [];
  for (const [endpoint, models] of Object.entries(report.byEndpoint)) {
    for (const [model, lines] of Object.entries(models ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) rows.push([endpoint, model, fmtInt(lines)]);
  }
  const out: string[] = [];
  if (rows.length > 0) out.push(renderColumns(['endpoint', 'model', 'lines'], rows, [false, false, true]), '');
  const codes = Object.entries(report.problemCounts).map(([code, n]) => `${code} ${fmtInt(n)}`);
  out.push(
    `${report.input}: ${fmtInt(report.lines)} lines, ${fmtInt(report.valid)} valid` +
      (report.problems > 0 ? `, ${fmtInt(report.problems)} with problems (${codes.join(', ')})` : ', no problems'),
  );
  return out.join('\n') + '\n';
}

export function fmtCompact(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

export function fmtDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
