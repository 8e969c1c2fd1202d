// Helpers for the process-level cluster tests (test/cluster/*.slow.test.ts) and bench/failover.ts:
// `tqlite node` child processes of the compiled CLI on 127.0.0.1 ports picked free, one
// temporary directory per cluster, and an admin client over every address. Every process
// started here is tracked by its ChildProcess; close() SIGKILLs only those still running and
// removes the directory. Stderr of each process is kept (last 64 KiB) for failure messages.

import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { createAdminClient, type AdminClient, type NodeInfo } from '../../src/client/index.js';
import { freePort, tempDir, waitFor } from '../integration/helpers.js';

export { freePort, tempDir, waitFor };

export const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

const STDERR_KEEP = 64 * 1024;

export interface Exit {
    readonly code: number | null;
    readonly signal: NodeJS.Signals | null;
}

export interface ProcNode {
    readonly index: number;
    readonly address: string;
    dir: string;
    child: ChildProcess | undefined;
    exited: Promise<Exit>;
    stderr: string;
    /** Every exit seen for this slot, in order (for the "0 crashes" checks). */
    readonly exits: Exit[];
}

export interface StartOptions {
    readonly join?: readonly string[];
    readonly extra?: readonly string[];
}

/** True while the child process has neither exited nor been killed by a signal. */
export function isAlive(child: ChildProcess | undefined): boolean {
    return child !== undefined && child.exitCode === null && child.signalCode === null;
}

export class ProcCluster {
    readonly nodes: ProcNode[] = [];
    readonly admin: AdminClient;
    private readonly root: { path: string; remove: () => void };
    private generation = 0;

    private constructor(addresses: string[], prefix: string) {
        this.root = tempDir(prefix);
        addresses.forEach((address, index) => this.nodes.push({
            index, address, dir: join(this.root.path, `n${index + 1}`), child: undefined,
            exited: Promise.resolve({ code: null, signal: null }), stderr: '', exits: [],
        }));
        this.admin = createAdminClient({ servers: addresses, timeoutMs: 3_000, dialTimeoutMs: 500,
            probeTimeoutMs: 1_000 });
    }

    static async create(size: number, prefix = 'procs'): Promise<ProcCluster> {
        const addresses: string[] = [];
        for (let i = 0; i < size; i++) addresses.push(`127.0.0.1:${await freePort()}`);
        return new ProcCluster(addresses, prefix);
    }

    get addresses(): string[] {
        return this.nodes.map((n) => n.address);
    }

    node(i: number): ProcNode {
        const n = this.nodes[i];
        if (n === undefined) throw new Error(`no node ${i}`);
        return n;
    }

    isRunning(i: number): boolean {
        return isAlive(this.node(i).child);
    }

    /** Spawns `tqlite node` for slot i (join: the addresses to join; none = bootstrap). */
    start(i: number, options: StartOptions = {}): ProcNode {
        const n = this.node(i);
        if (this.isRunning(i)) throw new Error(`node ${i} is already running`);
        const args = [MAIN, 'node', '--address', n.address, '--data', n.dir, '--log-level', 'info'];
        if (options.join !== undefined && options.join.length > 0) args.push('--join', options.join.join(','));
        args.push(...(options.extra ?? []));
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
        n.child = child;
        n.stderr = '';
        child.stderr?.setEncoding('utf8');
        child.stderr?.on('data', (chunk: string) => {
            n.stderr = (n.stderr + chunk).slice(-STDERR_KEEP);
        });
        n.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
            const exit = { code, signal };
            n.exits.push(exit);
            resolve(exit);
        }));
        this.generation++;
        return n;
    }

    /** SIGTERM (handover) and the exit. */
    async stop(i: number): Promise<Exit> {
        const n = this.node(i);
        if (!this.isRunning(i)) return n.exited;
        n.child?.kill('SIGTERM');
        return n.exited;
    }

    async kill9(i: number): Promise<Exit> {
        const n = this.node(i);
        if (!this.isRunning(i)) return n.exited;
        n.child?.kill('SIGKILL');
        return n.exited;
    }

    /** The slot whose address the cluster reports as leader (undefined: none known). */
    async leaderIndex(admin: AdminClient = this.admin): Promise<number | undefined> {
        const leader = await admin.leader();
        if (leader === undefined) return undefined;
        const index = this.nodes.findIndex((n) => n.address === leader.address);
        return index < 0 ? undefined : index;
    }

    async members(): Promise<NodeInfo[]> {
        return this.admin.cluster();
    }

    /** Waits until the configuration has exactly these role counts (and `size` members). */
    async waitForRoles(size: number, voters: number, standbys: number, timeoutMs: number): Promise<NodeInfo[]> {
        return waitFor(`${size} members: ${voters} voters, ${standbys} standbys`, timeoutMs, async () => {
            const members = await this.admin.cluster({ timeoutMs: 1_000 });
            return hasRoles(members, size, voters, standbys) ? members : undefined;
        });
    }

    /** Row count of `table` in the node's own copy of `database` (DUMP, opened locally). */
    async countOnNode(i: number, database: string, table: string): Promise<number> {
        const files = await this.admin.dump(this.node(i).address, database);
        // A WAL-mode image (header bytes 18-19 = 2) opened from memory has no WAL: read it in
        // rollback-journal mode (1).
        const bytes = Buffer.from(files[0]?.data ?? []);
        if (bytes.length >= 20) bytes.fill(1, 18, 20);
        const image = new Database(bytes, { readonly: true });
        try {
            return (image.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
        } finally {
            image.close();
        }
    }

    /** SIGKILL whatever is still running, close the admin client, remove the directory. */
    async close(): Promise<void> {
        await this.admin.close();
        for (let i = 0; i < this.nodes.length; i++) {
            if (this.isRunning(i)) this.node(i).child?.kill('SIGKILL');
        }
        await Promise.all(this.nodes.map((n) => n.exited));
        this.root.remove();
    }

    /** The last lines of every node's stderr (for assertion messages). */
    logs(lines = 15): string {
        return this.nodes.map((n) => `--- node ${n.index} ${n.address}\n`
            + n.stderr.trim().split('\n').slice(-lines).join('\n')).join('\n');
    }

    wipe(i: number): void {
        rmSync(this.node(i).dir, { recursive: true, force: true });
    }
}

