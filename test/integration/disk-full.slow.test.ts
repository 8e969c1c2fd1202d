// Goal: a leader whose disk is full hands leadership to a voter that can still write, so that
// one full disk does not make the whole cluster refuse writes (src/node/disk-full.ts; the class
// of jepsen.dqlite's disk nemesis, TESTING.md §1.1–1.2). SQLITE_FULL with room left on the disk
// (SQLite's max_page_count, or one transaction larger than the room) moves nothing, and is
// checked at most once per DISK_FULL_RETRY_MS.
// Method: three createNode() nodes in this process.
//  1-2. The free space the node sees comes from the test hook testing.freeBytes (0 for "full",
//       1 GiB for "room left"); SQLITE_FULL is provoked on the leader with PRAGMA max_page_count
//       on the client's one connection (poolSize 1), so both cases run anywhere.
//  3.   A real full disk: the first node's data directory is a 64 MiB tmpfs, filled with a
//       balloon file once the cluster is up. Needs mount(2) (root in CI); without it the test is
//       skipped, saying why. The full node must either go on as a follower or stop with a
//       StorageError about the full disk, never serve a wrong answer; the other two commit on.
//       With room made again, the full node restarted catches up to the same pages.
// Deadlines on every wait; no sleeps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createAdminClient, type Database } from '../../src/client/index.js';
import { createNode, type TqliteNode } from '../../src/index.js';
import { SqliteError } from '../../src/lib/errors.js';
import { freeBytesOf } from '../../src/node/disk-full.js';
import { expectSamePages, freePort, memoryLogger, startCluster, tempDir, waitFor } from './helpers.js';

const GIB = 1024 ** 3;

/** One connection, so that a PRAGMA and the statements after it share a SQLite session. */
function oneConnection(addresses: readonly string[]): Promise<Database> {
    return connect({ servers: [...addresses], database: 'app', timeoutMs: 20_000, poolSize: 1 });
}

async function expectFull(db: Database, sql: string): Promise<void> {
    await assert.rejects(db.exec(sql), (error: unknown) => {
        assert.ok(error instanceof SqliteError, String(error));
        assert.equal(error.sqliteCode & 0xff, 13, error.message);
        return true;
    });
}

test('SQLITE_FULL on a leader whose disk is full: leadership moves, writes go on', async () => {
    const full = new Set<string>();
    const { logger, lines } = memoryLogger('info');
    const cluster = await startCluster(3, {
        logger, testing: { freeBytes: async (dir) => (full.has(dir) ? 0 : GIB) },
    });
    try {
        const leader = await waitFor('a leader', 10_000, () => cluster.leader());
        const index = cluster.nodes.indexOf(leader);
        full.add(join(cluster.dirs[index] as string, 'db'));
        const db = await oneConnection(cluster.addresses);
        await db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, b BLOB)');
        await db.query('PRAGMA max_page_count = 1').all(); // the current size: nothing may grow
        await expectFull(db, 'INSERT INTO t VALUES (1, randomblob(100000))');
        const next = await waitFor('leadership to move', 10_000, () => {
            const l = cluster.leader();
            return l !== undefined && l !== leader ? l : undefined;
        });
        assert.ok(lines().some((l) => l.includes('disk full: handing leadership over')), lines().join('\n'));
        // The client follows the new leader (a fresh session there: no max_page_count).
        await db.exec('INSERT INTO t VALUES (2, randomblob(100000))');
        assert.deepEqual(await db.query('SELECT k FROM t').all(), [{ k: 2 }]);
        await db.close();
        assert.equal(leader.status().role, 'follower');
        assert.ok(next.status().configuration.servers.some((s) => s.id === leader.id && s.role === 'voter'),
            'the full node stays a voter');
    } finally {
        await cluster.close();
    }
});

test('SQLITE_FULL with room left on the disk (max_page_count): leadership stays, one check', async () => {
    const { logger, lines } = memoryLogger('info');
    const cluster = await startCluster(3, { logger, testing: { freeBytes: async () => GIB } });
    try {
        const leader = await waitFor('a leader', 10_000, () => cluster.leader());
        const db = await oneConnection(cluster.addresses);
        await db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, b BLOB)');
        await db.query('PRAGMA max_page_count = 1').all();
        await expectFull(db, 'INSERT INTO t VALUES (1, randomblob(100000))');
        const roomLeft = (): string[] => lines().filter((l) => l.includes('SQL failed with room left'));
        await waitFor('the disk check', 10_000, () => (roomLeft().length > 0 ? true : undefined));
        await expectFull(db, 'INSERT INTO t VALUES (2, randomblob(100000))'); // within DISK_FULL_RETRY_MS
        await db.exec('INSERT INTO t VALUES (3, x\'00\')'); // fits in the pages it has
        assert.equal(roomLeft().length, 1, 'checked again within DISK_FULL_RETRY_MS');
        assert.equal(cluster.leader(), leader);
        assert.ok(!lines().some((l) => l.includes('disk full')), lines().join('\n'));
        await db.close();
    } finally {
        await cluster.close();
    }
});

test('freeBytesOf: the free bytes of a real file system', async () => {
    const dir = tempDir('free');
    try {
        const free = await freeBytesOf(dir.path);
        assert.ok(Number.isSafeInteger(free) && free > 0, String(free));
    } finally {
        dir.remove();
    }
});

