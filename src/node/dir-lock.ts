// One node per data directory. Two nodes on one directory (a second `tqlite node --data D`, or
// createNode() twice in one program) would interleave writes to the same raft log and database
// files and corrupt them, so the second one is refused with a StorageError before it opens
// anything. etcd takes a flock on its WAL for the same reason; Node.js has no flock, so:
//   - within a process, a set of held directories (by real path);
//   - across processes, a file `<dataDir>/LOCK` created exclusively, holding the owner's PID
//     and its start time (/proc/<pid>/stat, to tell a reused PID apart). A LOCK whose owner is
//     gone (killed, crashed) is stale and taken over. Two processes taking over the same stale
//     LOCK at the same instant can both succeed: the one race this scheme does not close.

import { readFileSync } from 'node:fs';
import { open, readFile, realpath, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StorageError } from '../lib/errors.js';

const LOCK_FILE = 'LOCK';
const held = new Set<string>();

/** Field 22 of /proc/<pid>/stat (start time in clock ticks since boot), or '' where unknown. */
export function processStartTime(pid: number): string {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        // The command name (field 2) is in parentheses and may contain spaces: count after it.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return fields[19] ?? '';
    } catch {
        return '';
    }
}

function isAlive(pid: number, startTime: string): boolean {
    try {
        process.kill(pid, 0);
    } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
    }
    const now = processStartTime(pid);
    return startTime === '' || now === '' || now === startTime;
}

export class DataDirLock {
    private released = false;

    private constructor(
        private readonly key: string, private readonly path: string, private readonly content: string,
    ) {}

    /** Takes the directory (which must exist) or throws StorageError naming who holds it. */
    static async acquire(dataDir: string): Promise<DataDirLock> {
        const key = await realpath(dataDir);
        if (held.has(key)) throw new StorageError(`data directory ${dataDir} is already open in this process`);
        held.add(key);
        const path = join(key, LOCK_FILE);
        const content = `${process.pid} ${processStartTime(process.pid)}\n`;
        try {
            for (let attempt = 0; ; attempt++) {
                try {
                    const file = await open(path, 'wx');
                    try {
                        await file.writeFile(content);
                    } finally {
                        await file.close();
                    }
                    return new DataDirLock(key, path, content);
                } catch (error) {
                    if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw error;
                }
                const [pidText, startTime = ''] = (await readFile(path, 'utf8').catch(() => '')).trim().split(' ');
                const pid = Number(pidText);
                if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid, startTime)) {
                    throw new StorageError(`data directory ${dataDir} is in use by process ${pid} (${path})`);
                }
                // Stale: its owner is gone (or it is unreadable, or a node of this process that
                // never released it failed): take it over.
                await unlink(path).catch((error: NodeJS.ErrnoException) => {
                    if (error.code !== 'ENOENT') throw error;
                });
            }
        } catch (error) {
            held.delete(key);
            if (error instanceof StorageError) throw error;
            throw new StorageError(`cannot lock data directory ${dataDir}: ${String(error)}`, 'ERR_STORAGE',
                { cause: error });
        }
    }

    /** Idempotent. Removes LOCK only if it is still ours. */
    async release(): Promise<void> {
        if (this.released) return;
        this.released = true;
        try {
            if ((await readFile(this.path, 'utf8').catch(() => '')) === this.content) await unlink(this.path);
        } catch {
            // already gone, or the directory was removed: nothing left to release
        } finally {
            held.delete(this.key);
        }
    }
}