export function hasRoles(members: readonly NodeInfo[], size: number, voters: number, standbys: number): boolean {
    const count = (role: string): number => members.filter((m) => m.role === role).length;
    return members.length === size && count('voter') === voters && count('standby') === standbys;
}

/** Expected roles of an n-node cluster with the defaults (3 voters, 3 standbys). */
export function expectedRoles(size: number): { voters: number; standbys: number; spares: number } {
    const voters = size >= 3 ? 3 : 1;
    const standbys = Math.min(Math.max(size - 3, 0), 3);
    return { voters, standbys, spares: size - voters - standbys };
}

export function summary(values: readonly number[]): { median: number; p95: number; max: number; n: number } {
    const sorted = [...values].sort((a, b) => a - b);
    const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
    return { median: at(0.5), p95: at(0.95), max: sorted[sorted.length - 1] ?? NaN, n: sorted.length };
}

export function envInt(name: string, fallback: number): number {
    const raw = process.env[name];
    if (raw === undefined || raw === '') return fallback;
    const value = Number.parseInt(raw, 10);
    if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative integer`);
    return value;
}

/**
 * Kills the current leader with SIGKILL and measures the time until one of the survivors
 * reports a different leader (admin LEADER on the survivors only, polled every 20 ms).
 */
export async function killLeader(cluster: ProcCluster, timeoutMs = 20_000): Promise<{ killed: number; ms: number }> {
    const killed = await waitFor('a leader before the kill', timeoutMs, () => cluster.leaderIndex());
    const survivors = cluster.nodes.filter((n) => n.index !== killed && cluster.isRunning(n.index));
    const others = createAdminClient({ servers: survivors.map((n) => n.address), timeoutMs: 1_000,
        dialTimeoutMs: 300, probeTimeoutMs: 500 });
    try {
        const t0 = performance.now();
        await cluster.kill9(killed);
        await waitFor('a new leader', timeoutMs, async () => {
            const leader = await others.leader({ timeoutMs: 500 });
            return leader !== undefined && leader.address !== cluster.node(killed).address ? leader : undefined;
        });
        return { killed, ms: performance.now() - t0 };
    } finally {
        await others.close();
    }
}

/** Waits until node i answers DESCRIBE and its configuration lists it as a voter. */
export async function waitForVoter(cluster: ProcCluster, i: number, timeoutMs: number): Promise<NodeInfo> {
    const address = cluster.node(i).address;
    return waitFor(`node ${i} back as a voter`, timeoutMs, async () => {
        await cluster.admin.describe(address, { timeoutMs: 1_000 });
        const members = await cluster.admin.cluster({ timeoutMs: 1_000 });
        return members.find((m) => m.address === address && m.role === 'voter');
    });
}
