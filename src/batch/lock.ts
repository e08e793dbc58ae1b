// One command at a time per manifest: a lock file beside it (`<manifest>.lock`)
// holding the pid of the command that changes it.
//
// In:  the manifest path.  Out: a release function; an InputError when a
//      live process holds the lock.
// Owns the rule that two commands never both rewrite one manifest: a `batch
// cancel` racing a `batch wait` would otherwise have its cancellations
// overwritten, and a part created twice. A lock left by a killed process
// (its pid no longer runs) is taken over.

import { open, readFile, unlink } from 'node:fs/promises';
import { InputError } from '../shared/errors.js';

export async function lockManifest(manifestPath: string): Promise<() => Promise<void>> {
  const lockPath = `${manifestPath}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const file = await open(lockPath, 'wx');
      await file.writeFile(String(process.pid));
      await file.close();
      return () => unlink(lockPath).catch(() => {});
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new InputError(`cannot create ${lockPath}: ${(error as Error).message}`, 'manifest_unwritable', { cause: error });
    }
    const holder = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
    if (Number.isInteger(holder) && holder !== process.pid && isRunning(holder)) {
      throw new InputError(
        `another oai-batch command (pid ${holder}) is working on ${manifestPath}; let it finish or stop it first ` +
          `(if no such command runs, delete ${lockPath})`,
        'manifest_locked',
      );
    }
    // Left by a process that is gone (killed mid-way): take it over.
    await unlink(lockPath).catch(() => {});
  }
  throw new InputError(`could not take the lock ${lockPath}: another command keeps taking it`, 'manifest_locked');
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
