// The production FileSystem on node:fs/promises. Every call runs on libuv's thread pool, so
// nothing here blocks the event loop. Errors are Node's own (with `code` = errno name).

import { open as fsOpen, readdir, rename, stat, unlink, mkdir, readFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import type { FileStat, FileSystem, FsFile, OpenMode } from './fs.js';

const FLAGS: Record<OpenMode, string> = {
    read: 'r',
    readWrite: 'r+',
    create: 'wx+',
    replace: 'w+',
};

class RealFile implements FsFile {
    private closed = false;

    constructor(readonly path: string, private readonly handle: FileHandle) {}

    async read(position: number, length: number): Promise<Uint8Array> {
        const out = Buffer.allocUnsafe(length);
        let done = 0;
        while (done < length) {
            const { bytesRead } = await this.handle.read(out, done, length - done, position + done);
            if (bytesRead === 0) break;
            done += bytesRead;
        }
        return done === length ? out : out.subarray(0, done);
    }

    async write(position: number, data: Uint8Array): Promise<void> {
        let done = 0;
        while (done < data.length) {
            const { bytesWritten } = await this.handle.write(data, done, data.length - done, position + done);
            done += bytesWritten;
        }
    }

    async append(data: Uint8Array): Promise<void> {
        await this.write(await this.size(), data);
    }

    async truncate(size: number): Promise<void> {
        await this.handle.truncate(size);
    }

    async datasync(): Promise<void> {
        await this.handle.datasync();
    }

    async sync(): Promise<void> {
        await this.handle.sync();
    }

    async size(): Promise<number> {
        return (await this.handle.stat()).size;
    }

    async close(): Promise<void> {
        if (this.closed) return;
        this.closed = true;
        await this.handle.close();
    }
}

export class RealFs implements FileSystem {
    async open(path: string, mode: OpenMode): Promise<FsFile> {
        return new RealFile(path, await fsOpen(path, FLAGS[mode]));
    }

    async readFile(path: string): Promise<Uint8Array> {
        return readFile(path);
    }

    async rename(from: string, to: string): Promise<void> {
        await rename(from, to);
    }

    async unlink(path: string): Promise<void> {
        await unlink(path);
    }

    async mkdir(path: string): Promise<void> {
        await mkdir(path);
    }

    async readdir(path: string): Promise<string[]> {
        return (await readdir(path)).sort();
    }

    async stat(path: string): Promise<FileStat> {
        const s = await stat(path);
        return { size: s.size, isDirectory: s.isDirectory() };
    }

    async fsyncDir(path: string): Promise<void> {
        const handle = await fsOpen(path, 'r');
        try {
            await handle.sync();
        } finally {
            await handle.close();
        }
    }
}

export const realFs: FileSystem = new RealFs();
