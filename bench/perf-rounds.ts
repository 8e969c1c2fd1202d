// Before/after performance rounds against real dqlite, in one run (the perf work of issue 7).
//
//   npx tsc -p . --outDir build-perf --tsBuildInfoFile build-perf/.tsbuildinfo
//   PERF_CLUSTERS=dqlite,tqlite:build-perf-base,tqlite:build-perf PERF_ROUNDS=3 PERF_DURATION_S=5 \
//       node build-perf/bench/perf-rounds.js
//
// Starts one 3-node cluster per entry of PERF_CLUSTERS: `dqlite` is Debian's /usr/bin/dqlite-demo;
// `tqlite:DIR` runs `tqlite node` from the compiled tree DIR (relative to the repository root), so
// a copy of the build from before a change and the build after it can be measured side by side.
// Then, PERF_ROUNDS times, every workload of PERF_WORKLOADS (default: kvwrite 1, kvwrite 16,
// kvread 1, kvread 4, mixed 4) runs against every cluster in turn, the order of the clusters
// rotating from round to round; the load generator is always this tree's `tqlite bench --json`
// (a child process). Prints one line per measurement and, at the end, the median ops/s, p50 and
// p99 of each workload and cluster with its ratio to dqlite, and the start-up time (spawn of node 1
// until it answers as leader), and the CPU time (user + system, /proc/PID/stat, all threads) the
// cluster's three processes used per operation — much less sensitive to the load of other jobs
// on a shared machine than throughput. The machine is small and shared: compare within a run only.
//
// A tqlite entry may carry node flags after `+`: `tqlite:build+lease-reads` runs each node with
// `--lease-reads` (lease reads, off by default), so both read modes can be measured in one run.
// The CPU figures are split: the whole cluster, the node 1 process (the leader unless a round
// moved leadership) and the load generator (its own user + system time).
//
// Before the first round each cluster runs PERF_WARMUP_S (5; 0 skips) of kvwrite with 4 workers,
// not counted (as bench/compare: fresh processes made every cluster's first round slower).
//
// Environment: PERF_CLUSTERS, PERF_ROUNDS (3), PERF_DURATION_S (5), PERF_WARMUP_S (5), PERF_WORKLOADS
// (e.g. "kvwrite:1,kvwrite:16,kvread:4,mixed:4"), PERF_KEYS (10000), PERF_VALUE_SIZE (100).
// Only the processes it spawned are signalled; its temporary directories are removed.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAdminClient } from '../src/client/index.js';
import type { BenchResult } from '../src/cli/bench-command.js';
import { freeLoopbackPort } from '../src/lib/net.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BENCH_MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const DQLITE_DEMO = '/usr/bin/dqlite-demo';

function env(name: string, fallback: string): string {
    const raw = process.env[name];
    return raw === undefined || raw === '' ? fallback : raw;
}

const ROUNDS = Number(env('PERF_ROUNDS', '3'));
const DURATION_S = Number(env('PERF_DURATION_S', '5'));
const WARMUP_S = Number(env('PERF_WARMUP_S', '5'));
if (!(WARMUP_S >= 0)) throw new Error('PERF_WARMUP_S must be a number of seconds, 0 to skip');
const KEYS = Number(env('PERF_KEYS', '10000'));
const VALUE_SIZE = Number(env('PERF_VALUE_SIZE', '100'));
const WORKLOADS = env('PERF_WORKLOADS', 'kvwrite:1,kvwrite:16,kvread:1,kvread:4,mixed:4').split(',').map((w) => {
    const [name, workers] = w.split(':');
    return { name: name as string, workers: Number(workers ?? '1') };
});

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
        if (await check().catch(() => false)) return;
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
    }
}

