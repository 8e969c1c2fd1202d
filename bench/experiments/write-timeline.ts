// Where one write's time goes (issue 7, kvwrite 1): a 3-node cluster of a tree built with
// write-timeline.patch (timestamps of named points: the leader's wire session, its SQLite worker,
// the raft driver's sends, steps and log writes on every node, and the background work —
// durable-index fsyncs, checkpoints, segment preallocation, GC pauses), one client writing one
// row at a time (or WT_ROWS rows of WT_VALUE_BYTES bytes per statement, e.g. 16 × 65536 for
// compare's bulk load). Run it through write-timeline.sh, which builds the patched tree.
//
//   node build/bench/experiments/write-timeline.js PATCHED_BUILD_DIR [seconds]
//
// Prints (1) for each named point, the median time after the client sent a write at which it
// first happened within that write (only points seen in ≥ 30 % of writes): a timeline of the
// typical write; roles L (leader's main thread), Lw (its worker), F0/F1 (followers, +w worker);
// beside it the same for the slow writes (> 3× the median), to show where they lose their time;
// (2) the latency percentiles; (3) the share of the slow writes that overlapped each kind of
// background work on any node, and the share that overlapped none.
//
// Caveats. Points carry no write identity: a point counts for a write if it is the first of its
// kind between the client's send and the reply, so a late point of the previous write (the
// leader's `commit` to its worker, a heartbeat's answer) can stand in for this one's; a
// follower's L_post/W_recv are its apply of an earlier entry (followers learn commits with the
// next append). GC pauses are those of every thread (main and worker); "nothing logged" still
// includes the tracer's own file appends (every 200 ms per thread) and the scheduler. Clocks:
// performance.timeOrigin + now() of each process, assumed aligned to well under 0.1 ms.
// Only the processes it started are signalled; its temporary directory is removed.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, createAdminClient } from '../../src/client/index.js';
import { freeLoopbackPort } from '../../src/lib/net.js';

const tree = resolve(process.argv[2] ?? 'build');
const seconds = Number(process.argv[3] ?? 20);
const WARMUP_MS = 3_000;
/** Each write: one INSERT OR REPLACE of WT_ROWS (1) rows of WT_VALUE_BYTES (100) random bytes, keys in [0, WT_KEYS). */
const ROWS = Number(process.env.WT_ROWS ?? 1);
const VALUE_BYTES = Number(process.env.WT_VALUE_BYTES ?? 100);
const KEYS = Number(process.env.WT_KEYS ?? 10_000);

interface Event { readonly at: number; readonly who: string; readonly name: string }

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function quantile(sorted: readonly number[], q: number): number {
    return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] ?? NaN;
}

async function main(): Promise<void> {
    const root = mkdtempSync(join(tmpdir(), 'write-timeline-'));
    const traceDir = join(root, 'trace');
    mkdirSync(traceDir);
    const addresses: string[] = [];
    for (let i = 0; i < 3; i++) addresses.push(`127.0.0.1:${await freeLoopbackPort()}`);
    const children: ChildProcess[] = [];
    const start = (i: number): void => {
        const dir = join(root, `n${i}`);
        mkdirSync(dir);
        const args = [join(tree, 'src/cli/main.js'), 'node', '--address', addresses[i] as string, '--data', dir,
            '--log-level', 'warn', ...(i > 0 ? ['--join', addresses[0] as string] : [])];
        children.push(spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, TQ_TRACE: traceDir } }));
    };
    const writes: [number, number][] = [];
    try {
        start(0);
        const admin = createAdminClient({ servers: addresses, timeoutMs: 1_000, dialTimeoutMs: 300 });
        try {
            while (!((await admin.leader({ timeoutMs: 500 }).catch(() => undefined))?.address === addresses[0])) {
                await sleep(20);
            }
            start(1);
            start(2);
            while ((await admin.cluster({ timeoutMs: 1_000 }).catch(() => [])).filter((m) => m.role === 'voter')
                .length < 3) await sleep(50);
        } finally {
            await admin.close();
        }
        const db = await connect({ servers: addresses, database: 'bench' });
        try {
            await db.exec('CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v BLOB)');
            const value = randomBytes(VALUE_BYTES);
            const sql = `INSERT OR REPLACE INTO kv (k, v) VALUES ${Array(ROWS).fill('(?, ?)').join(', ')}`;
            const warm = performance.now() + WARMUP_MS;
            const end = warm + seconds * 1_000;
            for (;;) {
                const t0 = performance.now();
                if (t0 > end) break;
                const params: (number | Buffer)[] = [];
                for (let r = 0; r < ROWS; r++) params.push(Math.floor(Math.random() * KEYS), value);
                await db.exec(sql, params);
                if (t0 > warm) writes.push([performance.timeOrigin + t0, performance.now() - t0]);
            }
        } finally {
            await db.close();
        }
        await sleep(500); // the nodes flush their trace every 200 ms
    } finally {
        await Promise.all(children.map((c) => new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) return r();
            c.once('exit', () => r());
            c.kill('SIGTERM');
        })));
    }
    const events: Event[] = [];
    for (const f of readdirSync(traceDir)) {
        for (const line of readFileSync(join(traceDir, f), 'utf8').split('\n')) {
            const [at, who, name] = line.split(' ');
            if (name !== undefined) events.push({ at: Number(at), who: who as string, name });
        }
    }
    rmSync(root, { recursive: true, force: true });
    report(writes, events);
}

