// One command at a time per file: a lock file beside it (`<file>.lock`)
// holding the pid of the command that writes it.
//
// In:  the path to guard.  Out: a release function; an InputError when a
//      live process holds the lock.
// Owns the rule that two commands never both write one results file (two
// runs would append duplicates) or rewrite one manifest (a `batch cancel`
// racing a `batch wait` would have its cancellations overwritten). A lock
// left by a killed process (its pid no longer runs) is taken over, by one
// command only when several find it at once.

import { link, open, readFile, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { InputError } from './errors.js';

/** How long a command waits for another that is taking over the same dead holder's lock. */
const TAKEOVER_WAIT_MS = 5_000;

/** Takes `<path>.lock`; `code` names the refusal (e.g. `results_locked`). */
export async function lockFile(path: string, code: string): Promise<() => Promise<void>> {
  const lockPath = `${path}.lock`;
  const release = (): Promise<void> => unlink(lockPath).catch(() => {});
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  for (;;) {
    if (await tryCreate(lockPath)) return release;
    const holder = await readHolder(lockPath);
    if (isAnotherLiveProcess(holder)) {
      throw new InputError(
        `another oai-batch command (pid ${holder}) is working on ${path}; let it finish or stop it first ` +
          `(if no such command runs, delete ${lockPath})`,
        code,
      );
    }
    // Left by a process that is gone (killed mid-way): take it over.
    if (await takeOver(lockPath)) return release;
    if (Date.now() > deadline) throw new InputError(`could not take the lock ${lockPath}: another command keeps taking it`, code);
    await sleep(10 + Math.random() * 20);
  }
}

/** Creates the lock holding this process's pid; false when it exists. */
async function tryCreate(lockPath: string): Promise<boolean> {
  try {
    await createWithContent(lockPath, String(process.pid));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new InputError(`cannot create ${lockPath}: ${(error as Error).message}`, 'lock_unwritable', { cause: error });
  }
}

/**
 * Removes a lock whose holder is gone and takes it, one command at a time:
 * only the command holding `<lock>.takeover` may remove the lock, after
 * reading it again. Without that, two commands that both saw the dead pid
 * could each remove the lock, the second removing the one the first had just
 * taken, and both would run. False when another command is taking it over
 * (or has taken it): the caller looks again.
 */
async function takeOver(lockPath: string): Promise<boolean> {
  const guard = `${lockPath}.takeover`;
  if (!(await tryCreate(guard))) {
    // A guard left by a command killed mid-takeover would block every other: removed.
    const taker = await readHolder(guard);
    if (taker !== null && !isAnotherLiveProcess(taker)) await unlink(guard).catch(() => {});
    return false;
  }
  try {
    if (isAnotherLiveProcess(await readHolder(lockPath))) return false;
    await unlink(lockPath).catch(() => {});
    return await tryCreate(lockPath);
  } finally {
    await unlink(guard).catch(() => {});
  }
}

/** The pid a lock file names; null when the file is gone or holds no pid. */
async function readHolder(lockPath: string): Promise<number | null> {
  const pid = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
  return Number.isInteger(pid) ? pid : null;
}

/**
 * Creates `path` holding `content`, or fails with EEXIST, in one step: the
 * content is written to a private file first and hard-linked into place, so
 * no other command ever reads the lock empty (and takes it for a dead one's).
 */
async function createWithContent(path: string, content: string): Promise<void> {
  const staging = `${path}.${process.pid}.${Date.now().toString(36)}`;
  await writeFile(staging, content, { flag: 'wx' });
  try {
    await link(staging, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw error;
    // A file system without hard links: create and write, with its short window.
    const file = await open(path, 'wx');
    await file.writeFile(content);
    await file.close();
  } finally {
    await unlink(staging).catch(() => {});
  }
}

/** A pid (from a lock file) of a process that runs and is not this one; this one's own lock is stale (a pid reused). */
function isAnotherLiveProcess(pid: number | null): pid is number {
  return pid !== null && pid !== process.pid && isRunning(pid);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
