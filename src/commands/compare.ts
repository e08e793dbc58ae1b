// compare: the same sample of an input through several models, side by side.
//
// In:  an input, the models, the sample size (first N requests, or a seeded
//      draw without replacement), connection and rate options, prices.
// Out: each model's results, errors and summary files beside the input
//      (`<stem>.compare.<model>.*`), and a Comparison: success rate, mean
//      input and output tokens, cost per 1,000 requests, projected cost of
//      the whole file, latency p50/p95, agreement with the first model.
// Owns: sampling, the per-model sample files, running the models at once
//      under one limiter, and the side-by-side figures.
//
// How the models run: the sample is written once per model into a temporary
// Batch-form file with `model` replaced, and the files go through runBatch
// concurrently, all with ONE MemoryLimiter instance. Going through runBatch
// (rather than a compare-only loop) gives every model the pipeline's retries,
// resume-safe results files and exact summary for free. Each sampled line is
// written at its original line number (blank lines, which the reader skips,
// fill the gaps), so the results carry the input's own line numbers and
// custom_ids: `export --results <that file>` joins them to the input.
//
// One pass over the input draws the sample and counts its requests (for the
// projection); memory holds the sample only.

import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { PriceTable } from '../pricing/prices.js';
import { ConfigError, InputError } from '../shared/errors.js';
import type { RunEvent } from '../shared/events.js';
import { outputOf } from './export.js';
import { MemoryLimiter } from '../pipeline/limit.js';
import { isInputProblem } from '../pipeline/plan.js';
import { endpointOfBody, isSuccessRecord } from '../shared/records.js';
import { runBatch, type RunResult } from '../pipeline/run.js';
import { writeFileAtomic } from '../pipeline/record/writer.js';
import { roundUsd } from '../pipeline/summarise.js';
import type { RequestItem, StoppedReason, Summary } from '../shared/types.js';
import { planInput, type InputScanOptions } from './validate.js';
import { mulberry32 } from '../shared/random.js';
import { sendingOptionsOf, type SendingRunOptions } from '../pipeline/options.js';

export const DEFAULT_SAMPLE_SIZE = 100;

/** Sending options as `run` takes them; budgets without flags are learned from headers, and concurrency applies per model. */
export interface CompareOptions extends InputScanOptions, SendingRunOptions {
  /** Models to compare, the first being the reference for agreement. At least one, no repeats. */
  models: string[];
  /** Requests in the sample (--sample). Default 100. */
  sampleSize?: number;
  /** Seed of a uniform draw without replacement (--seed); without it, the first `sampleSize` requests. */
  seed?: number | undefined;
  /** Folder for the per-model files and compare.md / compare.json (--out-dir). Default: the input's folder. */
  outDir?: string | undefined;
  prices: PriceTable;
  signal?: AbortSignal;
  forceSignal?: AbortSignal;
  /** Each model's run events. */
  onEvent?: (model: string, event: RunEvent) => void;
  /** The response cache (--cache): each model's requests have keys of their own (the model is in the body). */
  cachePath?: string | undefined;
  cacheTtlMs?: number | undefined;
  dedup?: boolean | undefined;
}

export interface ModelComparison {
  model: string;
  files: { results: string; errors: string; summary: string };
  /** Sampled requests sent to this model. */
  requests: number;
  succeeded: number;
  failed: number;
  pending: number;
  /** succeeded ÷ requests. */
  success_rate: number;
  /** Per succeeded request, as the API reported; null when none succeeded. */
  mean_input_tokens: number | null;
  mean_output_tokens: number | null;
  /** Cost of the successes ÷ successes × 1,000; null when the model is unpriced or none succeeded. */
  cost_per_1000_usd: number | null;
  /** Cost per succeeded request × the input's request count. */
  projected_cost_usd: number | null;
  /** Of the successes; null when none succeeded (a failure's latency says nothing about the model). */
  latency_ms: { p50: number; p95: number } | null;
  /**
   * Share of requests both this model and the first answered whose trimmed
   * output text is equal; null ("n/a") when nothing comparable was answered
   * (embeddings have no text).
   */
  agreement: number | null;
  /** Requests the agreement is over. */
  agreement_compared: number;
  stopped_reason: StoppedReason | null;
}

export interface Comparison {
  input: string;
  sample: {
    size: number;
    /** How it was drawn: the first requests, or a seeded uniform draw. */
    method: 'first' | 'seeded';
    seed: number | null;
    /** Requests in the whole input (lines with problems not counted): what the projection multiplies by. */
    file_requests: number;
    /** Input lines with problems (never sampled). */
    file_problems: number;
  };
  models: ModelComparison[];
  pricing: { as_of: string; source: string };
  files: { markdown: string; json: string };
}

