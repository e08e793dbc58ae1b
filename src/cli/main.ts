// The CLI: flags → options → a command's execute(); the one top-level catch
// that maps errors to exit codes (DESIGN.md §3). Nothing below calls process.exit.

import yargs, { type Argv } from 'yargs';
import { OaiBatchError } from '../shared/errors.js';
import { redact } from '../shared/redact.js';
import { VERSION } from '../shared/version.js';
import { jsonErrorLine, wantsJsonLogs } from '../observe/error-line.js';
import type { AnyCommandSpec, Args, CliIO } from './command.js';
import { COMMANDS } from './commands.js';

/** Runs the CLI with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[], io: CliIO = processIO()): Promise<number> {
  let chosen: { spec: AnyCommandSpec; args: Args } | undefined;
  let usageError: string | undefined;
  let parser: Argv = yargs(argv)
    .scriptName('oai-batch')
    .usage('oai-batch <command> [options]\n\nRun files of OpenAI API requests at the rate limit, lose none, know the cost.')
    .version(VERSION)
    .alias('version', 'V')
    .help('help')
    .alias('help', 'h')
    .strict()
    .recommendCommands()
    .demandCommand(1, 'Name a command; see oai-batch --help.')
    .wrap(Math.min(110, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((message: string | undefined, error: Error | undefined) => {
      usageError = withoutCamelCaseTwins(message ?? error?.message ?? 'invalid arguments');
    });
  for (const spec of COMMANDS) {
    parser = parser.command(
      spec.command,
      spec.describe,
      (y: Argv) => {
        let built = spec.builder(y).version(VERSION).help('help');
        for (const action of spec.actions ?? []) {
          built = built.command(
            action.command,
            action.describe,
            (z: Argv) => action.builder(z).version(VERSION).help('help'),
            (args: Args) => {
              chosen = { spec, args: { ...args, action: action.name } };
            },
          );
        }
        if (spec.actions) built = built.demandCommand(1, `Name an action: ${spec.actions.map((a) => a.name).join(', ')}.`);
        return built;
      },
      (args: Args) => {
        chosen = { spec, args };
      },
    );
  }

  const secrets = [io.env.OPENAI_API_KEY, io.env.OPENAI_ADMIN_KEY];
  try {
    await parser.parseAsync();
    if (usageError !== undefined) {
      io.stderr.write(errorLine(argv, redact(usageError, secrets), 'usage', 1));
      return 1;
    }
    if (!chosen) return 0; // --help or --version printed
    const options = chosen.spec.toOptions(chosen.args, io);
    return await chosen.spec.execute(options, io);
  } catch (error) {
    const exitCode = error instanceof OaiBatchError ? error.exitCode : 1;
    const code = error instanceof OaiBatchError ? error.code : 'unexpected_error';
    io.stderr.write(errorLine(argv, redact(describe(error), secrets), code, exitCode));
    return exitCode;
  }
}

/** With --log-format json nothing but JSON may reach stderr, this line included. */
function errorLine(argv: string[], message: string, code: string, exitCode: number): string {
  return wantsJsonLogs(argv) ? jsonErrorLine(message, code, exitCode) : `oai-batch: ${message}\n`;
}

/**
 * yargs names an unknown `--bogus-flag` twice, as itself and as the camel-case
 * twin it expands it to (`Unknown arguments: bogus-flag, bogusFlag`): keep the
 * name the user typed.
 */
export function withoutCamelCaseTwins(message: string): string {
  const match = /^Unknown arguments?: (.*)$/s.exec(message);
  if (!match) return message;
  const names = (match[1] as string).split(', ');
  const camel = (name: string): string => name.replace(/-+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
  const typed = new Set(names.filter((name) => name.includes('-')).map(camel));
  const kept = names.filter((name) => name.includes('-') || !typed.has(name));
  return `Unknown argument${kept.length === 1 ? '' : 's'}: ${kept.join(', ')}`;
}

function describe(error: unknown): string {
  if (error instanceof OaiBatchError) return error.message;
  if (error instanceof Error) return `unexpected error: ${error.stack ?? error.message}`;
  return `unexpected error: ${String(error)}`;
}

/** The real process's streams and signals: first SIGINT/SIGTERM asks to stop, a second one forces. */
export function processIO(): CliIO {
  const stop = new AbortController();
  const force = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (!stop.signal.aborted) stop.abort(new Error(name));
    else force.abort(new Error(name));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    signal: stop.signal,
    force: force.signal,
  };
}
