// Goal: createNode() cleans up after itself (issue 6, "Lifecycle"): over LIFECYCLE_CYCLES
// (default 20; the issue asks for 200) in-process cycles of bootstrap node + joining node +
// one replicated write + close, nothing of the nodes stays active after they are closed, no
// promise rejection goes unhandled, and the heap stays roughly flat.
// Method: each cycle uses fresh free 127.0.0.1 ports (a cycle whose port another process took
// in the meantime, EADDRINUSE, is run again on new ports) and a fresh temporary directory; the
// joiner is in once the bootstrap node's configuration lists it and a write through the
// client has committed; the close order alternates (joiner first; bootstrap node first, which
// exercises the handover to the joiner). After each cycle process.getActiveResourcesInfo()
// must come back (polled with a deadline) to no more of each resource type than before the
// first cycle, and an 'unhandledRejection' listener must have counted nothing. The heap
// (heapUsed after a full GC, GC exposed through v8 flags) is sampled after each cycle; its
// trend is printed, and the last quarter's median must not exceed the first quarter's median
// by more than LIFECYCLE_HEAP_GROWTH_MB (default 32).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect } from '../../src/client/index.js';
import { createNode, type TqliteNode } from '../../src/index.js';
import { envInt, freePort, summary, tempDir, waitFor } from './procs.js';

const CYCLES = envInt('LIFECYCLE_CYCLES', 20);
const HEAP_GROWTH_MB = envInt('LIFECYCLE_HEAP_GROWTH_MB', 32);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function resources(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of process.getActiveResourcesInfo()) counts.set(r, (counts.get(r) ?? 0) + 1);
    return counts;
}

function excess(baseline: ReadonlyMap<string, number>): [string, number][] {
    return [...resources()].filter(([r, n]) => n > (baseline.get(r) ?? 0))
        .map(([r, n]) => [r, n - (baseline.get(r) ?? 0)]);
}

let portRetries = 0;

/** One cycle; a port taken by another process between freePort() and listen is retried. */
async function cycle(index: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
        try {
            await cycleOnce(index);
            return;
        } catch (error) {
            if ((error as { code?: string }).code !== 'EADDRINUSE' || attempt >= 3) throw error;
            portRetries++;
        }
    }
}

async function cycleOnce(index: number): Promise<void> {
    const dir = tempDir('life');
    const a = `127.0.0.1:${await freePort()}`;
    const b = `127.0.0.1:${await freePort()}`;
    const nodes: TqliteNode[] = [];
    try {
        const first = await createNode({ address: a, dataDir: `${dir.path}/a` });
        nodes.push(first);
        const second = await createNode({ address: b, dataDir: `${dir.path}/b`, join: [a] });
        nodes.push(second);
        await waitFor('the joiner in the configuration', 20_000, () =>
            first.status().configuration.servers.some((s) => s.id === second.id) ? true : undefined);
        const db = await connect({ servers: [a, b], database: 'life', timeoutMs: 10_000 });
        try {
            await db.exec('CREATE TABLE t (x)');
            await db.exec('INSERT INTO t VALUES (?)', [index]);
        } finally {
            await db.close();
        }
        const order = index % 2 === 0 ? [second, first] : [first, second];
        for (const n of order) await n.close();
    } finally {
        for (const n of nodes) await n.close();
        dir.remove();
    }
}

test(`lifecycle: ${CYCLES} create/join/close cycles leave nothing behind`, async () => {
    let unhandled = 0;
    const reasons: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
        unhandled++;
        reasons.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
        gc();
        const baseline = resources();
        const heap: number[] = [];
        const durations: number[] = [];
        for (let i = 0; i < CYCLES; i++) {
            const t0 = performance.now();
            await cycle(i);
            durations.push(performance.now() - t0);
            await waitFor(`cycle ${i}: the nodes' handles released`, 5_000,
                () => (excess(baseline).length === 0 ? true : undefined)).catch(() => {
                assert.fail(`cycle ${i}: still active after close: ${JSON.stringify(excess(baseline))}`);
            });
            assert.equal(unhandled, 0, `cycle ${i}: unhandled rejections: ${reasons.map(String).join('; ')}`);
            gc();
            heap.push(process.memoryUsage().heapUsed / 2 ** 20);
        }
        const quarter = Math.max(1, Math.floor(heap.length / 4));
        const early = summary(heap.slice(0, quarter)).median;
        const late = summary(heap.slice(-quarter)).median;
        const step = Math.max(1, Math.floor(heap.length / 10));
        console.log(`# lifecycle: ${CYCLES} cycles, cycle median ${summary(durations).median.toFixed(0)} ms; `
            + `heapUsed after gc (MiB) every ${step} cycles: `
            + `${heap.filter((_, i) => i % step === 0 || i === heap.length - 1).map((h) => h.toFixed(1)).join(' ')}; `
            + `first-quarter median ${early.toFixed(1)}, last-quarter median ${late.toFixed(1)}; `
            + `cycles retried on EADDRINUSE: ${portRetries}`);
        assert.ok(late - early <= HEAP_GROWTH_MB, `heap grew from ${early.toFixed(1)} to ${late.toFixed(1)} MiB`);
    } finally {
        process.off('unhandledRejection', onUnhandled);
    }
});