function median(values: readonly number[]): number {
    const s = [...values].sort((a, b) => a - b);
    const mid = Math.floor(s.length / 2);
    return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

class Cluster {
    readonly children: ChildProcess[] = [];
    readonly addresses: string[] = [];
    readonly apis: string[] = [];
    readonly root: string;
    startupMs = NaN;

    constructor(readonly label: string) {
        this.root = mkdtempSync(join(tmpdir(), 'perf-rounds-'));
    }

    get isDqlite(): boolean {
        return this.label === 'dqlite';
    }

    /** The compiled tree of a tqlite entry (`tqlite:TREE+flag+flag`). */
    get tree(): string {
        return (this.label.slice('tqlite:'.length).split('+')[0]) as string;
    }

    /** Node flags of a tqlite entry: `+lease-reads` → `--lease-reads`. */
    get flags(): string[] {
        return this.label.split('+').slice(1).map((f) => `--${f}`);
    }

    get database(): string {
        return this.isDqlite ? 'demo' : 'bench';
    }

    private spawnNode(i: number, joinTo: string[]): void {
        const dir = join(this.root, `n${i}`);
        mkdirSync(dir, { recursive: true });
        const address = this.addresses[i] as string;
        const child = this.isDqlite
            ? spawn(DQLITE_DEMO, ['--api', this.apis[i] as string, '--db', address, '--dir', dir,
                ...joinTo.flatMap((j) => ['--join', j])], { stdio: 'ignore' })
            : spawn(process.execPath, [resolve(ROOT, this.tree, 'src/cli/main.js'), 'node',
                '--address', address, '--data', dir, '--log-level', 'warn', ...this.flags,
                ...(joinTo.length > 0 ? ['--join', joinTo.join(',')] : [])], { stdio: 'ignore' });
        this.children.push(child);
    }

    async start(): Promise<void> {
        for (let i = 0; i < 3; i++) {
            this.addresses.push(`127.0.0.1:${await freeLoopbackPort()}`);
            this.apis.push(`127.0.0.1:${await freeLoopbackPort()}`);
        }
        const one = createAdminClient({ servers: [this.addresses[0] as string], timeoutMs: 1000, dialTimeoutMs: 300 });
        const t0 = performance.now();
        this.spawnNode(0, []);
        try {
            // Short calls (one connection attempt each; see bench/compare.ts), polled every 10 ms.
            let calls = 0;
            await until(`${this.label} node 1 leads`, 30_000, async () =>
                (await one.leader({ timeoutMs: calls++ < 100 ? 40 : 1_000 }))?.address === this.addresses[0]);
        } finally {
            await one.close();
        }
        this.startupMs = performance.now() - t0;
        this.spawnNode(1, [this.addresses[0] as string]);
        this.spawnNode(2, [this.addresses[0] as string]);
        const admin = createAdminClient({ servers: this.addresses, timeoutMs: 1000, dialTimeoutMs: 300 });
        try {
            await until(`${this.label}: 3 voters`, 60_000, async () =>
                (await admin.cluster({ timeoutMs: 1000 })).filter((m) => m.role === 'voter').length === 3);
        } finally {
            await admin.close();
        }
    }

    /** CPU milliseconds (user + system) used so far by the cluster's processes. */
    cpuMs(): number {
        return this.children.reduce((sum, c) => sum + processCpuMs(c.pid), 0);
    }

    /** CPU milliseconds used so far by node 1's process. */
    firstCpuMs(): number {
        return processCpuMs(this.children[0]?.pid);
    }

    async stop(): Promise<void> {
        await Promise.all(this.children.map((c) => new Promise<void>((r) => {
            if (c.exitCode !== null || c.signalCode !== null) return r();
            c.once('exit', () => r());
            c.kill('SIGKILL');
        })));
        rmSync(this.root, { recursive: true, force: true });
    }
}

/** CPU milliseconds (user + system, all threads) a live process has used; 0 once it has exited. */
function processCpuMs(pid: number | undefined): number {
    try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime (fields 14, 15); USER_HZ = 100
    } catch {
        return 0;
    }
}

type Measured = BenchResult & { cpuPerOp: number; firstCpuPerOp: number; loadCpuPerOp: number };

function bench(cluster: Cluster, workload: string, workers: number, durationS = DURATION_S)
    : Promise<BenchResult & { loadCpuMs: number }> {
    const args = [BENCH_MAIN, 'bench', '-s', cluster.addresses.join(','), '--database', cluster.database, '--json',
        '--duration', String(durationS), '--keys', String(KEYS), '--value-size', String(VALUE_SIZE),
        '--workload', workload, '--workers', String(workers), ...(workload === 'mixed' ? ['--read-ratio', '0.8'] : [])];
    return new Promise((ok, fail) => {
        const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
        let loadCpuMs = 0;
        // The generator prints its JSON at the end: sample its CPU time until then (a zombie has none).
        const sampler = setInterval(() => void (loadCpuMs = Math.max(loadCpuMs, processCpuMs(child.pid))), 50);
        child.once('exit', () => clearInterval(sampler));
        child.once('error', (error) => {
            // Not spawned (or not killable): no 'exit' may follow.
            clearInterval(sampler);
            fail(error);
        });
        let out = '';
        let err = '';
        child.stdout.setEncoding('utf8').on('data', (c: string) => void (out += c));
        child.stderr.setEncoding('utf8').on('data', (c: string) => void (err += c));
        child.once('exit', (code) => (code === 0 ? ok({ ...(JSON.parse(out) as BenchResult), loadCpuMs })
            : fail(new Error(`bench ${cluster.label} exited ${code}: ${err.slice(-1000)}`))));
    });
}

