// `tqlite bench`: a load generator for any dqlite-protocol cluster (tqlite's or real dqlite's),
// built on tqlite's client (src/client).
//
//     tqlite bench -s SERVERS --workload kvwrite|kvread|mixed [--read-ratio R] --workers N
//                  --duration S [--value-size B] [--keys K] [--prepared] [--json] [--database NAME]
//                  [--table NAME] [--pool per-worker|shared] [--timeout MS]
//
// Table `TABLE (k INTEGER PRIMARY KEY, v BLOB)` (default bench_kv; real dqlite's dqlite-demo only
// opens its database `demo`, so the table lives there). kvwrite: INSERT OR REPLACE of a random key
// in [0, K); kvread: SELECT v WHERE k = ? of a random key, the K keys loaded first (only if
// missing); mixed: each operation is a read with probability R (default 0.8), else a write.
// Every worker runs one operation at a time on its own connection: with --pool per-worker
// (default) each worker has its own Database of poolSize 1; with --pool shared one Database of
// poolSize N serves every worker. Latencies are measured per operation (performance.now()).
// Errors are counted by class (`code`, plus `:sqliteCode` for ERR_SQLITE) and the worker goes on.
// A progress line every second on stderr; the summary on stdout (one JSON object with --json).
// Bounded: no operation starts after --duration; one in flight ends within --timeout.

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { connect, type Database, type Statement } from '../client/index.js';
import { ConfigError, SqliteError, TqliteError } from '../lib/errors.js';
import { parseInteger, splitServers, tlsArgOptions, tlsFromArgs, tlsUsage } from './args.js';

export const benchUsage = `tqlite bench -s SERVERS --workload kvwrite|kvread|mixed [--read-ratio R] --workers N
            --duration S [--value-size B] [--keys K] [--prepared] [--json] [--database NAME]
            [--table NAME] [--pool per-worker|shared] [--timeout MS] ${tlsUsage}`;

export type Workload = 'kvwrite' | 'kvread' | 'mixed';

export interface BenchOptions {
    readonly servers: readonly string[];
    /** Cluster TLS material (connect()'s tls). */
    readonly tls?: { readonly cert: Buffer; readonly key: Buffer; readonly ca: Buffer };
    readonly workload: Workload;
    readonly workers: number;
    readonly durationS: number;
    readonly readRatio?: number;
    readonly valueSize?: number;
    readonly keys?: number;
    readonly prepared?: boolean;
    readonly database?: string;
    readonly table?: string;
    readonly pool?: 'per-worker' | 'shared';
    readonly timeoutMs?: number;
    /** Called once a second with the progress line. */
    readonly onProgress?: (line: string) => void;
}

export interface LatencySummary {
    readonly p50: number;
    readonly p90: number;
    readonly p99: number;
    readonly max: number;
    readonly mean: number;
}

export interface BenchResult {
    readonly workload: Workload;
    readonly workers: number;
    readonly pool: 'per-worker' | 'shared';
    readonly prepared: boolean;
    readonly readRatio: number;
    readonly valueSize: number;
    readonly keys: number;
    readonly database: string;
    readonly table: string;
    readonly servers: readonly string[];
    /** Wall time of the measured phase, seconds. */
    readonly elapsedS: number;
    /** Successful operations. */
    readonly ops: number;
    readonly reads: number;
    readonly writes: number;
    readonly opsPerSec: number;
    /** Latency of successful operations, milliseconds. */
    readonly latencyMs: LatencySummary;
    readonly errorsTotal: number;
    /** Failed operations by class: the error's code (ERR_SQLITE:5 for SQLITE_BUSY), else its name. */
    readonly errors: Record<string, number>;
    /** Seconds spent loading the keys before the measured phase (0: already there). */
    readonly preloadS: number;
}

const ROWS_PER_INSERT = 100; // 200 parameters: under dqlite 1.11's 255 per request (schema 0)

function errorClass(error: unknown): string {
    if (error instanceof SqliteError) return `${error.code}:${error.sqliteCode}`;
    if (error instanceof TqliteError) return error.code;
    if (error instanceof Error) return error.name;
    return 'unknown';
}

/** q-quantile of an ascending array (nearest rank). */
function quantile(sorted: Float64Array, q: number): number {
    if (sorted.length === 0) return 0;
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0;
}

/** Latencies in a growing Float64Array (no per-sample objects). */
class Samples {
    private data = new Float64Array(1 << 16);
    length = 0;

    push(value: number): void {
        if (this.length === this.data.length) {
            const next = new Float64Array(this.data.length * 2);
            next.set(this.data);
            this.data = next;
        }
        this.data[this.length++] = value;
    }

    summary(): LatencySummary {
        const sorted = this.data.slice(0, this.length).sort();
        let sum = 0;
        for (const v of sorted) sum += v;
        const round = (v: number): number => Math.round(v * 1000) / 1000;
        return {
            p50: round(quantile(sorted, 0.5)), p90: round(quantile(sorted, 0.9)), p99: round(quantile(sorted, 0.99)),
            max: round(sorted.length === 0 ? 0 : (sorted[sorted.length - 1] ?? 0)),
            mean: round(sorted.length === 0 ? 0 : sum / sorted.length),
        };
    }
}

