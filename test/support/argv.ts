// argv → options the way the CLI does it: strict yargs with a command's own
// builder, then (for a CommandSpec) its pure toOptions step.

import yargs, { type Argv } from 'yargs';
import type { Args, CommandSpec } from '../../src/cli/command.js';

/** Parses argv with strict yargs and the command's builder; throws yargs' message on bad flags. */
export function parseArgs(command: string, builder: (y: Argv) => Argv, argv: string[]): Args {
  let parsed: Args | undefined;
  yargs(argv)
    .strict()
    .exitProcess(false)
    .fail((message: string | undefined, error: Error | undefined) => {
      throw new Error(message ?? error?.message ?? 'invalid arguments');
    })
    .command(command, '', builder, (args: Args) => {
      parsed = args;
    })
    .parseSync();
  if (!parsed) throw new Error('no command ran');
  return parsed;
}

export function optionsOf<O>(spec: CommandSpec<O>, argv: string[], env: Record<string, string | undefined> = {}): O {
  return spec.toOptions(parseArgs(spec.command, spec.builder, argv), { env, cwd: '/work' });
}
