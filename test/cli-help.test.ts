// What `--help` and a usage error say (issue 15 item 21): no pointer to a file
// the repository does not ship, no flag a command refuses, each unknown flag
// named once, and `batch <action> --help` about that action alone.

import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { withoutCamelCaseTwins } from '../src/cli/main.js';
import { runCli } from './support/cli.js';

const help = async (...words: string[]): Promise<string> => {
  const result = await runCli([...words, '--help']);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
};

/** The flags a help text lists (`--name` at the start of an option line). */
function listedFlags(text: string): string[] {
  return [...text.matchAll(/^\s+(?:-\w, )?--([\w-]+)/gm)].map((m) => m[1] as string);
}

describe('help texts', () => {
  it('usage and costs --help point at nothing the repository lacks', async () => {
    expect(existsSync(new URL('../DESIGN.md', import.meta.url))).toBe(false);
    for (const command of ['usage', 'costs']) expect(await help(command)).not.toMatch(/DESIGN/);
  });

  it('costs --help does not offer hourly buckets, which costs refuses', async () => {
    const text = await help('costs');
    expect(text).not.toMatch(/1h|--bucket/);
    expect(await help('usage')).toMatch(/7 with --bucket 1h/);
  });

  it('--log-bodies says that only response bodies are logged', async () => {
    const line = (await help('run')).split('\n').find((l) => l.includes('--log-bodies')) ?? '';
    expect(line).toMatch(/response bodies/);
    expect(line).not.toMatch(/request and response/);
  });

  it('names an unknown flag once, as it was typed', async () => {
    const one = await runCli(['run', 'x.jsonl', '--bogus-flag']);
    expect(one.code).toBe(1);
    expect(one.stderr.trim()).toBe('oai-batch: Unknown argument: bogus-flag');
    const two = await runCli(['run', 'x.jsonl', '--bogus-flag', '--other-thing']);
    expect(two.stderr.trim()).toBe('oai-batch: Unknown arguments: bogus-flag, other-thing');
  });

  it.each([
    ['Unknown arguments: bogus-flag, bogusFlag', 'Unknown argument: bogus-flag'],
    ['Unknown arguments: a-b, aB, c--d, cD, zz', 'Unknown arguments: a-b, c--d, zz'],
    ['Unknown argument: zz', 'Unknown argument: zz'],
    ['Unknown arguments: fooBar, baz', 'Unknown arguments: fooBar, baz'],
    ['Not enough non-option arguments', 'Not enough non-option arguments'],
  ])('usage error %j reads %j', (message, expected) => {
    expect(withoutCamelCaseTwins(message)).toBe(expected);
  });

  it('batch submit --help lists the flags of submit alone, batch status --help those of status', async () => {
    const submit = listedFlags(await help('batch', 'submit'));
    expect(submit).toEqual(expect.arrayContaining(['max-requests-per-part', 'max-enqueued-tokens', 'wait', 'download', 'manifest', 'base-url']));
    expect(submit).not.toContain('format');
    const status = listedFlags(await help('batch', 'status'));
    expect(status).toEqual(expect.arrayContaining(['format', 'manifest', 'base-url']));
    for (const flag of ['max-requests-per-part', 'wait', 'download', 'resume', 'poll-interval', 'prices']) expect(status).not.toContain(flag);
    const cancel = await help('batch', 'cancel');
    expect(cancel).not.toMatch(/split into batches|merge the output/);
    expect(cancel).toMatch(/cancel every running batch/);
    // `batch --help` lists the actions, each with its own help.
    expect(await help('batch')).toMatch(/batch submit <input>[\s\S]*batch cancel <input>/);
  }, 30_000);

  it('a flag of another action is still refused with where it belongs', async () => {
    const result = await runCli(['batch', 'status', 'x.jsonl', '--wait']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/--wait applies to `batch submit`, not `batch status`/);
  });
});
