// `oai-batch validate <input>`: check an input, send nothing.
//
// Every input problem, one line each (line number, code, message, in line
// order, as found), then the lines per endpoint and model. Exit 0 when every
// line is valid, 2 when some line has a problem, 1 when the input cannot be
// read. `run --dry-run` (dry-run.ts) is the same pass plus the estimate.

import type { Argv } from 'yargs';
import type { InputScanOptions } from '../commands/validate.js';
import { defineCommand, type Args, type CliIO } from './command.js';
import { choiceFlag, inputScanBuilder, inputScanFromArgs } from './flags.js';
import { problemJson, problemLine, reportJson, validationTable, writeText } from './render.js';

export interface ValidateCliOptions {
  scan: InputScanOptions;
  format: 'table' | 'json';
}

export function validateBuilder(yargs: Argv): Argv {
  return inputScanBuilder(yargs)
    .option('format', { type: 'string', default: 'table', choices: ['table', 'json'], describe: 'table for people, json for scripts' })
    .example('$0 validate requests.jsonl', 'every bad line by number; exit 2 if there is one')
    .epilogue('Exit codes: 0 every line is valid; 2 some line has a problem (listed); 1 the input cannot be read or a flag is wrong.');
}

export function validateOptionsFromArgs(args: Args): ValidateCliOptions {
  return { scan: inputScanFromArgs(args), format: choiceFlag(args, 'format', ['table', 'json'] as const, 'table') };
}

export async function executeValidate(options: ValidateCliOptions, io: CliIO): Promise<number> {
  const { validateInput, validateExitCode } = await import('../commands/validate.js');
  const scan = { ...options.scan, stdin: io.stdin };
  if (options.format === 'json') {
    // Problems are streamed into the array as they are found: memory stays flat however many there are.
    await writeText(io.stdout, `{"input":${JSON.stringify(scan.input)},"problems":[`);
    let first = true;
    const report = await validateInput(scan, {
      onProblem: async (problem) => {
        await writeText(io.stdout, (first ? '\n' : ',\n') + JSON.stringify(problemJson(problem)));
        first = false;
      },
    });
    const { input: _input, ...counts } = reportJson(report);
    await writeText(io.stdout, `${first ? '' : '\n'}],${JSON.stringify(counts).slice(1)}\n`);
    return validateExitCode(report);
  }
  const report = await validateInput(scan, { onProblem: (problem) => writeText(io.stdout, problemLine(problem) + '\n') });
  await writeText(io.stdout, (report.problems > 0 ? '\n' : '') + validationTable(report));
  return validateExitCode(report);
}





export const validateCommand = defineCommand<ValidateCliOptions>({
  command: 'validate <input>',
  describe: 'list every input problem and count lines per endpoint and model; sends nothing (exit 2 on problems)',
  builder: validateBuilder,
  toOptions: validateOptionsFromArgs,
  execute: executeValidate,
});