export interface CompareResult {
  comparison: Comparison;
  /** The most severe of the runs' exit codes (precedence 1 > 3 > 5 > 2 > 0). */
  exitCode: number;
}

export async function compareModels(options: CompareOptions): Promise<CompareResult> {
  const models = checkModels(options.models);
  const sampleSize = options.sampleSize ?? DEFAULT_SAMPLE_SIZE;
  if (!Number.isInteger(sampleSize) || sampleSize < 1) throw new ConfigError(`Expected \`sample\` to be an integer ≥ 1, got \`${sampleSize}\``);
  if (options.input === '-') throw new ConfigError('compare needs an input file (not stdin): the sample is drawn and the outputs are named from it');

  const draw = await drawSample(options, sampleSize);
  if (draw.sample.length === 0) throw new InputError(`${options.input} has no valid request to compare (${draw.problems} lines with problems: see oai-batch validate)`, 'no_requests');
  const outDir = options.outDir ?? dirname(options.input);
  const stem = outputStem(options.input);
  const folder = await mkdtemp(join(tmpdir(), 'oai-batch-compare-'));
  const limiter = new MemoryLimiter({ rpm: options.rpm, tpm: options.tpm, headroom: options.headroom });
  let runs: Array<{ model: string; files: ModelComparison['files']; result: RunResult }>;
  try {
    const planned = await Promise.all(
      models.map(async (model) => {
        const input = join(folder, `${safeName(model)}.jsonl`);
        await writeSampleFile(input, draw.sample, model);
        const prefix = join(outDir, `${stem}.compare.${safeName(model)}`);
        return { model, input, files: { results: `${prefix}.results.jsonl`, errors: `${prefix}.errors.jsonl`, summary: `${prefix}.summary.json` } };
      }),
    );
    const settled = await Promise.allSettled(
      planned.map(({ model, input, files }) =>
        runBatch({
          input,
          inputLabel: options.input,
          output: files.results,
          errors: files.errors,
          summary: files.summary,
          // Compare's own files: a repeated comparison replaces them.
          overwrite: true,
          ...sendingOptionsOf(options),
          limiter,
          maxLineBytes: options.maxLineBytes,
          cachePath: options.cachePath,
          cacheTtlMs: options.cacheTtlMs,
          dedup: options.dedup,
          prices: options.prices,
          signal: options.signal,
          forceSignal: options.forceSignal,
          onEvent: options.onEvent ? (event) => options.onEvent?.(model, event) : undefined,
        }).then((result) => ({ model, files, result })),
      ),
    );
    const failure = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failure) throw failure.reason;
    runs = settled.map((s) => (s as PromiseFulfilledResult<(typeof runs)[number]>).value);
  } finally {
    limiter.close();
    await rm(folder, { recursive: true, force: true });
  }

  const reference = await outputTexts(runs[0]!.files.results);
  const comparisons: ModelComparison[] = [];
  for (const run of runs) {
    const agreement = await agreementWith(reference, run.files.results);
    comparisons.push(modelFigures(run.model, run.files, run.result.summary, draw.sample.length, draw.requests, agreement));
  }
  const comparison: Comparison = {
    input: options.input,
    sample: {
      size: draw.sample.length,
      method: options.seed === undefined ? 'first' : 'seeded',
      seed: options.seed ?? null,
      file_requests: draw.requests,
      file_problems: draw.problems,
    },
    models: comparisons,
    pricing: { as_of: options.prices.as_of, source: options.prices.source },
    files: { markdown: join(outDir, 'compare.md'), json: join(outDir, 'compare.json') },
  };
  await writeFileAtomic(comparison.files.json, JSON.stringify(comparison, null, 2) + '\n');
  await writeFileAtomic(comparison.files.markdown, comparisonMarkdown(comparison));
  return { comparison, exitCode: mostSevere(runs.map((run) => run.result.exitCode)) };
}

function checkModels(models: string[]): string[] {
  const list = models.map((m) => m.trim()).filter((m) => m !== '');
  if (list.length === 0) throw new ConfigError('Expected `models` to name at least one model, e.g. --models gpt-4o-mini,gpt-4.1-mini');
  const repeated = list.find((m, i) => list.indexOf(m) !== i);
  if (repeated !== undefined) throw new ConfigError(`Expected \`models\` to name each model once, got \`${repeated}\` twice`);
  const clash = list.find((m, i) => list.findIndex((other) => safeName(other) === safeName(m)) !== i);
  if (clash !== undefined) throw new ConfigError(`\`${clash}\` and another model would share the file names ${safeName(clash)}.*: compare them in two runs`);
  return list;
}

