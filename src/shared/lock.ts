// One command at a time per file: a lock file beside it (`<file>.lock`)
// holding the pid of the command that writes it.
//
// In:  the path to guard.  Out: a release function; an InputError when a
//      live process holds the lock.
// Owns the rule that two commands never both write one results file (two
// runs would append duplicates) or rewrite one manifest (a `batch cancel`
// racing a `batch wait` would have its cancellations overwritten). A lock
// left by a killed process (its pid no longer runs) is taken over.

import { link, open, readFile, unlink, writeFile } from 'node:fs/promises';
import { InputError } from './errors.js';

/** Takes `<path>.lock`; `code` names the refusal (e.g. `results_locked`). */
export async function lockFile(path: string, code: string): Promise<() => Promise<void>> {
  const lockPath = `${path}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await createWithContent(lockPath, String(process.pid));
      return () => unlink(lockPath).catch(() => {});
    } catch (error) {
      const errno = (error as NodeJS.ErrnoException).code;
      if (errno !== 'EEXIST') throw new InputError(`cannot create ${lockPath}: ${(error as Error).message}`, 'lock_unwritable', { cause: error });
    }
    const holder = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && holder !== process.pid && isRunning(holder)) {
      throw new InputError(
        `another oai-batch command (pid ${holder}) is working on ${path}; let it finish or stop it first ` +
          `(if no such command runs, delete ${lockPath})`,
        code,
      );
    }
    // Left by a process that is gone (killed mid-way): take it over.
    await unlink(lockPath).catch(() => {});
  }
  throw new InputError(`could not take the lock ${lockPath}: another command keeps taking it`, code);
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

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, under another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
