// Goal: createNode() (Node.open, then the gateway's listen) fails cleanly at every step where it
// can fail, and can be aborted while it runs: the promise rejects with a typed error (or the
// errno of the failed listen), nothing it opened is left behind (no listener on the address,
// no worker thread, no file descriptor under the data directory, no active timer or handle),
// no promise rejection goes unhandled, and once the fault is repaired a second createNode() on
// the same data directory and address starts, takes a write and reads it back (and still
// holds the rows of the directory it was copied from).
// Method: real nodes on 127.0.0.1 (one-voter clusters with 20 ms ticks) in temporary
// directories. Faults are made on disk (a file where a directory belongs; corrupt info,
// metadata, segment, snapshot or durable-state files in copies of a directory written once in
// before(), with snapshots), with a listener that holds the address, with an address nobody
// can listen on, and through the `fs` option: a wrapper of the real file system that refuses
// chosen operations with EACCES (an unwritable directory: the tests run as root, so chmod
// would not do) or holds one operation until the test releases it, so that the start is
// aborted (the `signal` option) at a known step, with no sleeps. The SQLite worker is made to
// exit abruptly at a named point by the test hook `testing.fsmCrashPoint`. Leftovers are
// measured (test/node/leftovers.ts) against a baseline taken before any node ran: the targets
// of /proc/self/fd under the data directory (at once: everything must be closed when the
// promise settles), and the process's threads (a Worker is one) and
// process.getActiveResourcesInfo() per type (polled with a deadline: Node releases some handles
// a few turns later). The first clean run, the one that writes the template directory, is held
// to the same check.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../src/client/index.js';
import { createNode, type CreateNodeOptions, type TqliteNode } from '../../src/index.js';
import { Deferred } from '../../src/lib/deferred.js';
import { TqliteError } from '../../src/lib/errors.js';
import { FsError, type FileSystem, type OpenMode } from '../../src/lib/fs.js';
import type { Logger } from '../../src/lib/logger.js';
import { freeLoopbackPort } from '../../src/lib/net.js';
import { hookedFs, type FsOp } from './hooked-fs.js';
import { fdsUnder, Leftovers } from './leftovers.js';

const TICK_MS = 20;
const TEMPLATE_ROWS = [1, 2, 3, 4, 5, 6];

let root = '';
/** A data directory written by one clean run (bootstrap, one row), and the address it knows. */
let template = '';
let templateAddress = '';
let leftovers: Leftovers | undefined;

async function assertNothingLeft(what: string, dataDir: string, address: string): Promise<void> {
    assert.ok(leftovers !== undefined);
    await leftovers.assertNothingLeft(what, dataDir, address);
}

/** createNode() must reject (and not call onFailure: that is for a node that had started). */
async function expectFailure(options: CreateNodeOptions): Promise<Error & { code?: string }> {
    let node: TqliteNode | undefined;
    const failures: unknown[] = [];
    try {
        node = await createNode({ tickMs: TICK_MS, onFailure: (error) => failures.push(error), ...options });
    } catch (error) {
        assert.ok(error instanceof Error, `not an Error: ${String(error)}`);
        assert.deepEqual(failures.map(String), [], 'onFailure called for a start that failed');
        return error as Error & { code?: string };
    }
    await node.close();
    return assert.fail('createNode() resolved');
}

function assertTyped(error: Error & { code?: string }, code: string, message?: RegExp): void {
    assert.ok(error instanceof TqliteError, `${error.name} is not a TqliteError: ${error.message}`);
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
}

/**
 * A start on the repaired directory works: one write, read back; close() is idempotent.
 * Resolves with every value the table holds.
 */