function checkOptions(o: BenchOptions): void {
    if (!['kvwrite', 'kvread', 'mixed'].includes(o.workload)) {
        throw new ConfigError('--workload must be kvwrite, kvread or mixed');
    }
    if (!Number.isSafeInteger(o.workers) || o.workers < 1) throw new ConfigError('--workers must be at least 1');
    if (!(o.durationS > 0)) throw new ConfigError('--duration must be a positive number of seconds');
    const r = o.readRatio;
    if (r !== undefined && !(r >= 0 && r <= 1)) throw new ConfigError('--read-ratio must be within [0, 1]');
    if (o.keys !== undefined && o.keys < 1) throw new ConfigError('--keys must be at least 1');
    if (o.table !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(o.table)) {
        throw new ConfigError('--table must be a plain identifier');
    }
}

/** Loads the keys [0, keys) that are missing (all of them, or none when a previous run did). */
async function preload(db: Database, table: string, keys: number, valueSize: number): Promise<number> {
    const [row] = await db.query<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE k < ?`, [keys]).all();
    if (Number(row?.n ?? 0) === keys) return 0;
    const t0 = performance.now();
    const value = randomBytes(valueSize);
    for (let start = 0; start < keys; start += ROWS_PER_INSERT) {
        const n = Math.min(ROWS_PER_INSERT, keys - start);
        const params: (number | Buffer)[] = [];
        for (let i = 0; i < n; i++) params.push(start + i, value);
        await db.exec(`INSERT OR REPLACE INTO ${table} (k, v) VALUES ${Array(n).fill('(?, ?)').join(', ')}`, params);
    }
    return (performance.now() - t0) / 1000;
}

interface Ops {
    read(key: number): Promise<unknown>;
    write(key: number, value: Buffer): Promise<unknown>;
    close(): Promise<void>;
}

async function makeOps(db: Database, table: string, prepared: boolean, timeoutMs: number): Promise<Ops> {
    const readSql = `SELECT v FROM ${table} WHERE k = ?`;
    const writeSql = `INSERT OR REPLACE INTO ${table} (k, v) VALUES (?, ?)`;
    const call = { timeoutMs };
    if (!prepared) {
        return {
            read: (key) => db.query(readSql, [key], call).all(),
            write: (key, value) => db.exec(writeSql, [key, value], call),
            close: async () => {},
        };
    }
    const statements: Statement[] = [await db.prepare(readSql, call), await db.prepare(writeSql, call)];
    const [select, upsert] = statements as [Statement, Statement];
    return {
        read: (key) => select.query([key], call).all(),
        write: (key, value) => upsert.exec([key, value], call),
        close: async () => {
            for (const s of statements) await s.finalize().catch(() => undefined);
        },
    };
}

/** Runs one benchmark and returns its figures. Every connection it opened is closed on return. */
export async function runBench(options: BenchOptions): Promise<BenchResult> {
    checkOptions(options);
    const workload = options.workload;
    const readRatio = workload === 'kvread' ? 1 : workload === 'kvwrite' ? 0 : (options.readRatio ?? 0.8);
    const valueSize = options.valueSize ?? 100;
    const keys = options.keys ?? 10_000;
    const database = options.database ?? 'bench';
    const table = options.table ?? 'bench_kv';
    const pool = options.pool ?? 'per-worker';
    const prepared = options.prepared ?? false;
    const timeoutMs = options.timeoutMs ?? 10_000;
    const servers = [...options.servers];

    const databases: Database[] = [];
    const opsOf: Ops[] = [];
    const samples = new Samples();
    const errors: Record<string, number> = {};
    let errorsTotal = 0;
    let reads = 0;
    let writes = 0;
    let preloadS = 0;
    let ticker: ReturnType<typeof setInterval> | undefined;
    // The client's timers are unref'd: while it waits for a leader, this keeps the process alive.
    const keepAlive = setInterval(() => {}, 60_000);
    try {
        const tls = options.tls;
        const setup = await connect({ servers, database, poolSize: 1, timeoutMs: Math.max(timeoutMs, 30_000), tls });
        databases.push(setup);
        await setup.exec(`CREATE TABLE IF NOT EXISTS ${table} (k INTEGER PRIMARY KEY, v BLOB)`);
        if (readRatio > 0) preloadS = await preload(setup, table, keys, valueSize);
        if (pool === 'shared') {
            const shared = await connect({ servers, database, poolSize: options.workers, timeoutMs, tls });
            databases.push(shared);
            for (let w = 0; w < options.workers; w++) opsOf.push(await makeOps(shared, table, prepared, timeoutMs));
        } else {
            for (let w = 0; w < options.workers; w++) {
                const db = await connect({ servers, database, poolSize: 1, timeoutMs, tls });
                databases.push(db);
                opsOf.push(await makeOps(db, table, prepared, timeoutMs));
            }
        }

        const t0 = performance.now();
        const end = t0 + options.durationS * 1000;
        let lastOps = 0;
        let lastErrors = 0;
        let second = 0;
        ticker = setInterval(() => {
            second++;
            const ops = samples.length;
            options.onProgress?.(`[${second}s] ${ops - lastOps} ops/s, ${ops} ops, `
                + `${errorsTotal - lastErrors} errors/s, ${errorsTotal} errors`);
            lastOps = ops;
            lastErrors = errorsTotal;
        }, 1000);

        const worker = async (ops: Ops): Promise<void> => {
            const value = randomBytes(valueSize);
            while (performance.now() < end) {
                const key = Math.floor(Math.random() * keys);
                const isRead = readRatio > 0 && (readRatio === 1 || Math.random() < readRatio);
                const started = performance.now();
                try {
                    if (isRead) await ops.read(key);
                    else await ops.write(key, value);
                    samples.push(performance.now() - started);
                    if (isRead) reads++;
                    else writes++;
                } catch (error) {
                    const c = errorClass(error);
                    errors[c] = (errors[c] ?? 0) + 1;
                    errorsTotal++;
                    // Back off a little so that a cluster without a leader is not spun on.
                    await new Promise((resolve) => setTimeout(resolve, 10));
                }
            }
        };
        await Promise.all(opsOf.map(worker));
        const elapsedS = (performance.now() - t0) / 1000;
        const ops = samples.length;
        return {
            workload, workers: options.workers, pool, prepared, readRatio, valueSize, keys, database, table, servers,
            elapsedS: Math.round(elapsedS * 1000) / 1000, ops, reads, writes,
            opsPerSec: Math.round((ops / elapsedS) * 10) / 10, latencyMs: samples.summary(),
            errorsTotal, errors, preloadS: Math.round(preloadS * 1000) / 1000,
        };
    } finally {
        clearInterval(keepAlive);
        if (ticker !== undefined) clearInterval(ticker);
        for (const ops of opsOf) await ops.close();
        for (const db of databases) await db.close();
    }
}

export function formatResult(r: BenchResult): string {
    const l = r.latencyMs;
    const errors = Object.entries(r.errors).map(([c, n]) => `${c} ${n}`).join(', ');
    return [
        `workload ${r.workload}${r.workload === 'mixed' ? ` (read ratio ${r.readRatio})` : ''}, ${r.workers} workers `
            + `(${r.pool}${r.prepared ? ', prepared' : ''}), value ${r.valueSize} B, ${r.keys} keys`,
        `ops        ${r.ops} in ${r.elapsedS.toFixed(2)} s (${r.reads} reads, ${r.writes} writes)`,
        `throughput ${r.opsPerSec.toFixed(1)} ops/s`,
        `latency    p50 ${l.p50.toFixed(2)} ms, p90 ${l.p90.toFixed(2)} ms, p99 ${l.p99.toFixed(2)} ms, `
            + `max ${l.max.toFixed(2)} ms`,
        `errors     ${r.errorsTotal}${errors === '' ? '' : ` (${errors})`}`,
    ].join('\n');
}

export async function benchCommand(argv: string[]): Promise<number> {
    const { values } = parseArgs({
        args: argv,
        options: {
            servers: { type: 'string', short: 's' },
            workload: { type: 'string' },
            'read-ratio': { type: 'string' },
            workers: { type: 'string' },
            duration: { type: 'string' },
            'value-size': { type: 'string' },
            keys: { type: 'string' },
            prepared: { type: 'boolean' },
            json: { type: 'boolean' },
            database: { type: 'string' },
            table: { type: 'string' },
            pool: { type: 'string' },
            timeout: { type: 'string' },
            ...tlsArgOptions,
        },
        strict: true,
    });
    if (values.servers === undefined || values.workload === undefined) {
        process.stderr.write(`usage: ${benchUsage}\n`);
        return 2;
    }
    const pool = values.pool ?? 'per-worker';
    if (pool !== 'per-worker' && pool !== 'shared') throw new ConfigError('--pool must be per-worker or shared');
    const duration = Number(values.duration ?? '10');
    const readRatio = values['read-ratio'] === undefined ? undefined : Number(values['read-ratio']);
    const result = await runBench({
        servers: splitServers(values.servers),
        ...(values.cert === undefined && values.key === undefined && values.ca === undefined ? {}
            : { tls: tlsFromArgs(values) }),
        workload: values.workload as Workload,
        workers: parseInteger(values.workers, '--workers') ?? 1,
        durationS: duration,
        ...(readRatio === undefined ? {} : { readRatio }),
        ...(values['value-size'] === undefined ? {}
            : { valueSize: parseInteger(values['value-size'], '--value-size') }),
        ...(values.keys === undefined ? {} : { keys: parseInteger(values.keys, '--keys') }),
        prepared: values.prepared === true,
        ...(values.database === undefined ? {} : { database: values.database }),
        ...(values.table === undefined ? {} : { table: values.table }),
        pool,
        ...(values.timeout === undefined ? {} : { timeoutMs: parseInteger(values.timeout, '--timeout') }),
        onProgress: (line) => void process.stderr.write(`${line}\n`),
    });
    process.stdout.write(values.json === true ? `${JSON.stringify(result)}\n` : `${formatResult(result)}\n`);
    return 0;
}
