// One node per data directory. Two nodes on one directory (a second `tqlite node --data D`, or
// createNode() twice in one program) would interleave writes to the same raft log and database
// files and corrupt them, so the second one is refused with a StorageError before it opens
// anything. etcd takes a flock on its WAL for the same reason; Node.js has no flock, so:
//   - within a process, a set of held directories (by real path);
//   - across processes, claims in the directory `<dataDir>/LOCK/`. A process claims the data
//     directory by creating the file `LOCK/<pid>.<start time>` (the start time is field 22 of
//     /proc/<pid>/stat, which tells a reused PID apart), then lists LOCK/. A claim of another
//     process that is alive means the directory is in use: it removes its own claim and is
//     refused. Claims whose process is gone (killed, crashed) are stale: ignored, and removed.
//
// Why at most one process holds the directory, with no flock: each claimant creates its claim
// before it lists, and a holder keeps its claim until it releases. If P and Q both held it,
// each listing would have missed the other's claim; but if P's listing missed Q's claim, P
// listed before Q created it, so Q listed after P's claim existed, and saw it. Claimants that
// overlap may both be refused (each saw the other); a later start then works. Taking over a
// stale claim removes nothing that anyone else could hold: a claim's name belongs to one
// process incarnation forever. (The former scheme, one `LOCK` file replaced when stale, let
// two takers both judge it stale and the second delete the first one's fresh LOCK.)
//
// The directory's operations go through the node's FileSystem. What does not: realpath (the
// in-process key: FileSystem has none; a path that is not on the real disk falls back to
// path.resolve), and /proc/<pid>/stat and process.kill(pid, 0), which inspect processes, not
// the data directory.

import { readFileSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import { StorageError } from '../lib/errors.js';
import { errorCode, isNotFound, joinPath, type FileSystem } from '../lib/fs.js';

const LOCK_DIR = 'LOCK';
const held = new Set<string>();

/** A process incarnation: its PID and start time ('' where unknown). */
export interface LockOwner {
    readonly pid: number;
    readonly startTime: string;
}

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

/** Whether `owner` still runs (a PID that exists with another start time was reused: not alive). */
export function isAlive(owner: LockOwner): boolean {
    try {
        process.kill(owner.pid, 0);
    } catch (error) {
        if (errorCode(error) !== 'EPERM') return false;
    }
    const now = processStartTime(owner.pid);
    return owner.startTime === '' || now === '' || now === owner.startTime;
}

/** The name of `owner`'s claim in LOCK/. */
export function claimName(owner: LockOwner): string {
    return `${owner.pid}.${owner.startTime}`;
}

function ownerOf(name: string): LockOwner | undefined {
    const match = /^([1-9]\d*)\.(\d*)$/.exec(name);
    return match === null ? undefined : { pid: Number(match[1]), startTime: match[2] as string };
}

async function removeIfPresent(fs: FileSystem, path: string): Promise<void> {
    await fs.unlink(path).catch((error: unknown) => {
        if (!isNotFound(error)) throw error;
    });
}

export interface ClaimOptions {
    readonly fs: FileSystem;
    readonly dataDir: string;
    /** The claiming process. */
    readonly self: LockOwner;
    readonly isAlive: (owner: LockOwner) => boolean;
}

function inUse(dataDir: string, owner: LockOwner): StorageError {
    return new StorageError(`data directory ${dataDir} is in use by process ${owner.pid} `
        + `(${joinPath(joinPath(dataDir, LOCK_DIR), claimName(owner))})`);
}

/**
 * Creates LOCK/ if missing. A plain file LOCK is the first version's lock ("<pid> <start
 * time>"): refused while its owner is alive, else removed (no process creates that file any
 * more, so its removal races only with other removals).
 */
async function makeLockDir(options: ClaimOptions): Promise<string> {
    const { fs, dataDir } = options;
    const lockDir = joinPath(dataDir, LOCK_DIR);
    for (let attempt = 0; attempt < 4; attempt++) {
        try {
            await fs.mkdir(lockDir);
            return lockDir;
        } catch (error) {
            if (errorCode(error) !== 'EEXIST') throw error;
        }
        const stat = await fs.stat(lockDir).catch((error: unknown) => {
            if (isNotFound(error)) return undefined;
            throw error;
        });
        if (stat?.isDirectory === true) return lockDir;
        if (stat === undefined) continue;
        // Another claimant may replace the file by LOCK/ meanwhile: EISDIR, ENOENT, try again.
        const replaced = (error: unknown): undefined => {
            if (isNotFound(error) || errorCode(error) === 'EISDIR') return undefined;
            throw error;
        };
        const bytes = await fs.readFile(lockDir).catch(replaced);
        if (bytes === undefined) continue;
        const [pidText = '', startTime = ''] = Buffer.from(bytes).toString('utf8').trim().split(' ');
        const owner = ownerOf(`${pidText}.${startTime}`);
        if (owner !== undefined && owner.pid !== options.self.pid && options.isAlive(owner)) {
            throw inUse(dataDir, owner);
        }
        await fs.unlink(lockDir).catch(replaced);
    }
    throw new StorageError(`cannot create ${lockDir}`);
}

/**
 * The cross-process part of DataDirLock.acquire: claims `dataDir` for `self` and resolves with
 * the path of the claim, or throws StorageError naming a live owner. Exported for tests, which
 * interleave the steps of several claimants.
 */
export async function claimDirectory(options: ClaimOptions): Promise<string> {
    const { fs, dataDir, self } = options;
    const lockDir = await makeLockDir(options);
    const own = claimName(self);
    const claim = joinPath(lockDir, own);
    try {
        const file = await fs.open(claim, 'create');
        await file.close();
    } catch (error) {
        // Our own name exists: a claim this process left (a release that could not remove it).
        if (errorCode(error) !== 'EEXIST') throw error;
    }
    const stale: string[] = [];
    try {
        for (const name of await fs.readdir(lockDir)) {
            const owner = ownerOf(name);
            if (name === own || owner === undefined) continue;
            if (options.isAlive(owner)) throw inUse(dataDir, owner);
            stale.push(name);
        }
    } catch (error) {
        await removeIfPresent(fs, claim);
        throw error;
    }
    for (const name of stale) await removeIfPresent(fs, joinPath(lockDir, name));
    return claim;
}

export class DataDirLock {
    private released = false;

    private constructor(
        private readonly fs: FileSystem, private readonly key: string, private readonly claim: string,
    ) {}

    /** Takes the directory (which must exist) or throws StorageError naming who holds it. */
    static async acquire(fs: FileSystem, dataDir: string): Promise<DataDirLock> {
        const key = await realpath(dataDir).catch(() => resolve(dataDir));
        if (held.has(key)) throw new StorageError(`data directory ${dataDir} is already open in this process`);
        held.add(key);
        try {
            const self = { pid: process.pid, startTime: processStartTime(process.pid) };
            return new DataDirLock(fs, key, await claimDirectory({ fs, dataDir, self, isAlive }));
        } catch (error) {
            held.delete(key);
            if (error instanceof StorageError) throw error;
            throw new StorageError(`cannot lock data directory ${dataDir}: ${String(error)}`, 'ERR_STORAGE',
                { cause: error });
        }
    }

    /** Idempotent: removes this process's claim. */
    async release(): Promise<void> {
        if (this.released) return;
        this.released = true;
        try {
            await removeIfPresent(this.fs, this.claim);
        } catch {
            // the directory was removed or fails: a claim left behind is stale once we exit
        } finally {
            held.delete(this.key);
        }
    }
}