// ---------------------------------------------------------------------------
// The sample.

interface Draw {
  /** Sampled requests in line order. */
  sample: RequestItem[];
  /** Valid requests in the whole input. */
  requests: number;
  problems: number;
}

/** One pass: the first N requests, or a reservoir draw (Algorithm R) with a seeded generator; and the counts. */
export async function drawSample(options: InputScanOptions & { seed?: number | undefined }, size: number): Promise<Draw> {
  const random = options.seed === undefined ? null : mulberry32(options.seed);
  const sample: RequestItem[] = [];
  let requests = 0;
  let problems = 0;
  for await (const planned of planInput(options)) {
    if (isInputProblem(planned)) {
      problems += 1;
      continue;
    }
    requests += 1;
    if (sample.length < size) {
      sample.push(planned);
    } else if (random) {
      const slot = Math.floor(random() * requests);
      if (slot < size) sample[slot] = planned;
    }
  }
  sample.sort((a, b) => a.line - b.line);
  return { sample, requests, problems };
}

async function writeSampleFile(path: string, sample: RequestItem[], model: string): Promise<void> {
  const file = await open(path, 'w');
  try {
    let line = 0;
    let chunk = '';
    for (const item of sample) {
      chunk += '\n'.repeat(item.line - line - 1);
      const record: Record<string, unknown> = { custom_id: item.customId, method: 'POST', url: item.url, body: { ...item.body, model } };
      if (item.metadata !== undefined) record.metadata = item.metadata;
      chunk += JSON.stringify(record) + '\n';
      line = item.line;
      if (chunk.length > 1 << 20) {
        await file.write(chunk);
        chunk = '';
      }
    }
    await file.write(chunk);
  } finally {
    await file.close();
  }
}

/** `requests.jsonl` → `requests` (a final .gz, then .jsonl or .json, stripped), as run names its outputs. */
function outputStem(input: string): string {
  return basename(input).replace(/\.gz$/i, '').replace(/\.(jsonl|json)$/i, '');
}

/** A model name as a file-name part: `ft:gpt-4o:acme::x1` → `ft_gpt-4o_acme__x1`. */
export function safeName(model: string): string {
  return model.replace(/[^A-Za-z0-9._-]/g, '_');
}

// ---------------------------------------------------------------------------
// Figures.

/**
 * How many requests two results files both answered with the same trimmed
 * text (`agreed`), out of those both answered with text (`compared`).
 */
export async function outputAgreement(referenceResults: string, otherResults: string): Promise<{ agreed: number; compared: number }> {
  return agreementWith(await outputTexts(referenceResults), otherResults);
}

/** Trimmed output text per custom_id of a results file's successes (embeddings, which have none, left out). */
async function outputTexts(path: string): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  await forEachSuccess(path, (customId, body) => {
    const text = comparableText(body);
    if (text !== null && !texts.has(customId)) texts.set(customId, text);
  });
  return texts;
}

async function agreementWith(reference: Map<string, string>, path: string): Promise<{ agreed: number; compared: number }> {
  let agreed = 0;
  let compared = 0;
  const seen = new Set<string>();
  await forEachSuccess(path, (customId, body) => {
    const expected = reference.get(customId);
    const text = comparableText(body);
    if (expected === undefined || text === null || seen.has(customId)) return;
    seen.add(customId);
    compared += 1;
    if (text === expected) agreed += 1;
  });
  return { agreed, compared };
}

function comparableText(body: unknown): string | null {
  if (endpointOfBody(body) === '/v1/embeddings') return null;
  const text = outputOf(body).text;
  return text === null ? null : text.trim();
}

async function forEachSuccess(path: string, visit: (customId: string, body: unknown) => void): Promise<void> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const text of lines) {
    if (text.trim() === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch {
      continue; // a torn last line
    }
    if (isSuccessRecord(record)) visit(record.custom_id, record.response.body);
  }
}

function modelFigures(
  model: string,
  files: ModelComparison['files'],
  summary: Summary,
  sampleSize: number,
  fileRequests: number,
  agreement: { agreed: number; compared: number },
): ModelComparison {
  const succeeded = summary.requests.succeeded;
  const isPriced = summary.unpriced_models.length === 0;
  const costPerRequest = succeeded > 0 && isPriced ? summary.cost_usd.total / succeeded : null;
  return {
    model,
    files,
    requests: sampleSize,
    succeeded,
    failed: summary.requests.failed,
    pending: summary.requests.pending,
    success_rate: sampleSize > 0 ? succeeded / sampleSize : 0,
    mean_input_tokens: succeeded > 0 ? round(summary.usage.input_tokens / succeeded, 2) : null,
    mean_output_tokens: succeeded > 0 ? round(summary.usage.output_tokens / succeeded, 2) : null,
    cost_per_1000_usd: costPerRequest === null ? null : roundUsd(costPerRequest * 1000),
    projected_cost_usd: costPerRequest === null ? null : roundUsd(costPerRequest * fileRequests),
    latency_ms: succeeded > 0 && summary.timing.latency_ms ? { p50: summary.timing.latency_ms.p50, p95: summary.timing.latency_ms.p95 } : null,
    agreement: agreement.compared > 0 ? agreement.agreed / agreement.compared : null,
    agreement_compared: agreement.compared,
    stopped_reason: summary.stopped_reason,
  };
}