async function startAndUse(dataDir: string, address: string, value: number, extra: Partial<CreateNodeOptions> = {},
): Promise<number[]> {
    let values: number[] = [];
    const node = await createNode({ address, dataDir, tickMs: TICK_MS, ...extra });
    try {
        const db = await connect({ servers: [address], database: 'life', timeoutMs: 10_000 });
        try {
            await db.exec('CREATE TABLE IF NOT EXISTS t (x INTEGER)');
            await db.exec('INSERT INTO t VALUES (?)', [value]);
            const rows = await db.query('SELECT x FROM t ORDER BY x').all();
            values = rows.map((r) => Number(r.x));
            assert.ok(values.includes(value), `row ${value} not read back: ${JSON.stringify(rows)}`);
        } finally {
            await db.close();
        }
    } finally {
        const closing = node.close();
        assert.equal(node.close(), closing, 'close() is memoised');
        await closing;
        await node.close();
    }
    await assertNothingLeft('after the repaired node closed', dataDir, address);
    return values;
}

/** The template's rows are all there (a node started from a copy of it lost nothing). */
function assertTemplateRows(values: readonly number[]): void {
    for (const x of TEMPLATE_ROWS) assert.ok(values.includes(x), `template row ${x} lost: ${values.join(' ')}`);
}

async function freshAddress(): Promise<string> {
    return `127.0.0.1:${await freeLoopbackPort()}`;
}

/** A copy of the template directory (for faults of an existing node); it knows templateAddress. */
function copyOfTemplate(name: string): string {
    const dir = join(root, name);
    cpSync(template, dir, { recursive: true });
    return dir;
}

/**
 * A fresh node whose data directory (or the entry `rel` in it) is a file: the start fails
 * (`check`), leaves nothing, and works once the file is gone.
 */
async function withFileInTheWay(name: string, rel: string, check: (error: Error & { code?: string }) => void,
    value: number): Promise<void> {
    const address = await freshAddress();
    const dataDir = join(root, name);
    const path = rel === '' ? dataDir : join(dataDir, rel);
    if (rel !== '') mkdirSync(dataDir);
    writeFileSync(path, 'not a directory');
    check(await expectFailure({ address, dataDir }));
    await assertNothingLeft(name, dataDir, address);
    rmSync(path);
    await startAndUse(dataDir, address, value);
}

/**
 * In a copy of the template, the file `pick(dataDir)` is replaced by `damage(its bytes)`: the
 * start fails (`check`), leaves nothing, and works once the file is restored.
 */
async function withCorruptFile(name: string, pick: (dataDir: string) => string,
    damage: (good: Buffer) => Uint8Array | string, check: (error: Error & { code?: string }) => void,
    value: number): Promise<void> {
    const dataDir = copyOfTemplate(name);
    const path = pick(dataDir);
    const good = readFileSync(path);
    writeFileSync(path, damage(good));
    check(await expectFailure({ address: templateAddress, dataDir }));
    await assertNothingLeft(name, dataDir, templateAddress);
    writeFileSync(path, good);
    assertTemplateRows(await startAndUse(dataDir, templateAddress, value));
}

// ---- a file system that fails or holds chosen operations ---------------------------------------

/** Holds the `nth` operation `op` on `path` until release(); `reached` resolves when it is held. */
function holdAt(op: FsOp, path: string, nth = 1): { fs: FileSystem; reached: Promise<void>; release: () => void } {
    const reached = new Deferred<void>();
    const released = new Deferred<void>();
    let seen = 0;
    const fs = hookedFs(async (o, p) => {
        if (reached.settled || o !== op || p !== path || ++seen < nth) return;
        reached.resolve();
        await released.promise;
    });
    return { fs, reached: reached.promise, release: () => released.resolve() };
}

/** Fails the operations `refused` picks with EACCES, as a read-only directory would. */
function refusing(refused: (op: FsOp, path: string, mode?: OpenMode) => boolean): FileSystem {
    return hookedFs((op, path, mode) => {
        if (refused(op, path, mode)) throw new FsError('EACCES', op, path);
    });
}

/** Refuses to create, replace, rename or remove anything under `dir`. */
function unwritableUnder(dir: string): FileSystem {
    return refusing((op, path, mode) => path.startsWith(dir)
        && (op === 'mkdir' || op === 'rename' || op === 'unlink' || (op === 'open' && mode !== 'read')));
}

