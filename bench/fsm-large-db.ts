// Benchmark: a large database on one node with bounded memory (issue 4: "a 2 GB database with
// the process RSS under 300 MB"; dqlite keeps the whole database in memory, tqlite does not).
// A leader Fsm writes TQLITE_BENCH_MB megabytes (default 2048) in 4 MB transactions (TQLITE_BENCH_TX_MB), each
// captured as one entry and committed at once (no raft); then a full scan, a checkpoint, a
// snapshot of the whole database, and a follower install of it. The maximum RSS of the
// process (main thread + SQLite worker) is sampled every 100 ms.
//
//   npx tsc -p . --outDir build-fsm && node build-fsm/bench/fsm-large-db.js

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Fsm } from '../src/fsm/fsm.js';

const totalMb = Number(process.env['TQLITE_BENCH_MB'] ?? 2048);
const txMb = Number(process.env['TQLITE_BENCH_TX_MB'] ?? 4);
const root = mkdtempSync(join(tmpdir(), 'tqlite-bench-fsm-'));
let rssMax = 0;
const sampler = setInterval(() => {
    rssMax = Math.max(rssMax, process.memoryUsage.rss());
}, 100);
const mb = (n: number): string => `${(n / 1048576).toFixed(0)} MB`;

async function main(): Promise<void> {
    let index = 0;
    const log: Uint8Array[] = [];
    const leader: Fsm = new Fsm({
        dir: join(root, 'leader'),
        propose: (w) => { log.push(w.entry); },
    });
    const follower = new Fsm({ dir: join(root, 'follower'), propose: () => undefined });
    await leader.start();
    await follower.start();
    const s = await leader.open('big');
    // Runs a write and commits what it proposes (one entry per transaction), dropping entries.
    const run = async (sql: string): Promise<void> => {
        const write = s.execSql(sql, []);
        let done = false;
        void write.then(() => {
            done = true;
        }, () => {
            done = true;
        });
        while (log.length > 0 || !done) {
            const entry = log.shift();
            if (entry === undefined) {
                await new Promise((r) => setImmediate(r));
                continue;
            }
            await leader.apply(++index, entry);
        }
        await write;
    };
    await run('CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB)');
    let t0 = performance.now();
    for (let written = txMb; written <= totalMb; written += txMb) {
        await run(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${txMb})
            INSERT INTO t(v) SELECT randomblob(1048576) FROM n`);
    }
    const writeMs = performance.now() - t0;
    console.log(`wrote ${totalMb} MB in ${(writeMs / 1000).toFixed(1)} s (${index} entries); RSS max ${mb(rssMax)}`);
    t0 = performance.now();
    const q = await s.querySql('SELECT sum(length(v)), count(*) FROM t', []);
    const r = await q.batches.next();
    console.log(`full scan ${(performance.now() - t0).toFixed(0)} ms: ${JSON.stringify(r.value, (_, v) =>
        typeof v === 'bigint' ? v.toString() : v)}; RSS max ${mb(rssMax)}`);
    t0 = performance.now();
    await leader.checkpoint();
    await leader.sync();
    console.log(`checkpoint + sync ${(performance.now() - t0).toFixed(0)} ms; RSS max ${mb(rssMax)}`);
    t0 = performance.now();
    const snap = await leader.snapshot();
    console.log(`snapshot ${mb(snap.bytes)} in ${(performance.now() - t0).toFixed(0)} ms; RSS max ${mb(rssMax)}`);
    t0 = performance.now();
    const install = await follower.beginInstall();
    for (let at = 0; at < snap.bytes; at += 4 << 20) await install.write(await snap.read(at, 4 << 20));
    await install.finish();
    await snap.release();
    console.log(`install (4 MB chunks, crc32c + integrity_check) ${(performance.now() - t0).toFixed(0)} ms; ` +
        `RSS max ${mb(rssMax)}`);
    const a = await leader.inspect();
    const b = await follower.inspect();
    console.log(`identical: ${JSON.stringify(a.databases) === JSON.stringify(b.databases)}; ` +
        `size ${a.databases[0]?.sizePages} pages`);
    await s.close();
    await leader.close();
    await follower.close();
}

main().finally(() => {
    clearInterval(sampler);
    rmSync(root, { recursive: true, force: true });
    console.log(`RSS max over the run: ${mb(rssMax)}`);
}).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
});
