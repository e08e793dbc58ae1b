// The output files of a run (online or Batch API): checked before anything is
// sent, and read back for --resume.
//
// In:  the paths and the resume/overwrite choice; the input's fingerprint.
// Out: nothing, or an error with a clear message (exit 1); a ResumeIndex.
// Owns: "no silent clobbering" and "no resume onto a changed line-N input".

import { constants as fsConstants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import { dirname, resolve as resolvePath } from 'node:path';
import type { CostLedger } from '../../pricing/ledger.js';
import { ConfigError, InputError } from '../../shared/errors.js';
import { isSameInput } from '../../shared/fingerprint.js';
import { indexResults, type ResumeIndex } from './resume.js';
import { endpointOfBody } from '../../shared/records.js';
import type { ResultRecord, Summary, Usage } from '../../shared/types.js';
import { modelOf, serviceTierOf, usageFromBody } from '../../shared/usage.js';

export interface OutputPaths {
  input: string;
  output: string;
  errors: string;
  summary: string;
  resume?: boolean | undefined;
  overwrite?: boolean | undefined;
  /** Other files the outputs must not overwrite (a batch manifest). */
  protect?: readonly string[];
}

/** Output folders must exist and be writable, and an existing results file needs --resume or --overwrite. */
export async function checkOutputs(paths: OutputPaths): Promise<void> {
  if (paths.resume && paths.overwrite) throw new ConfigError('--resume and --overwrite cannot be used together');
  const outputs = [paths.output, paths.errors, paths.summary];
  const protectedPaths = [...(paths.input === '-' ? [] : [paths.input]), ...(paths.protect ?? [])].map((p) => resolvePath(p));
  const clash = outputs.find((p) => protectedPaths.includes(resolvePath(p)));
  if (clash !== undefined) {
    throw new ConfigError(`the output ${clash} would overwrite the input or its manifest; choose other names with -o, --errors, --summary`);
  }
  for (const path of outputs) {
    const folder = dirname(resolvePath(path));
    try {
      const info = await stat(folder);
      if (!info.isDirectory()) throw new Error('not a directory');
      await access(folder, fsConstants.W_OK);
    } catch {
      throw new InputError(`cannot write ${path}: the folder ${folder} does not exist or is not writable`, 'output_unwritable');
    }
  }
  if (!paths.resume && !paths.overwrite && (await exists(paths.output))) {
    throw new InputError(
      `${paths.output} already exists: use --resume to continue it (skipping what succeeded) or --overwrite to start over`,
      'results_exist',
    );
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export interface ResumeContext {
  input: string;
  output: string;
  summary: string;
  /** Resume although the input changed and its keys are line numbers. */
  force?: boolean | undefined;
  /** The input's fingerprint now. */
  fingerprint: string;
  /** Receives the usage of every earlier success (batch lines at the batch rate). */
  ledger: CostLedger;
  /** Receives notes for the summary. */
  warnings: string[];
  /** Receives earlier successes that were not bought (`"cache"` lines): they are not billed usage. */
  onReused?: (record: ResultRecord, usage: Usage | null, model: string | null) => void;
}

/**
 * Indexes the successes already in the results file (repairing a torn tail)
 * and refuses to resume an input keyed `line-N` that changed since: the old
 * keys would now point at other requests.
 */
export async function prepareResume(context: ResumeContext): Promise<ResumeIndex> {
  const changed = await inputChangedSince(context.summary, context.input, context.fingerprint);
  const index = await indexResults(context.output, (record) => {
    const body = record.response.body;
    const usage = usageFromBody(endpointOfBody(body), body);
    const model = modelOf(body);
    if (record.cache) {
      context.onReused?.(record, usage, model);
      return;
    }
    if (usage && model) context.ledger.add(model, usage, { serviceTier: serviceTierOf(body), batch: record.via === 'batch' });
    else if (model) context.ledger.addWithoutUsage(model);
  });
  if (index.tornBytes > 0) context.warnings.push(`resume cut a torn last line (${index.tornBytes} bytes) from ${context.output}`);
  if (changed === true && index.hasLineKeys && !context.force) throw lineKeysMovedError(context.input, context.output);
  if (changed === null) context.warnings.push(`no earlier summary at ${context.summary}: could not check that the input is unchanged`);
  if (context.input === '-') context.warnings.push('input is stdin: could not check that it is the same input as before');
  return index;
}

/**
 * Whether the input changed since the summary at `summaryPath` recorded its
 * fingerprint (`fingerprint` is the input's now); null when there is no
 * readable summary to tell.
 */
export async function inputChangedSince(summaryPath: string, input: string, fingerprint: string): Promise<boolean | null> {
  const previous = await readSummary(summaryPath);
  if (previous === null) return null;
  const earlier = previous.input?.fingerprint;
  return earlier !== undefined && !(await isSameInput(input, earlier, fingerprint));
}

/** The refusal to resume onto `line-N` keys of `output` after `input` changed. */
function lineKeysMovedError(input: string, output: string): InputError {
  return new InputError(
    `refusing to resume: ${input} changed since ${output} was written, and its lines are keyed by line number (line-N), ` +
      'so the old keys would now point at other requests. Give the lines their own custom_id, start over with --overwrite, ' +
      'or pass --force if the lines did not move.',
    'input_changed',
  );
}

async function readSummary(path: string): Promise<Partial<Summary> | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as Partial<Summary>;
  } catch {
    return null;
  }
}