// ---- setup ----------------------------------------------------------------------------------

before(async () => {
    root = mkdtempSync(join(tmpdir(), 'tqlite-start-failure-'));
    template = join(root, 'template');
    templateAddress = await freshAddress();
    leftovers = await Leftovers.baseline();
    // One clean run: it writes the template (and checks the checks: it must leave nothing).
    const node = await createNode({ address: templateAddress, dataDir: template, tickMs: TICK_MS,
        snapshot: { thresholdEntries: 4, trailingEntries: 1 } });
    try {
        const db = await connect({ servers: [templateAddress], database: 'life', timeoutMs: 10_000 });
        try {
            await db.exec('CREATE TABLE t (x INTEGER)');
            // Enough entries for snapshots in raft/ (the two newest are verified at every start).
            for (const x of TEMPLATE_ROWS) await db.exec('INSERT INTO t VALUES (?)', [x]);
        } finally {
            await db.close();
        }
    } finally {
        await node.close();
    }
    await assertNothingLeft('the template node closed', template, templateAddress);
});

after(() => {
    leftovers?.stop();
    rmSync(root, { recursive: true, force: true });
});

// ---- the address --------------------------------------------------------------------------

test('listen address in use: rejects with EADDRINUSE after closing the started node', async () => {
    const address = await freshAddress();
    const dataDir = join(root, 'in-use');
    const [host, port] = address.split(':') as [string, string];
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen({ host, port: Number(port), exclusive: true }, resolve));
    let error: Error & { code?: string };
    try {
        error = await expectFailure({ address, dataDir });
    } finally {
        await new Promise((resolve) => holder.close(resolve));
    }
    // The gateway's listen error is passed through as Node's system error (see the report: it
    // is not a TqliteError), its errno as `code`.
    assert.equal(error.code, 'EADDRINUSE', error.message);
    await assertNothingLeft('address in use', dataDir, address);
    await startAndUse(dataDir, address, 2);
});

test('an address nothing can listen on: ConfigError before anything is opened', async () => {
    const dataDir = join(root, 'bad-address');
    const error = await expectFailure({ address: 'localhost', dataDir });
    assertTyped(error, 'ERR_CONFIG', /localhost/);
    assert.equal(existsSync(dataDir), false, 'the data directory was created for a bad address');
    assert.ok(leftovers !== undefined);
    await leftovers.settled('bad address');
    leftovers.assertNoUnhandled('bad address');
});

test('a gateway listen address that is not host:port: the started node is closed, nothing left', async () => {
    const address = await freshAddress();
    const dataDir = join(root, 'bad-listen-address');
    // The Server constructor refuses it after Node.open started everything (src/index.ts).
    const error = await expectFailure({ address, dataDir, listenAddress: 'localhost' });
    assertTyped(error, 'ERR_CONFIG', /localhost/);
    await assertNothingLeft('bad listen address', dataDir, address);
    await startAndUse(dataDir, address, 2);
});

// ---- the data directory ---------------------------------------------------------------------

test('a file where the data directory should be: StorageError', async () => {
    await withFileInTheWay('dir-is-file', '', (error) => assertTyped(error, 'ERR_STORAGE', /dir-is-file/), 3);
});

test('an unwritable data directory: StorageError', async () => {
    const address = await freshAddress();
    const dataDir = join(root, 'unwritable');
    mkdirSync(dataDir);
    assertTyped(await expectFailure({ address, dataDir, fs: unwritableUnder(dataDir) }), 'ERR_STORAGE', /EACCES/);
    await assertNothingLeft('unwritable data directory', dataDir, address);
    await startAndUse(dataDir, address, 4);
});

