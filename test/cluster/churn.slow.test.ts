// Goal: churn of a 3-node cluster of real `tqlite node` processes loses no acknowledged write
// (issue 6, "Churn"): a rolling SIGTERM restart of every node (same data directory, --join the
// others), `kill -9` of the leader three times (a new leader each time), a fourth node added
// then removed through the admin API and stopped, and a node that rejoins with a wiped data
// directory (its old id removed first; it comes back with a new id). Writes resume after each
// rolling step within CHURN_GAP_MS (default 2000); after each kill a new leader appears within
// KILL_LEADER_MAX_MS (default 5000: far beyond the 1-2 s randomized election timeout, so a miss
// means something is broken, not a loaded machine). The number, a median under 2 s, is
// measured over 20 kills by bench/failover.ts (which fails if it is not met); three kills on a
// machine shared with other tests are too few and too noisy to assert it here, so the median
// of these three is only printed.
// Method: child processes of the compiled CLI on free 127.0.0.1 ports; one client inserts rows
// with unique ids one after another for the whole test and records every acknowledged id
// and its time (errors, including indeterminate ones, are counted and not recorded). Gaps are
// the longest time without an acknowledgement between the start of a step and the first
// acknowledgement after the step completed. At the end the final SELECT must contain every
// acknowledged id, the membership must list exactly the right members, and every node's own
// copy (DUMP, opened locally) must hold the same number of rows. Every process started here
// is killed in the finally block; every SIGTERM must end in exit code 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Database } from '../../src/client/index.js';
import { envInt, killLeader, ProcCluster, summary, waitFor, waitForVoter } from './procs.js';

const GAP_MS = envInt('CHURN_GAP_MS', 2_000);
const KILL_LEADER_MAX_MS = envInt('KILL_LEADER_MAX_MS', 5_000);
const KILLS = envInt('CHURN_KILLS', 3);
const STEP_MS = 30_000;

class Writer {
    readonly acked: number[] = [];
    readonly ackedAt: number[] = [];
    errors = new Map<string, number>();
    private stopped = false;
    private running: Promise<void> | undefined;
    private next = 1;

    constructor(private readonly db: Database) {}

    start(): void {
        this.running = this.loop();
    }

    private async loop(): Promise<void> {
        while (!this.stopped) {
            const id = this.next++;
            try {
                await this.db.exec('INSERT INTO t (id, v) VALUES (?, ?)', [id, `row ${id}`], { timeoutMs: 5_000 });
                this.acked.push(id);
                this.ackedAt.push(performance.now());
            } catch (error) {
                const code = (error as { code?: string }).code ?? String(error);
                this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
                // Pace retries against a cluster without a leader (load, not synchronisation).
                await new Promise((resolve) => setTimeout(resolve, 20));
            }
        }
    }

    async stop(): Promise<void> {
        this.stopped = true;
        await this.running;
    }

    /** Waits for an acknowledgement after `since`, and returns the longest ack-less gap since `from`. */
    async gap(from: number, since: number): Promise<number> {
        await waitFor('a write acknowledged after the step', STEP_MS,
            () => (this.ackedAt.at(-1) ?? 0) > since ? true : undefined);
        let previous = from;
        let longest = 0;
        for (const at of this.ackedAt) {
            if (at <= from) continue;
            longest = Math.max(longest, at - previous);
            previous = at;
            if (at > since) break;
        }
        return longest;
    }
}

function others(cluster: ProcCluster, i: number): string[] {
    return cluster.addresses.filter((_, j) => j !== i);
}

async function caughtUp(cluster: ProcCluster, i: number, rows: number): Promise<void> {
    let last: unknown = 'no answer';
    await waitFor(`node ${i} to hold ${rows} rows`, STEP_MS, async () => {
        try {
            last = await cluster.countOnNode(i, 'churn', 't');
        } catch (error) {
            last = error;
            throw error;
        }
        return (last as number) >= rows ? true : undefined;
    }).catch((error: unknown) => {
        assert.fail(`${String(error)}; last DUMP: ${String(last)}\n${cluster.logs(30)}`);
    });
}

/**
 * REMOVE through the admin API, retried while the leader answers "a membership change is
 * already in progress" (the previous change, e.g. the promotion we just saw in CLUSTER, is
 * not committed yet; dqlite's CLUSTER also shows the latest, possibly uncommitted, one).
 */
async function removeMember(cluster: ProcCluster, id: bigint): Promise<void> {
    await waitFor(`removal of ${id}`, STEP_MS, async () => {
        try {
            await cluster.admin.remove(id, { timeoutMs: 2_000 });
            return true;
        } catch (error) {
            const members = await cluster.admin.cluster({ timeoutMs: 1_000 });
            if (!members.some((m) => m.id === id)) return true;
            throw error;
        }
    });
}