function report(writes: readonly [number, number][], events: Event[]): void {
    events.sort((a, b) => a.at - b.at);
    const leaderPid = events.find((e) => e.name === 'L_req')?.who.split('.')[0];
    const followers = [...new Set(events.map((e) => e.who.split('.')[0]))].filter((p) => p !== leaderPid).sort();
    const role = (who: string): string => {
        const [pid, thread] = who.split('.');
        return `${pid === leaderPid ? 'L' : `F${followers.indexOf(pid as string)}`}${thread === '0' ? '' : 'w'}`;
    };
    const times = events.map((e) => e.at);
    const firstAfter = (t: number): number => {
        let lo = 0;
        let hi = times.length;
        while (lo < hi) {
            const mid = (lo + hi) >> 1;
            if ((times[mid] as number) < t) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    };
    /** Per point, its offsets from the client's send in each write of `subset` where it occurred. */
    const timeline = (subset: readonly (readonly [number, number])[]): Map<string, number[]> => {
        const offsets = new Map<string, number[]>();
        for (const [sent, ms] of subset) {
            const seen = new Set<string>();
            for (let i = firstAfter(sent); i < events.length && (events[i] as Event).at <= sent + ms; i++) {
                const e = events[i] as Event;
                if (e.name.endsWith('_start') || e.name.endsWith('_end')) continue;
                const key = `${role(e.who)} ${e.name}`;
                if (seen.has(key)) continue;
                seen.add(key);
                const list = offsets.get(key) ?? [];
                list.push(e.at - sent);
                offsets.set(key, list);
            }
        }
        return offsets;
    };
    const medianOf = (v: readonly number[] | undefined): number => quantile([...(v ?? [])].sort((x, y) => x - y), 0.5);
    const latencies = writes.map(([, ms]) => ms).sort((a, b) => a - b);
    const median = quantile(latencies, 0.5);
    const slow = writes.filter(([, ms]) => ms > 3 * median);
    const all = timeline(writes);
    const slowTimeline = timeline(slow);
    console.log(`${writes.length} writes in ${seconds} s (after ${WARMUP_MS / 1000} s not counted): `
        + `${(writes.length / seconds).toFixed(1)} writes/s\n`);
    console.log(`median ms after the client sent: all writes | the slow ones (> ${(3 * median).toFixed(2)} ms) `
        + '| point | share of all writes');
    const rows = [...all].filter(([, v]) => v.length >= writes.length * 0.3)
        .map(([k, v]) => [medianOf(v), medianOf(slowTimeline.get(k)), k, v.length / writes.length] as const)
        .sort((a, b) => a[0] - b[0]);
    for (const [m, ms, k, share] of rows) {
        const share100 = (share * 100).toFixed(0);
        console.log(`${m.toFixed(3).padStart(8)} ${ms.toFixed(3).padStart(8)}  ${k.padEnd(36)} ${share100} %`);
    }
    console.log(`${median.toFixed(3).padStart(8)} ${medianOf(slow.map(([, ms]) => ms)).toFixed(3).padStart(8)}  `
        + 'client has the reply (median latency)\n');
    console.log(`latency ms: p50 ${median.toFixed(2)}, p90 ${quantile(latencies, 0.9).toFixed(2)}, `
        + `p99 ${quantile(latencies, 0.99).toFixed(2)}, max ${(latencies.at(-1) ?? NaN).toFixed(2)}`);
    // Background work as windows [start, end] on any node.
    const windows: { kind: string; from: number; to: number }[] = [];
    const open = new Map<string, number>();
    for (const e of events) {
        const m = /^(.*)_(start|end)$/.exec(e.name);
        if (m === null) continue;
        const key = `${e.who} ${m[1]}`;
        if (m[2] === 'start') open.set(key, e.at);
        else if (open.has(key)) {
            windows.push({ kind: m[1] as string, from: open.get(key) as number, to: e.at });
            open.delete(key);
        }
    }
    const overlapping = new Map<string, number>();
    let none = 0;
    for (const [sent, ms] of slow) {
        const kinds = new Set(windows.filter((w) => w.from <= sent + ms && w.to >= sent).map((w) => w.kind));
        if (kinds.size === 0) none++;
        for (const k of kinds) overlapping.set(k, (overlapping.get(k) ?? 0) + 1);
    }
    const pct = (n: number): string => `${((n / Math.max(1, slow.length)) * 100).toFixed(0)} %`;
    console.log(`slow writes (> ${(3 * median).toFixed(2)} ms): ${slow.length} (${((slow.length / writes.length) * 100)
        .toFixed(1)} %); overlapping ${[...overlapping].map(([k, n]) => `${k} ${pct(n)}`).join(', ') || 'nothing'}; `
        + `none of these ${pct(none)}`);
    const counts = new Map<string, number[]>();
    for (const w of windows) counts.set(w.kind, [...(counts.get(w.kind) ?? []), w.to - w.from]); // hundreds
    for (const [k, v] of counts) {
        const s = [...v].sort((a, b) => a - b);
        console.log(`  ${k}: ${v.length} on all nodes, median ${quantile(s, 0.5).toFixed(2)} ms, `
            + `max ${(s.at(-1) ?? 0).toFixed(2)} ms`);
    }
}

main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
});