async function main(): Promise<void> {
    const labels = env('PERF_CLUSTERS', 'dqlite,tqlite:build-perf').split(',');
    const clusters = labels.map((l) => new Cluster(l));
    const stopAll = (): Promise<unknown> => Promise.allSettled(clusters.map((c) => c.stop()));
    process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
    try {
        for (const c of clusters) {
            await c.start();
            console.log(`${c.label}: node 1 leads after ${c.startupMs.toFixed(0)} ms`);
        }
        for (const c of WARMUP_S > 0 ? clusters : []) {
            const r = await bench(c, 'kvwrite', 4, WARMUP_S);
            console.log(`warm-up kvwrite:4 ${c.label}, not counted: ${r.opsPerSec.toFixed(1)} ops/s`);
        }
        const results = new Map<string, Measured[]>();
        for (let round = 0; round < ROUNDS; round++) {
            for (const w of WORKLOADS) {
                for (let k = 0; k < clusters.length; k++) {
                    const c = clusters[(k + round) % clusters.length] as Cluster;
                    const cpu0 = c.cpuMs();
                    const first0 = c.firstCpuMs();
                    const r = await bench(c, w.name, w.workers);
                    // Includes the preload of the first kvread (counted in ops only after it).
                    const ops = Math.max(1, r.ops);
                    const m: Measured = { ...r, cpuPerOp: (c.cpuMs() - cpu0) / ops,
                        firstCpuPerOp: (c.firstCpuMs() - first0) / ops, loadCpuPerOp: r.loadCpuMs / ops };
                    const key = `${w.name}:${w.workers}|${c.label}`;
                    results.set(key, [...(results.get(key) ?? []), m]);
                    console.log(`round ${round + 1} ${w.name}:${w.workers} ${c.label}: ${r.opsPerSec.toFixed(1)} ops/s `
                        + `p50 ${r.latencyMs.p50.toFixed(2)} p99 ${r.latencyMs.p99.toFixed(2)} ms `
                        + `cpu ${m.cpuPerOp.toFixed(3)} (node 1 ${m.firstCpuPerOp.toFixed(3)}, load generator `
                        + `${m.loadCpuPerOp.toFixed(3)}) ms/op errors ${JSON.stringify(r.errors)}`);
                }
            }
        }
        console.log(`\nmedians of ${ROUNDS} rounds, ${DURATION_S} s each:`);
        for (const w of WORKLOADS) {
            const base = results.get(`${w.name}:${w.workers}|dqlite`);
            const baseOps = base === undefined ? NaN : median(base.map((r) => r.opsPerSec));
            for (const c of clusters) {
                const rs = results.get(`${w.name}:${w.workers}|${c.label}`) ?? [];
                const ops = median(rs.map((r) => r.opsPerSec));
                const errors = rs.reduce((s, r) => s + r.errorsTotal, 0);
                console.log(`${`${w.name}:${w.workers}`.padEnd(11)} ${c.label.padEnd(24)} ${ops.toFixed(1).padStart(8)} ops/s`
                    + `  ×${(ops / baseOps).toFixed(2)}  p50 ${median(rs.map((r) => r.latencyMs.p50)).toFixed(2)}`
                    + `  p99 ${median(rs.map((r) => r.latencyMs.p99)).toFixed(2)} ms`
                    + `  cpu ${median(rs.map((r) => r.cpuPerOp)).toFixed(3)} ms/op`
                    + ` (node 1 ${median(rs.map((r) => r.firstCpuPerOp)).toFixed(3)},`
                    + ` load ${median(rs.map((r) => r.loadCpuPerOp)).toFixed(3)})  errors ${errors}`);
            }
        }
        for (const c of clusters) console.log(`start-up ${c.label}: ${c.startupMs.toFixed(0)} ms`);
    } finally {
        await stopAll();
    }
}

await main();
