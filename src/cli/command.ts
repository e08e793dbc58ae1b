// The shape every command of the CLI shares.
//
// A command is one module: its flags, the pure argv → options step (table
// tested on its own), and execute(). Modules are light at import time: heavy
// parts (the core, the simulator, chart libraries) are imported inside
// execute(), so start-up and `--help` stay fast.

import type { Argv } from 'yargs';
import type { Readable, Writable } from 'node:stream';

/** What a command may touch of the process: passed in, so tests can run commands in-process. */
export interface CliIO {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable & { isTTY?: boolean; columns?: number };
  env: Record<string, string | undefined>;
  cwd: string;
  /** Aborted on SIGINT/SIGTERM; a second signal aborts `force`. */
  signal: AbortSignal;
  force: AbortSignal;
}

export type Args = Record<string, unknown>;

export interface CommandSpec<Options = unknown> {
  /** yargs command string, e.g. `run <input>`. */
  command: string;
  describe: string;
  builder: (yargs: Argv) => Argv;
  /**
   * Sub-commands (`batch submit <input>` …), each with its own flags and --help;
   * the chosen one's name reaches toOptions as `args.action`.
   */
  actions?: ReadonlyArray<{ name: string; command: string; describe: string; builder: (yargs: Argv) => Argv }>;
  /** Pure: validated options from parsed flags; throws ConfigError. */
  toOptions: (args: Args, io: Pick<CliIO, 'env' | 'cwd'>) => Options;
  /** Runs the command; resolves to the process exit code (DESIGN.md §3). */
  execute: (options: Options, io: CliIO) => Promise<number>;
}

export function defineCommand<Options>(spec: CommandSpec<Options>): CommandSpec<Options> {
  return spec;
}

/** A command of any options type, for the registry (each spec is typed where it is defined). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyCommandSpec = CommandSpec<any>;