test('an unwritable raft directory (the worker is starting meanwhile): StorageError', async () => {
    const address = await freshAddress();
    const dataDir = join(root, 'unwritable-raft');
    const error = await expectFailure({ address, dataDir, fs: unwritableUnder(join(dataDir, 'raft')) });
    assertTyped(error, 'ERR_STORAGE', /EACCES/);
    await assertNothingLeft('unwritable raft directory', dataDir, address);
    await startAndUse(dataDir, address, 5);
});

test('the first log segment cannot be created (after the bootstrap term was written): StorageError', async () => {
    const address = await freshAddress();
    const dataDir = join(root, 'no-segment');
    const fs = refusing((op, path, mode) => op === 'open' && mode === 'create' && path.endsWith('/raft/open-1'));
    assertTyped(await expectFailure({ address, dataDir, fs }), 'ERR_STORAGE', /EACCES/);
    await assertNothingLeft('first segment refused', dataDir, address);
    // The metadata holds term 1 and the log nothing: the retry must bootstrap again.
    await startAndUse(dataDir, address, 14);
});

test('a file where the raft directory should be: StorageError', async () => {
    await withFileInTheWay('raft-is-file', 'raft', (error) => assertTyped(error, 'ERR_STORAGE', /raft/), 6);
});

test('a corrupt info.yaml: StorageError ERR_STORAGE_CORRUPT', async () => {
    await withCorruptFile('corrupt-info', (dir) => join(dir, 'info.yaml'), () => 'ID: 1\n: : garbage\n',
        (error) => assertTyped(error, 'ERR_STORAGE_CORRUPT'), 7);
});

test('a copied data directory started at another address: ConfigError, the copy untouched', async () => {
    // go-dqlite's app refuses the same way: the copy would be a second node with the original's id.
    const dataDir = copyOfTemplate('copied-elsewhere');
    const before = readdirSync(join(dataDir, 'raft')).sort();
    const info = readFileSync(join(dataDir, 'info.yaml'), 'utf8');
    const address = await freshAddress();
    assertTyped(await expectFailure({ address, dataDir }), 'ERR_CONFIG',
        new RegExp(`"${templateAddress}" in info.yaml does not match "${address}"`));
    await assertNothingLeft('copied-elsewhere', dataDir, address);
    assert.deepEqual(readdirSync(join(dataDir, 'raft')).sort(), before);
    assert.equal(readFileSync(join(dataDir, 'info.yaml'), 'utf8'), info);
    assertTemplateRows(await startAndUse(dataDir, templateAddress, 19));
});

// ---- the raft log ---------------------------------------------------------------------------

/** The first file of `dir` whose name matches. */
function fileMatching(dir: string, pattern: RegExp): string {
    const name = readdirSync(dir).find((n) => pattern.test(n));
    assert.ok(name !== undefined, `no ${String(pattern)} in ${dir}: ${readdirSync(dir).join(' ')}`);
    return join(dir, name);
}

/** `bytes` with one bit of byte `at` flipped (a negative `at` counts from the end). */
function flipBit(bytes: Buffer, at: number): Buffer {
    const out = Buffer.from(bytes);
    const i = at < 0 ? out.length + at : at;
    out[i] = (out[i] as number) ^ 0x01;
    return out;
}

test('corrupt raft metadata: StorageError ERR_STORAGE_CORRUPT', async () => {
    await withCorruptFile('corrupt-metadata', (dir) => fileMatching(join(dir, 'raft'), /^metadata[12]$/),
        (good) => flipBit(good, -1), // the checksum
        (error) => assertTyped(error, 'ERR_STORAGE_CORRUPT', /metadata/), 8);
});

test('a corrupt synced log segment: StorageError ERR_STORAGE_CORRUPT', async () => {
    await withCorruptFile('corrupt-segment', (dir) => fileMatching(join(dir, 'raft'), /^(\d{16}-\d{16}|open-\d+)$/),
        (good) => flipBit(good, 0), // the header's magic
        (error) => assertTyped(error, 'ERR_STORAGE_CORRUPT', /segment/), 9);
});