// ---------------------------------------------------------------------------
// The side-by-side table: one set of formatted rows for compare.md and the terminal.

export interface ComparisonTable {
  head: string[];
  rows: string[][];
  /** Columns holding numbers (right-aligned). */
  numeric: boolean[];
}

export function comparisonTable(comparison: Comparison): ComparisonTable {
  const first = comparison.models[0]?.model ?? '';
  const head = [
    'model',
    'success',
    'mean input tokens',
    'mean output tokens',
    'USD per 1,000 requests',
    `USD for all ${comparison.sample.file_requests.toLocaleString('en-US')} requests`,
    'latency p50',
    'latency p95',
    `agrees with ${first}`,
  ];
  // One number of decimals per USD column, so the figures line up and compare at a glance.
  const perThousandDecimals = usdDecimals(comparison.models.map((m) => m.cost_per_1000_usd));
  const projectedDecimals = usdDecimals(comparison.models.map((m) => m.projected_cost_usd));
  const usd = (value: number | null, m: ModelComparison, decimals: number): string =>
    value === null ? (m.succeeded > 0 ? 'unpriced' : '–') : value.toFixed(decimals);
  const ms = (value: number | undefined): string => (value === undefined ? '–' : `${value.toLocaleString('en-US')} ms`);
  const rows = comparison.models.map((m, index) => [
    m.model,
    `${(m.success_rate * 100).toFixed(1)}% (${m.succeeded}/${m.requests})`,
    m.mean_input_tokens === null ? '–' : m.mean_input_tokens.toFixed(1),
    m.mean_output_tokens === null ? '–' : m.mean_output_tokens.toFixed(1),
    usd(m.cost_per_1000_usd, m, perThousandDecimals),
    usd(m.projected_cost_usd, m, projectedDecimals),
    ms(m.latency_ms?.p50),
    ms(m.latency_ms?.p95),
    m.agreement === null ? 'n/a' : index === 0 ? 'reference' : `${(m.agreement * 100).toFixed(1)}% of ${m.agreement_compared}`,
  ]);
  return { head, rows, numeric: [false, true, true, true, true, true, true, true, true] };
}

export function comparisonMarkdown(comparison: Comparison): string {
  const { head, rows, numeric } = comparisonTable(comparison);
  const cell = (text: string): string => text.replace(/\|/g, '\\|');
  const sample = comparison.sample;
  return [
    `# Model comparison: ${comparison.input}`,
    '',
    `Sample: ${sample.size} of ${sample.file_requests} requests (${sample.method === 'seeded' ? `seeded draw, seed ${sample.seed}` : `the first ${sample.size}`}). ` +
      `Prices as of ${comparison.pricing.as_of}. Outputs agree when their trimmed text is equal (n/a for embeddings).`,
    '',
    `| ${head.map(cell).join(' | ')} |`,
    `|${numeric.map((n) => (n ? ' ---: ' : ' --- ')).join('|')}|`,
    ...rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
    '',
    ...comparison.models.map((m) => `- ${m.model}: ${m.files.results}${m.stopped_reason ? ` (stopped: ${m.stopped_reason})` : ''}`),
    '',
  ].join('\n');
}

/**
 * Decimals for a column of USD amounts: enough for three significant digits
 * of its smallest non-zero amount, at least 2 (cents) and at most 10.
 */
export function usdDecimals(amounts: ReadonlyArray<number | null>): number {
  const nonZero = amounts.filter((a): a is number => a !== null && a !== 0).map(Math.abs);
  if (nonZero.length === 0) return 2;
  const smallest = Math.min(...nonZero);
  return Math.max(2, Math.min(10, 2 - Math.floor(Math.log10(smallest))));
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Exit-code precedence of DESIGN.md §3: 1 > 3 > 5 > 2 > 0. */
export function mostSevere(codes: number[]): number {
  const order = [1, 3, 5, 2, 0];
  for (const code of order) if (codes.includes(code)) return code;
  return codes.find((code) => !order.includes(code)) ?? 0;
}