test('churn: rolling restarts, leader kills, remove, wiped rejoin: no acknowledged write lost', async () => {
    const cluster = await ProcCluster.create(4, 'churn');
    const size = 3;
    let db: Database | undefined;
    let writer: Writer | undefined;
    try {
        cluster.start(0);
        for (let i = 1; i < size; i++) cluster.start(i, { join: [cluster.node(0).address] });
        await cluster.waitForRoles(size, 3, 0, 20_000);
        db = await connect({ servers: cluster.addresses.slice(0, size), database: 'churn', timeoutMs: 10_000 });
        await db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
        writer = new Writer(db);
        writer.start();
        const w = writer;
        await waitFor('first writes', STEP_MS, () => (w.acked.length >= 20 ? true : undefined));

        // 1. Rolling SIGTERM restart of every node.
        const gaps: number[] = [];
        for (let i = 0; i < size; i++) {
            const from = performance.now();
            const exit = await cluster.stop(i);
            assert.deepEqual(exit, { code: 0, signal: null }, `node ${i} exit on SIGTERM\n${cluster.logs()}`);
            cluster.start(i, { join: others(cluster, i).slice(0, size - 1) });
            await waitForVoter(cluster, i, STEP_MS);
            await caughtUp(cluster, i, w.acked.length);
            gaps.push(await w.gap(from, performance.now()));
        }
        console.log(`# rolling restart: write gaps ${gaps.map((g) => g.toFixed(0)).join(', ')} ms`);

        // 2. kill -9 of the leader, restarted each time with the same data directory.
        const failovers: number[] = [];
        const killGaps: number[] = [];
        for (let k = 0; k < KILLS; k++) {
            const from = performance.now();
            const { killed, ms } = await killLeader(cluster);
            failovers.push(ms);
            cluster.start(killed, { join: others(cluster, killed).slice(0, size - 1) });
            await waitForVoter(cluster, killed, STEP_MS);
            await caughtUp(cluster, killed, w.acked.length);
            killGaps.push(await w.gap(from, performance.now()));
        }
        const f = summary(failovers);
        console.log(`# kill -9 leader: new leader after ${failovers.map((t) => t.toFixed(0)).join(', ')} ms `
            + `(median ${f.median.toFixed(0)}); write gaps ${killGaps.map((g) => g.toFixed(0)).join(', ')} ms`);

        // 3. A fourth node joins (standby), is removed through the admin API, then stopped.
        cluster.start(3, { join: cluster.addresses.slice(0, size) });
        // 45 s: if the joiner's own promotion fails (see formation.slow.test.ts) only the leader's
        // periodic adjustment (every 30 s) makes it a standby.
        const members4 = await cluster.waitForRoles(4, 3, 1, 45_000);
        const fourth = members4.find((m) => m.address === cluster.node(3).address);
        assert.equal(fourth?.role, 'standby');
        await removeMember(cluster, fourth.id);
        const exit4 = await cluster.stop(3);
        assert.deepEqual(exit4, { code: 0, signal: null }, `removed node exit\n${cluster.logs()}`);
        const after = await cluster.waitForRoles(3, 3, 0, STEP_MS);
        assert.deepEqual(after.map((m) => m.address).sort(), cluster.addresses.slice(0, size).sort());

        // 4. A follower rejoins with a wiped data directory: old id removed first, new id.
        const leader = await waitFor('a leader', STEP_MS, () => cluster.leaderIndex());
        const wiped = (leader + 1) % size;
        const old = after.find((m) => m.address === cluster.node(wiped).address);
        assert.ok(old !== undefined);
        const fromWipe = performance.now();
        assert.deepEqual(await cluster.stop(wiped), { code: 0, signal: null }, cluster.logs());
        await removeMember(cluster, old.id);
        cluster.wipe(wiped);
        cluster.start(wiped, { join: others(cluster, wiped).slice(0, size - 1) });
        const back = await waitForVoter(cluster, wiped, STEP_MS);
        assert.notEqual(back.id, old.id, 'a wiped node comes back with a new id');
        const final = await cluster.waitForRoles(3, 3, 0, STEP_MS);
        assert.ok(!final.some((m) => m.id === old.id), 'the old id is gone');
        await caughtUp(cluster, wiped, w.acked.length);
        const wipeGap = await w.gap(fromWipe, performance.now());
        console.log(`# wiped rejoin: write gap ${wipeGap.toFixed(0)} ms`);

        // 5. Every acknowledged write is there, on every node.
        await w.stop();
        const rows = await db.query('SELECT id FROM t ORDER BY id').all() as { id: number }[];
        const present = new Set(rows.map((r) => r.id));
        const lost = w.acked.filter((id) => !present.has(id));
        console.log(`# acknowledged ${w.acked.length} writes, ${rows.length} rows, `
            + `errors ${JSON.stringify(Object.fromEntries(w.errors))}`);
        assert.deepEqual(lost, [], 'acknowledged writes lost');
        for (let i = 0; i < size; i++) {
            await waitFor(`node ${i} to hold ${rows.length} rows`, STEP_MS, async () =>
                (await cluster.countOnNode(i, 'churn', 't')) === rows.length ? true : undefined);
        }
        await db.close();
        db = undefined;
        for (let i = size - 1; i >= 0; i--) {
            assert.deepEqual(await cluster.stop(i), { code: 0, signal: null }, `node ${i}\n${cluster.logs()}`);
        }

        for (const [i, g] of gaps.entries()) assert.ok(g <= GAP_MS, `rolling step ${i}: writes resumed after ${g} ms`);
        assert.ok(f.max <= KILL_LEADER_MAX_MS, `failover took ${f.max} ms`);
    } finally {
        await writer?.stop();
        await db?.close();
        await cluster.close();
    }
});
