// What a node leaves behind once its start failed or it closed, measured against a baseline
// taken before any node ran: the targets of /proc/self/fd under its data directory (at once:
// everything must be closed when the promise settles), whether its address can be bound again,
// the process's threads (a Worker is one) and process.getActiveResourcesInfo() per type
// (polled with a deadline: Node releases some handles a few turns later), and the unhandled
// promise rejections seen since the baseline. Also the one write-and-read a test makes to see
// that a node serves. Shared by the test/node suites.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { connect } from '../../src/client/index.js';

function resources(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
    return counts;
}

export function threads(): number {
    return readdirSync('/proc/self/task').length;
}

/** The kernel function each of this process's threads sleeps in ('0' or '' where unknown or running). */
function wchans(): string[] {
    const out: string[] = [];
    for (const task of readdirSync('/proc/self/task')) {
        try {
            out.push(readFileSync(`/proc/self/task/${task}/wchan`, 'utf8').trim());
        } catch {
            // the thread ended between readdir and read
        }
    }
    return out;
}

/** How many of this process's threads sleep in the kernel function `wchan` (e.g. 'wait_for_partner'). */
export function threadsWaitingIn(wchan: string): number {
    return wchans().filter((w) => w === wchan).length;
}

/** Whether /proc tells where threads sleep (some kernels hide it): libuv's idle threads always do. */
export function wchanReadable(): boolean {
    return wchans().some((w) => w !== '' && w !== '0');
}

/** Targets of this process's file descriptors that lie under `dir`. */
export function fdsUnder(dir: string): string[] {
    const out: string[] = [];
    for (const fd of readdirSync('/proc/self/fd')) {
        try {
            const target = readlinkSync(`/proc/self/fd/${fd}`);
            if (target.startsWith(dir)) out.push(target);
        } catch {
            // closed between readdir and readlink
        }
    }
    return out;
}

export function canListen(address: string): Promise<boolean> {
    const [host, port] = address.split(':') as [string, string];
    return new Promise((resolve) => {
        const server = createServer();
        server.once('error', () => resolve(false));
        server.listen({ host, port: Number(port), exclusive: true }, () => server.close(() => resolve(true)));
    });
}

function turn(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
}

/** Polls `condition` every 10 ms until it holds, failing with `what` after `deadlineMs`. */
export async function until(condition: () => boolean, what: string, deadlineMs = 10_000): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    while (!condition()) {
        if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
}

export class Leftovers {
    private readonly unhandled: unknown[] = [];
    private readonly onUnhandled = (reason: unknown): void => {
        this.unhandled.push(reason);
    };

    private constructor(private readonly baseline: { resources: Map<string, number>; threads: number }) {
        process.on('unhandledRejection', this.onUnhandled);
    }

    /** Takes the baseline (once libuv's thread pool, created on first use, runs) and starts counting. */
    static async baseline(): Promise<Leftovers> {
        await stat('/');
        for (let i = 0; i < 5; i++) await turn();
        return new Leftovers({ resources: resources(), threads: threads() });
    }

    stop(): void {
        process.off('unhandledRejection', this.onUnhandled);
    }

    /** What exceeds the baseline now (resource types with more instances, extra threads). */
    excess(): string[] {
        const out: string[] = [];
        for (const [r, n] of resources()) {
            const was = this.baseline.resources.get(r) ?? 0;
            if (n > was) out.push(`${n - was} × ${r}`);
        }
        const extraThreads = threads() - this.baseline.threads;
        if (extraThreads > 0) out.push(`${extraThreads} thread(s)`);
        return out;
    }

    /** Polls until nothing exceeds the baseline, for at most 5 s (handles close a few turns late). */
    async settled(what: string): Promise<void> {
        const deadline = Date.now() + 5_000;
        for (;;) {
            const left = this.excess();
            if (left.length === 0) return;
            if (Date.now() > deadline) assert.fail(`${what}: still active: ${left.join(', ')}`);
            await new Promise((resolve) => setTimeout(resolve, 10));
        }
    }

    assertNoUnhandled(what: string): void {
        assert.deepEqual(this.unhandled.map(String), [], `${what}: unhandled rejections`);
    }

    /** Everything a failed or closed start must leave: nothing under `dataDir`, the address free. */
    async assertNothingLeft(what: string, dataDir: string, address: string): Promise<void> {
        assert.deepEqual(fdsUnder(dataDir), [], `${what}: file descriptors left under the data directory`);
        assert.equal(await canListen(address), true, `${what}: ${address} cannot be bound again`);
        await this.settled(what);
        this.assertNoUnhandled(what);
    }
}

/** Through a client of `address`: creates table t of `database` if needed, inserts `value`, reads t back. */
export async function writeAndRead(address: string, database: string, value: number): Promise<number[]> {
    const db = await connect({ servers: [address], database, timeoutMs: 10_000 });
    try {
        await db.exec('CREATE TABLE IF NOT EXISTS t (x INTEGER)');
        await db.exec('INSERT INTO t VALUES (?)', [value]);
        return (await db.query('SELECT x FROM t ORDER BY x').all()).map((r) => Number(r.x));
    } finally {
        await db.close();
    }
}
