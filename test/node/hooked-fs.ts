// A file system for tests: the real one, with a hook run (and awaited) before every operation,
// which can fail the operation (throw) or hold it (return a promise that settles later).

import type { FileSystem, FsFile, OpenMode } from '../../src/lib/fs.js';
import { realFs } from '../../src/lib/real-fs.js';

export type FsOp = 'open' | 'readFile' | 'rename' | 'unlink' | 'mkdir' | 'readdir' | 'stat' | 'fsyncDir';

/** The real file system, with `hook` run (and awaited) before every operation. */
export function hookedFs(hook: (op: FsOp, path: string, mode?: OpenMode) => Promise<void> | void): FileSystem {
    const onePath = <T>(op: FsOp, call: (path: string) => Promise<T>) => async (path: string): Promise<T> => {
        await hook(op, path);
        return call(path);
    };
    return {
        async open(path: string, mode: OpenMode): Promise<FsFile> {
            await hook('open', path, mode);
            return realFs.open(path, mode);
        },
        async rename(from: string, to: string): Promise<void> {
            await hook('rename', to);
            return realFs.rename(from, to);
        },
        readFile: onePath('readFile', (path) => realFs.readFile(path)),
        unlink: onePath('unlink', (path) => realFs.unlink(path)),
        mkdir: onePath('mkdir', (path) => realFs.mkdir(path)),
        readdir: onePath('readdir', (path) => realFs.readdir(path)),
        stat: onePath('stat', (path) => realFs.stat(path)),
        fsyncDir: onePath('fsyncDir', (path) => realFs.fsyncDir(path)),
    };
}