/** The newest snapshot file of the template's log (names sort by index). */
function newestSnapshot(dataDir: string): string {
    const names = readdirSync(join(dataDir, 'raft')).filter((n) => n.startsWith('snapshot-')).sort();
    const name = names[names.length - 1];
    assert.ok(name !== undefined, 'the template has no snapshot');
    return join(dataDir, 'raft', name);
}

test('a corrupt snapshot file: StorageError ERR_STORAGE_CORRUPT', async () => {
    await withCorruptFile('corrupt-snapshot', newestSnapshot, (good) => flipBit(good, good.length >> 1),
        (error) => assertTyped(error, 'ERR_STORAGE_CORRUPT', /snapshot/), 15);
});

// ---- the SQLite worker ----------------------------------------------------------------------

test('a file where the state machine directory should be: the worker fails, StorageError', async () => {
    await withFileInTheWay('db-is-file', 'db', (error) => assertTyped(error, 'ERR_STORAGE', /ENOTDIR/), 10);
});

test('a corrupt durable-state file of the state machine: StorageError ERR_STORAGE_CORRUPT', async () => {
    await withCorruptFile('corrupt-state', (dir) => join(dir, 'db', 'state'), () => '{"format":1,"generation":',
        (error) => {
            // The worker's ERR_STORAGE_CORRUPT keeps its code across the thread boundary.
            const code = error instanceof TqliteError ? error.code : undefined;
            assert.equal(code, 'ERR_STORAGE_CORRUPT', `${error.name}: ${error.message}`);
            assert.match(error.message, /state file/);
        }, 11);
});

for (const point of ['install-before-switch', 'install-after-switch']) {
    test(`the worker dies while the state machine is restored (${point}): StorageError, no onFailure`, async () => {
        // Without its db/ directory the node restores the newest snapshot into the worker,
        // which exits (code 70) at `point` of the install.
        const dataDir = copyOfTemplate(`worker-dies-${point}`);
        rmSync(join(dataDir, 'db'), { recursive: true });
        const failures: unknown[] = [];
        const error = await expectFailure({ address: templateAddress, dataDir, testing: { fsmCrashPoint: point },
            onFailure: (e) => failures.push(e) });
        assertTyped(error, 'ERR_STORAGE', /exited with code 70/);
        await assertNothingLeft(`worker died at ${point}`, dataDir, templateAddress);
        assert.deepEqual(failures.map(String), [], 'onFailure called for a start that was rejected');
        // Recovery finishes (or redoes) the interrupted install.
        assertTemplateRows(await startAndUse(dataDir, templateAddress, 17));
    });
}

// ---- aborting a start in progress --------------------------------------------------------------

test('a signal already aborted: AbortError, nothing created', async () => {
    const address = await freshAddress();
    const dataDir = join(root, 'aborted-before');
    const controller = new AbortController();
    controller.abort();
    assertTyped(await expectFailure({ address, dataDir, signal: controller.signal }), 'ERR_ABORTED');
    assert.equal(existsSync(dataDir), false);
    await assertNothingLeft('aborted before', dataDir, address);
});

for (const point of [
    { name: 'while info.yaml is written', op: 'open' as const, file: '.info.yaml.tmp' },
    { name: 'while the log opens (the worker starting meanwhile)', op: 'readdir' as const, file: 'raft' },
    { name: 'while the bootstrap term is written', op: 'open' as const, file: 'raft/metadata1' },
]) {
    test(`aborted ${point.name}: AbortError once all it opened is closed`, async () => {
        const address = await freshAddress();
        const dataDir = join(root, `aborted-${point.op}-${point.file.replace(/\W/g, '_')}`);
        const hold = holdAt(point.op, join(dataDir, point.file));
        const controller = new AbortController();
        const starting = expectFailure({ address, dataDir, fs: hold.fs, signal: controller.signal });
        await hold.reached;
        controller.abort(new Error('test abort'));
        hold.release();
        assertTyped(await starting, 'ERR_ABORTED');
        await assertNothingLeft(`aborted ${point.name}`, dataDir, address);
        await startAndUse(dataDir, address, 12);
    });
}