/** Mounts a tmpfs of `mib` MiB on `dir`; undefined when this machine does not allow it (not root). */
function mountTmpfs(dir: string, mib: number): string | undefined {
    try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m`, 'tmpfs', dir], { stdio: 'pipe' });
        return undefined;
    } catch (error) {
        return String((error as { stderr?: Buffer }).stderr ?? error).trim();
    }
}

test('a real full disk under the leader: writes go on at another node', async (t) => {
    const root = tempDir('disk-full');
    const dirs = [0, 1, 2].map((i) => join(root.path, `n${i + 1}`));
    for (const d of dirs) mkdirSync(d);
    const nodes: TqliteNode[] = [];
    let mounted = false;
    try {
        const refused = mountTmpfs(dirs[0] as string, 64);
        if (refused !== undefined) {
            t.skip(`cannot mount a tmpfs here (${refused}): needs root`);
            return;
        }
        mounted = true;
        await fullDiskUnderLeader(dirs, nodes);
    } finally {
        const closed = await Promise.allSettled(nodes.map((n) => n.close()));
        if (mounted) unmount(dirs[0] as string);
        root.remove();
        for (const c of closed) if (c.status === 'rejected') throw c.reason;
    }
});

/** Unmounts `dir`, lazily if it is busy (then it goes once the last user let go). */
function unmount(dir: string): void {
    try {
        execFileSync('umount', [dir], { stdio: 'pipe' });
    } catch {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
    }
}

async function fullDiskUnderLeader(dirs: readonly string[], nodes: TqliteNode[]): Promise<void> {
    const { logger, lines } = memoryLogger('info', 2000);
    const addresses: string[] = [];
    for (let i = 0; i < 3; i++) addresses.push(`127.0.0.1:${await freePort()}`);
    const failures: unknown[] = [];
    for (let i = 0; i < 3; i++) {
        nodes.push(await createNode({
            address: addresses[i] as string, dataDir: dirs[i] as string, logger,
            join: i === 0 ? [] : [addresses[0] as string], onFailure: (e) => void failures.push(e),
        }));
    }
    const first = nodes[0] as TqliteNode;
    await waitFor('3 voters', 20_000, () => (first.status().configuration.servers
        .filter((s) => s.role === 'voter').length === 3 ? true : undefined));
    // The node on the small disk must lead: after an election elsewhere, leadership goes back to it.
    const admin = createAdminClient({ servers: addresses, timeoutMs: 10_000 });
    try {
        await waitFor('the first node to lead', 20_000, async () => {
            if (first.status().role === 'leader') return true;
            await admin.transfer(first.id);
            return undefined;
        });
    } finally {
        await admin.close();
    }
    const db = await connect({ servers: addresses, database: 'app', timeoutMs: 5_000 });
    try {
        await db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, b BLOB)');
        for (let k = 0; k < 20; k++) await db.exec('INSERT INTO t VALUES (?, randomblob(10000))', [k]);
        // Fill the file system: a balloon of its whole free space.
        const balloon = join(dirs[0] as string, 'balloon');
        try {
            writeFileSync(balloon, Buffer.alloc(await freeBytesOf(dirs[0] as string)));
        } catch {
            // ENOSPC part-way is fine: the disk is full either way.
        }
        assert.ok(await freeBytesOf(dirs[0] as string) < 1024 * 1024, 'the balloon did not fill the disk');
        // Writes: the first may fail SQLITE_FULL (the client sees it), then another node leads.
        const outcomes: string[] = [];
        let k = 100;
        const newLeader = await waitFor('another node to lead and commit', 30_000, async () => {
            try {
                await db.exec('INSERT INTO t VALUES (?, randomblob(10000))', [k++]);
                outcomes.push('ok');
            } catch (error) {
                const e = error as { sqliteCode?: number; code?: string };
                outcomes.push(String(e.sqliteCode ?? e.code));
            }
            const l = nodes.find((n) => n.status().role === 'leader');
            return l !== undefined && l !== first && outcomes.at(-1) === 'ok' ? l : undefined;
        });
        console.log(`writes while the disk filled: ${outcomes.join(' ')}`);
        for (let i = 0; i < 20; i++) await db.exec('INSERT INTO t VALUES (?, randomblob(10000))', [1000 + i]);
        assert.deepEqual(await db.query('SELECT count(*) AS n FROM t WHERE k >= 1000').all(), [{ n: 20 }]);
        assert.ok(newLeader !== first);
        // The full node: still a follower, or stopped with a StorageError that says why.
        for (const f of failures) {
            assert.equal((f as { code?: string }).code, 'ERR_STORAGE', String(f));
            assert.match(String(f), /ENOSPC|no space|full/i);
        }
        console.log(`full node: ${failures.length === 0 ? first.status().role : `failed: ${String(failures[0])}`}`);
        // Only the full node may log errors (its stop); the two others none.
        const errors = lines().filter((l) => /"level":"(error|fatal)"/.test(l));
        const own = errors.filter((l) => l.includes(`"node":"${first.id}"`));
        assert.deepEqual(errors.filter((l) => !own.includes(l)), []);
        if (failures.length > 0) assert.ok(own.length > 0, 'the full node stopped without logging why');
        // Room again: the full node, restarted, catches up and holds the same pages.
        rmSync(balloon, { force: true });
        await first.close();
        nodes[0] = await createNode({ address: addresses[0] as string, dataDir: dirs[0] as string, logger });
        await expectSamePages(nodes);
    } finally {
        await db.close();
    }
}
