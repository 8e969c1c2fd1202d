// Fail-stop for everything the log store does on disk. All of the store's I/O goes through a
// GuardedFs: the first error of any file-system call (EIO, ENOSPC, a failed fsync, ...) marks
// the store failed, and from then on every call through the guard rejects at once without
// touching the disk. So an fsync is never retried (TESTING.md §4.1, "fsyncgate"), and no chain
// of awaits keeps writing after another one failed. Closing handles is still allowed.

import { StorageError } from '../lib/errors.js';
import type { FileStat, FileSystem, FsFile, OpenMode } from '../lib/fs.js';
import { Lifecycle } from '../lib/lifecycle.js';
import { ClosedError } from '../lib/errors.js';
import { hasDurableWrite } from '../lib/real-fs.js';

export class StoreGuard {
    readonly lifecycle: Lifecycle;
    private failureError: StorageError | undefined;
    /** Called once, with the error that stopped the store. */
    onFail: ((error: StorageError) => void) | undefined;

    constructor(name: string) {
        this.lifecycle = new Lifecycle(name);
    }

    get failure(): StorageError | undefined {
        return this.failureError;
    }

    /** Throws the failure, or ClosedError when closing/closed. For public entry points. */
    check(): void {
        if (this.failureError !== undefined) throw this.failureError;
        if (this.lifecycle.state !== 'open') {
            throw new ClosedError(`${this.lifecycle.name} is ${this.lifecycle.state}`);
        }
    }

    /** Records the first failure (wrapping non-storage errors) and returns what callers should see. */
    fail(error: unknown): StorageError {
        if (this.failureError !== undefined) return this.failureError;
        const wrapped = error instanceof StorageError
            ? error
            : new StorageError(`storage failed: ${error instanceof Error ? error.message : String(error)}`,
                'ERR_STORAGE', { cause: error });
        this.failureError = wrapped;
        this.lifecycle.fail(wrapped);
        this.onFail?.(wrapped);
        return wrapped;
    }

    /** Runs one I/O step: refused after a failure; any error fails the store. */
    step<T>(fn: () => Promise<T>): Promise<T> {
        // Not an async function: one promise hop less per I/O call (the simulator runs the
        // store millions of times); a synchronous throw still becomes a rejection.
        if (this.failureError !== undefined) return Promise.reject(this.failureError);
        let running: Promise<T>;
        try {
            running = fn();
        } catch (error) {
            return Promise.reject(this.fail(error));
        }
        return running.catch((error: unknown) => {
            throw this.fail(error);
        });
    }
}

class GuardedFile implements FsFile {
    /** write + datasync in one call, when the file offers it (lib/real-fs.ts DurableWriter); else undefined. */
    readonly writeDurable: ((position: number, data: Uint8Array) => Promise<void>) | undefined;

    constructor(private readonly guard: StoreGuard, private readonly file: FsFile) {
        this.writeDurable = hasDurableWrite(file)
            ? (position, data) => this.guard.step(() => file.writeDurable(position, data))
            : undefined;
    }
    get path(): string {
        return this.file.path;
    }
    read(position: number, length: number): Promise<Uint8Array> {
        return this.guard.step(() => this.file.read(position, length));
    }
    write(position: number, data: Uint8Array): Promise<void> {
        return this.guard.step(() => this.file.write(position, data));
    }
    append(data: Uint8Array): Promise<void> {
        return this.guard.step(() => this.file.append(data));
    }
    truncate(size: number): Promise<void> {
        return this.guard.step(() => this.file.truncate(size));
    }
    datasync(): Promise<void> {
        return this.guard.step(() => this.file.datasync());
    }
    sync(): Promise<void> {
        return this.guard.step(() => this.file.sync());
    }
    size(): Promise<number> {
        return this.guard.step(() => this.file.size());
    }
    /** Always allowed; a close error is swallowed after a failure (the handle is gone anyway). */
    async close(): Promise<void> {
        try {
            await this.file.close();
        } catch (error) {
            if (this.guard.failure === undefined) throw this.guard.fail(error);
        }
    }
}

export class GuardedFs implements FileSystem {
    constructor(private readonly guard: StoreGuard, private readonly fs: FileSystem) {}
    async open(path: string, mode: OpenMode): Promise<FsFile> {
        return new GuardedFile(this.guard, await this.guard.step(() => this.fs.open(path, mode)));
    }
    readFile(path: string): Promise<Uint8Array> {
        return this.guard.step(() => this.fs.readFile(path));
    }
    rename(from: string, to: string): Promise<void> {
        return this.guard.step(() => this.fs.rename(from, to));
    }
    unlink(path: string): Promise<void> {
        return this.guard.step(() => this.fs.unlink(path));
    }
    mkdir(path: string): Promise<void> {
        return this.guard.step(() => this.fs.mkdir(path));
    }
    readdir(path: string): Promise<string[]> {
        return this.guard.step(() => this.fs.readdir(path));
    }
    stat(path: string): Promise<FileStat> {
        return this.guard.step(() => this.fs.stat(path));
    }
    fsyncDir(path: string): Promise<void> {
        return this.guard.step(() => this.fs.fsyncDir(path));
    }
}
