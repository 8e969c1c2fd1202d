// Log append benchmark: entries/s and latency (p50/p99) of LogStore.append for 1, 16 and 256
// concurrent appenders of 4 KiB entries on the real file system, beside the raw cost of one
// `write + fdatasync` per entry measured in the same run and directory. Group commit should
// make N concurrent appenders cost about one fdatasync per batch, not one per entry.
//
//   npx tsc -p . --outDir build-log && node build-log/bench/log-append.js [seconds-per-case]
//
// Runs in a fresh temporary directory under /tmp (removed at the end).

import { mkdtemp, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { realFs } from '../src/lib/real-fs.js';
import { LogStore } from '../src/log/log-store.js';
import type { Entry } from '../src/raft/types.js';

const ENTRY_BYTES = 4096;
const SECONDS = Number(process.argv[2] ?? 3);
const RAW = 'raw write+fdatasync per entry';

interface Result {
    readonly name: string;
    readonly appenders: number;
    readonly entries: number;
    readonly seconds: number;
    readonly latenciesMs: number[];
}

function percentile(sorted: number[], p: number): number {
    if (sorted.length === 0) return NaN;
    return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** One write + fdatasync per `perSync` entries (perSync 1: the baseline; 16: group commit's ceiling). */
async function raw(dir: string, perSync: number): Promise<Result> {
    const file = await open(join(dir, `raw-${perSync}`), 'w+');
    const data = Buffer.alloc(ENTRY_BYTES * perSync, 7);
    const latencies: number[] = [];
    const start = performance.now();
    const deadline = start + SECONDS * 1000;
    let offset = 0;
    while (performance.now() < deadline) {
        const t0 = performance.now();
        await file.write(data, 0, data.length, offset);
        await file.datasync();
        const ms = performance.now() - t0;
        for (let i = 0; i < perSync; i++) latencies.push(ms);
        offset += data.length;
    }
    const seconds = (performance.now() - start) / 1000;
    await file.close();
    const name = perSync === 1 ? RAW : `raw ${perSync} entries per write+fdatasync`;
    return { name, appenders: 1, entries: latencies.length, seconds, latenciesMs: latencies };
}

async function logStore(dir: string, appenders: number): Promise<Result> {
    const { store } = await LogStore.open({ fs: realFs, dir: join(dir, `raft-${appenders}`) });
    await store.setHardState({ term: 1, vote: 1n });
    const data = new Uint8Array(ENTRY_BYTES).fill(9);
    let next = 0;
    const latencies: number[] = [];
    const start = performance.now();
    const deadline = start + SECONDS * 1000;
    const worker = async (): Promise<void> => {
        while (performance.now() < deadline) {
            const entry: Entry = { index: ++next, term: 1, type: 1, data };
            const t0 = performance.now();
            await store.append([entry]);
            latencies.push(performance.now() - t0);
        }
    };
    await Promise.all(Array.from({ length: appenders }, worker));
    const seconds = (performance.now() - start) / 1000;
    await store.close();
    return { name: 'LogStore.append', appenders, entries: latencies.length, seconds, latenciesMs: latencies };
}

async function main(): Promise<void> {
    const dir = await mkdtemp('/tmp/tqlite-bench-log-');
    try {
        const results: Result[] = [];
        results.push(await raw(dir, 1));
        for (const n of [1, 16, 256]) results.push(await logStore(dir, n));
        // Reference: the disk's own cost of 16 entries per fdatasync, the best 16 appenders can do.
        results.push(await raw(dir, 16));
        const rawRate = (results[0] as Result).entries / (results[0] as Result).seconds;
        console.log(`4 KiB entries, ${SECONDS} s per case, directory ${dir}`);
        console.log('| case | appenders | entries | entries/s | p50 ms | p99 ms | × raw |');
        console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
        let ok = true;
        for (const r of results) {
            const sorted = r.latenciesMs.slice().sort((a, b) => a - b);
            const rate = r.entries / r.seconds;
            const ratio = rate / rawRate;
            if (r.name === 'LogStore.append' && r.appenders >= 16 && ratio < 10) ok = false;
            console.log(`| ${r.name} | ${r.appenders} | ${r.entries} | ${rate.toFixed(0)} | ` +
                `${percentile(sorted, 50).toFixed(3)} | ${percentile(sorted, 99).toFixed(3)} | ${ratio.toFixed(2)} |`);
        }
        console.log(ok ? 'PASS: 16 and 256 appenders reach ≥ 10× raw write+fdatasync entries/s'
            : 'BELOW TARGET: a case with ≥ 16 appenders is under 10× raw '
                + '(the 16-per-fdatasync line shows what the disk allows)');
        process.exitCode = ok ? 0 : 1;
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
}

await main();
