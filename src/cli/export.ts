// `oai-batch export <input>`: results joined back to the input, in input
// order, as JSONL or CSV, on stdout or into a file (-o).
//
// Flags → ExportOptions; the join streams (commands/export.ts). A file output is
// written beside its final name and renamed into place when complete, so a
// reader never sees half an export. Exit 0; 1 when there is nothing to
// export or the input cannot be read. A summary line goes to stderr.

import { createWriteStream } from 'node:fs';
import { rename, unlink } from 'node:fs/promises';
import { once } from 'node:events';
import type { Argv } from 'yargs';
import { ConfigError } from '../shared/errors.js';
import type { ExportFormat, ExportOptions, ExportReport } from '../commands/export.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { choiceFlag, defaultOutputName, inputScanBuilder, inputScanFromArgs, optionalString } from './flags.js';
import { fmtInt } from '../shared/figures.js';
import { writeText } from './render.js';

export interface ExportCliOptions {
  export: ExportOptions;
  /** Output file, or undefined for stdout. */
  output: string | undefined;
}

export function exportBuilder(yargs: Argv): Argv {
  return inputScanBuilder(yargs)
    .option('format', { type: 'string', default: 'jsonl', choices: ['jsonl', 'csv'], describe: 'jsonl, or csv (RFC 4180, CRLF line ends)' })
    .option('output', { alias: 'o', type: 'string', describe: 'write here instead of stdout' })
    .option('results', { type: 'string', describe: 'results file (default: <input>.results.jsonl)' })
    .option('errors', { type: 'string', describe: 'errors file (default: <input>.errors.jsonl)' })
    .example('$0 export requests.jsonl --format csv -o answers.csv', 'one row per input line: status, output text, tokens, cost');
}

export function exportOptionsFromArgs(args: Args): ExportCliOptions {
  const scan = inputScanFromArgs(args);
  const format: ExportFormat = choiceFlag(args, 'format', ['jsonl', 'csv'] as const, 'jsonl');
  const named = (flag: 'results' | 'errors'): string => {
    const value = optionalString(args, flag);
    if (value !== undefined) return value;
    if (scan.input === '-') throw new ConfigError('exporting stdin (-) needs --results and --errors: there is no input name to derive them from');
    return defaultOutputName(scan.input, flag);
  };
  return { export: { ...scan, results: named('results'), errors: named('errors'), format }, output: optionalString(args, 'output') };
}

export async function executeExport(options: ExportCliOptions, io: CliIO): Promise<number> {
  const { exportResults } = await import('../commands/export.js');
  const exportOptions = { ...options.export, stdin: io.stdin };
  let report: ExportReport;
  if (options.output === undefined) {
    report = await exportResults(exportOptions, (text) => writeText(io.stdout, text));
  } else {
    const temporary = `${options.output}.tmp-${process.pid}`;
    const file = createWriteStream(temporary);
    await once(file, 'open');
    try {
      report = await exportResults(exportOptions, (text) => writeText(file, text));
      file.end();
      await once(file, 'finish');
      await rename(temporary, options.output);
    } catch (error) {
      file.destroy();
      await unlink(temporary).catch(() => {});
      throw error;
    }
  }
  io.stderr.write(`oai-batch: ${exportLine(report)}${options.output ? ` → ${options.output}` : ''}\n`);
  return 0;
}

export function exportLine(report: ExportReport): string {
  let line = `exported ${fmtInt(report.lines)} lines: ${fmtInt(report.succeeded)} succeeded, ${fmtInt(report.failed)} failed, ${fmtInt(report.pending)} pending`;
  if (report.mismatched > 0) {
    line += `; ${fmtInt(report.mismatched)} result records did not match their line's custom_id (did the input change since the run?) and were left out`;
  }
  if (report.unplaced > 0) line += `; ${fmtInt(report.unplaced)} records had no line number and were left out`;
  if (report.unreadable > 0) line += `; ${fmtInt(report.unreadable)} unreadable record lines skipped`;
  return line;
}

export const exportCommand = defineCommand<ExportCliOptions>({
  command: 'export <input>',
  describe: 'results joined to the input in input order (JSONL or CSV): status, output text, tokens, cost',
  builder: exportBuilder,
  toOptions: exportOptionsFromArgs,
  execute: executeExport,
});
