// Helpers for in-process cluster tests: free loopback ports (outside the ephemeral range),
// temporary data directories, a cluster of createNode() nodes formed the way go-dqlite's app
// does it (bootstrap the first node; the others join and the role managers assign the roles),
// and polling with a deadline (no sleeps as synchronisation).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Database } from '../../src/client/index.js';
import { createNode, type CreateNodeOptions, type TqliteNode } from '../../src/index.js';
import { jsonLogger, type Logger, type LogLevel } from '../../src/lib/logger.js';
import { freeLoopbackPort } from '../../src/lib/net.js';

/**
 * A TCP port on 127.0.0.1 below the kernel's ephemeral range, never handed out twice by this
 * process (see src/lib/net.ts for why).
 */
export const freePort = freeLoopbackPort;

/** A JSON logger that keeps its last `keep` lines in memory, for failure messages. */
export function memoryLogger(level: LogLevel = 'info', keep = 400): { logger: Logger; lines: () => string[] } {
    const kept: string[] = [];
    const logger = jsonLogger({ level, write: (line) => {
        kept.push(line.trimEnd());
        if (kept.length > keep) kept.splice(0, kept.length - keep);
    } });
    return { logger, lines: () => [...kept] };
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
    const path = mkdtempSync(join(tmpdir(), `tqlite-${prefix}-`));
    return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** Polls `check` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(
    what: string, timeoutMs: number, check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let lastError: unknown;
    for (;;) {
        try {
            const value = await check();
            if (value !== undefined) return value;
        } catch (error) {
            lastError = error;
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`, { cause: lastError });
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
}

export interface TestCluster {
    readonly nodes: (TqliteNode | undefined)[];
    readonly addresses: string[];
    readonly dirs: string[];
    start(i: number, extra?: Partial<CreateNodeOptions>): Promise<TqliteNode>;
    leader(): TqliteNode | undefined;
    close(): Promise<void>;
}

export async function startCluster(size: number, options: Partial<CreateNodeOptions> = {}): Promise<TestCluster> {
    const dir = tempDir('cluster');
    const addresses: string[] = [];
    for (let i = 0; i < size; i++) addresses.push(`127.0.0.1:${await freePort()}`);
    const dirs = addresses.map((_, i) => join(dir.path, `n${i + 1}`));
    const nodes: (TqliteNode | undefined)[] = addresses.map(() => undefined);
    const cluster: TestCluster = {
        nodes,
        addresses,
        dirs,
        async start(i, extra = {}) {
            const node = await createNode({
                address: addresses[i] as string,
                dataDir: dirs[i] as string,
                join: i === 0 ? [] : [addresses[0] as string],
                ...options,
                ...extra,
            });
            nodes[i] = node;
            return node;
        },
        leader() {
            return nodes.find((n) => n !== undefined && n.status().role === 'leader');
        },
        async close() {
            await Promise.all(nodes.map((n) => n?.close()));
            dir.remove();
        },
    };
    try {
        // The others join through the first node's address and the role manager does the rest
        // (go-dqlite app semantics): with 3 or more members, 3 voters, then standbys.
        for (let i = 0; i < size; i++) await cluster.start(i);
        const voters = size >= 3 ? 3 : 1;
        const standbys = size >= 3 ? Math.min(size - 3, 3) : 0;
        await waitFor(`${voters} voters and ${standbys} standbys`, 20_000, () => {
            const servers = cluster.leader()?.status().configuration.servers ?? [];
            const count = (role: string): number => servers.filter((s) => s.role === role).length;
            return servers.length === size && count('voter') === voters && count('standby') === standbys
                ? true : undefined;
        });
    } catch (error) {
        await cluster.close();
        throw error;
    }
    return cluster;
}

/**
 * Waits until every node applied what the leader committed, then asserts they all hold the same
 * pages (digest and integrity of every database, from node.inspect()).
 */
export async function expectSamePages(nodes: readonly TqliteNode[], timeoutMs = 30_000): Promise<void> {
    const leader = await waitFor('a leader', timeoutMs, () => nodes.find((n) => n.status().role === 'leader'));
    const target = leader.status().commitIndex;
    await waitFor('every node to apply everything', timeoutMs, () =>
        (nodes.every((n) => n.status().appliedIndex >= target) ? true : undefined));
    const digests = await Promise.all(nodes.map(async (n) =>
        (await n.inspect()).databases.map((d) => `${d.database}:${d.sha256}:${d.integrity}`)));
    for (const d of digests) assert.deepEqual(d, digests[0]);
}

/** Request outcomes of a load test, counted by label ('write ok', 'write ERR_NOT_LEADER', ...). */
export class Outcomes {
    readonly counts = new Map<string, number>();

    add(label: string): void {
        this.counts.set(label, (this.counts.get(label) ?? 0) + 1);
    }

    /** Counts `${what} ${code}` for a failed request (its error code, or `other`). */
    failed(what: string, error: unknown): void {
        const e = error as { code?: string; sqliteCode?: number };
        this.add(`${what} ${e.sqliteCode ?? e.code ?? 'other'}`);
    }

    get(label: string): number {
        return this.counts.get(label) ?? 0;
    }

    toString(): string {
        return JSON.stringify(Object.fromEntries([...this.counts].sort()));
    }
}

/** Creates table t (k INTEGER PRIMARY KEY, w INTEGER, b BLOB) in database 'app'; returns a client opener. */
export async function appWithTable(addresses: readonly string[]): Promise<() => Promise<Database>> {
    const open = (): Promise<Database> => connect({ servers: [...addresses], database: 'app', timeoutMs: 20_000 });
    const setup = await open();
    await setup.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, w INTEGER, b BLOB)');
    await setup.close();
    return open;
}

/**
 * INSERTs key `k` (worker `w`, a random blob of `blobBytes`) into the table of appWithTable;
 * an acknowledged key goes to `acknowledged` and `${label} ok` to outcomes, a failure is counted
 * by its code. Resolves whether it was acknowledged.
 */
export async function insertRecorded(db: Database, k: number, w: number, blobBytes: number, label: string,
    acknowledged: number[], outcomes: Outcomes): Promise<boolean> {
    try {
        await db.exec(`INSERT INTO t VALUES (?, ?, randomblob(${blobBytes}))`, [k, w]);
        acknowledged.push(k);
        outcomes.add(`${label} ok`);
        return true;
    } catch (error) {
        outcomes.failed(label, error);
        return false;
    }
}
