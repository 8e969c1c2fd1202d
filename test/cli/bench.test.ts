// Goal: `tqlite bench` runs against a real tqlite node and prints one JSON object whose shape
// the comparison script (bench/compare.ts) relies on, with operations done and no errors.
// Method: an in-process one-node cluster (createNode, free port, temporary directory); the
// compiled CLI runs as a child process (`tqlite bench --json`) for 2 s per workload (mixed,
// which loads keys and both reads and writes; then kvwrite with prepared statements and a shared
// pool); its stdout is parsed. No timing is asserted, only counts and shape.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createNode } from '../../src/index.js';
import type { TqliteNode } from '../../src/index.js';
import { freePort, tempDir } from '../integration/helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

let dir: { path: string; remove: () => void };
let node: TqliteNode;
let address = '';

before(async () => {
    dir = tempDir('tqlite-bench-');
    address = `127.0.0.1:${await freePort()}`;
    node = await createNode({ address, dataDir: join(dir.path, 'data') });
});

after(async () => {
    await node.close();
    dir.remove();
});

function bench(args: string[]): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve, reject) => {
        execFile(process.execPath, [MAIN, 'bench', '-s', address, '--json', ...args], { timeout: 30_000 },
            (error, stdout, stderr) => (error === null ? resolve({ stdout, stderr }) : reject(
                new Error(`${error.message}\n${stderr}`))));
    });
}

test('mixed workload: JSON summary with reads, writes and latencies', async () => {
    const { stdout, stderr } = await bench(['--workload', 'mixed', '--read-ratio', '0.5', '--workers', '2',
        '--duration', '2', '--keys', '500', '--value-size', '64']);
    const lines = stdout.trim().split('\n');
    assert.equal(lines.length, 1, stdout);
    const r = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.equal(r.workload, 'mixed');
    assert.equal(r.workers, 2);
    assert.equal(r.readRatio, 0.5);
    assert.equal(r.keys, 500);
    assert.equal(typeof r.opsPerSec, 'number');
    assert.ok((r.ops as number) > 0, stdout);
    assert.equal((r.reads as number) + (r.writes as number), r.ops);
    assert.ok((r.reads as number) > 0 && (r.writes as number) > 0, stdout);
    assert.equal(r.errorsTotal, 0, stdout);
    assert.deepEqual(r.errors, {});
    const l = r.latencyMs as Record<string, number>;
    for (const k of ['p50', 'p90', 'p99', 'max', 'mean']) assert.equal(typeof l[k], 'number', k);
    assert.ok(l.p50! <= l.p90! && l.p90! <= l.p99! && l.p99! <= l.max!, JSON.stringify(l));
    assert.match(stderr, /\[1s\] \d+ ops\/s/);
});

test('kvwrite with prepared statements on a shared pool', async () => {
    const { stdout } = await bench(['--workload', 'kvwrite', '--workers', '2', '--duration', '2', '--prepared',
        '--pool', 'shared', '--table', 'bench_prepared']);
    const r = JSON.parse(stdout) as Record<string, unknown>;
    assert.equal(r.prepared, true);
    assert.equal(r.pool, 'shared');
    assert.equal(r.reads, 0);
    assert.ok((r.writes as number) > 0, stdout);
    assert.equal(r.errorsTotal, 0, stdout);
});