test('aborted while the state machine is restored from a snapshot: AbortError once all is closed', async () => {
    // Without its db/ directory the node restores the newest snapshot (index > durable index 0).
    const dataDir = copyOfTemplate('aborted-restore');
    rmSync(join(dataDir, 'db'), { recursive: true });
    // The first read of the snapshot is the log's check at open, the second the restore's.
    const hold = holdAt('open', newestSnapshot(dataDir), 2);
    const controller = new AbortController();
    const starting = expectFailure({ address: templateAddress, dataDir, fs: hold.fs, signal: controller.signal });
    await hold.reached;
    controller.abort(new Error('test abort'));
    hold.release();
    const error = await starting;
    assertTyped(error, 'ERR_ABORTED', /restored/);
    await assertNothingLeft('aborted during restore', dataDir, templateAddress);
    assertTemplateRows(await startAndUse(dataDir, templateAddress, 16));
});

// ---- joining ------------------------------------------------------------------------------

test('a join to an address where nothing listens: starts, keeps trying, closes cleanly; joins later', async () => {
    // go-dqlite's app.New also returns while the join goes on in the background (app.Ready
    // waits for it): createNode() resolves, the role manager retries until close().
    const seedAddress = await freshAddress();
    const address = await freshAddress();
    const dataDir = join(root, 'joiner');
    // close() runs the handover only for a member of its own configuration: this node never
    // joined, so it must not ask the unreachable cluster anything (it used to wait out the
    // whole handover bound, 10 s by default, and log 'handover incomplete').
    const messages: string[] = [];
    const record = (_fields: object, message?: string): void => {
        messages.push(message ?? '');
    };
    const logger: Logger = { trace: record, debug: record, info: record, warn: record, error: record,
        child: () => logger };
    const joiner = await createNode({ address, dataDir, join: [seedAddress], tickMs: TICK_MS, logger,
        roles: { joinRetryMs: 100 } });
    const status = joiner.status();
    assert.equal(status.configuration.servers.length, 0, 'a joiner with nobody to join is not a member');
    const closing = joiner.close();
    assert.equal(joiner.close(), closing);
    await closing;
    await joiner.close();
    assert.ok(!messages.some((m) => /hand/.test(m)), `a handover was attempted: ${messages.join(' | ')}`);
    await assertNothingLeft('joiner closed while joining', dataDir, address);

    // The same directory once the seed is up: the node joins and serves a write through the leader.
    const seedDir = join(root, 'seed');
    const seed = await createNode({ address: seedAddress, dataDir: seedDir, tickMs: TICK_MS });
    try {
        const again = await createNode({ address, dataDir, join: [seedAddress], tickMs: TICK_MS,
            roles: { joinRetryMs: 100 } });
        try {
            const deadline = Date.now() + 10_000;
            while (!seed.status().configuration.servers.some((s) => s.id === again.id)) {
                assert.ok(Date.now() < deadline, 'the joiner never joined');
                await new Promise((resolve) => setTimeout(resolve, 20));
            }
            // (A spare receives no raft traffic, so it does not know the leader: the client gets
            // both addresses, as go-dqlite's node store would give it.)
            const db = await connect({ servers: [address, seedAddress], database: 'life', timeoutMs: 10_000 });
            try {
                await db.exec('CREATE TABLE t (x INTEGER)');
                await db.exec('INSERT INTO t VALUES (13)');
                assert.deepEqual(await db.query('SELECT x FROM t').all(), [{ x: 13 }]);
            } finally {
                await db.close();
            }
        } finally {
            await again.close();
        }
    } finally {
        await seed.close();
    }
    await assertNothingLeft('joiner and seed closed', dataDir, address);
    assert.deepEqual(fdsUnder(seedDir), []);
});
