// Client workloads of the nemesis harness (TESTING.md §8(b)), all through tqlite's client
// (src/client: connect({ servers, database })) against the nodes' advertised (proxied)
// addresses, with unique values, recorded as histories by test/jepsen/recorder.ts:
//
//   register  per-key registers in `reg(k INTEGER PRIMARY KEY, v INTEGER)`: read = SELECT,
//             write = upsert, compare-and-set = `UPDATE reg SET v = ? WHERE k = ? AND v = ?`
//             (1 row affected = swapped, 0 = not). Keys rotate every KEY_OPS ops so each
//             partition of the history stays small (jepsen.independent style). Every written
//             value is unique over the run. Checked for linearizability (casRegister model).
//   set       unique INSERTs into `s(v INTEGER PRIMARY KEY)` and occasional full reads, plus a
//             final read after the heal (checkSet: no lost / stale / unexpected elements).
//   bank      ACCOUNTS accounts with a constant total; transfers of 1..10 between two accounts in
//             one SQL transaction (two UPDATEs, negative balances allowed); reads of every
//             balance must sum to the total (checkBank), including a final read.
//   append    list-append transactions (Elle style) on `la(k INTEGER PRIMARY KEY, v TEXT)`, the
//             list stored as comma-joined values so a whole list is one statement: append =
//             `INSERT ... ON CONFLICT (k) DO UPDATE SET v = v || ',' || excluded.v`, read =
//             `SELECT v FROM la WHERE k = ?`. A transaction runs 1-3 micro-ops (unique values) on
//             a few of APPEND_KEYS active keys (rotated every APPEND_KEY_TXNS transactions, so lists
//             stay short), all in one db.transaction(); a final read of every key follows the heal.
//             Checked by run.ts with checker/list-append.ts plus a global prefix / lost check.
//
// Outcomes: a read that fails is FAILED (it has no effect); a write that fails with
// NotLeaderError is FAILED (the client guarantees nothing was proposed); every other error
// (timeout, lost connection, leadership lost, ...) is UNKNOWN: it may have been applied.

import { connect, NotLeaderError, SqliteError, type Database } from '../../../src/client/index.js';
import { SeededRandom } from '../../../src/lib/random.js';
import { HistoryRecorder } from '../recorder.js';
import type { Op } from '../checker/history.js';
import type { RegisterInput, RegisterOutput } from '../checker/models.js';
import type { BankInput, BankOutput, SetWorkloadInput, SetWorkloadOutput } from '../checker/invariants.js';

/** One micro-op of a list-append transaction, as issued. */
export type AppendMicro = { readonly f: 'append'; readonly key: number; readonly value: number }
    | { readonly f: 'read'; readonly key: number };
export type AppendInput = readonly AppendMicro[];
/** Per micro-op: the list a read saw, null for an append. */
export type AppendOutput = readonly (readonly number[] | null)[];

export const DATABASE = 'jepsen';
export const ACCOUNTS = ['a0', 'a1', 'a2', 'a3', 'a4', 'a5', 'a6', 'a7'];
export const INITIAL_BALANCE = 100;
export const BANK_TOTAL = ACCOUNTS.length * INITIAL_BALANCE;
/** Ops started on one register key before it is retired. */
const KEY_OPS = 120;
const ACTIVE_KEYS = 3;
const OP_TIMEOUT_MS = 5_000;
/** Worker ids of the setup client and the two final readers. */
const SETUP = 1_000_000;
const FINAL = 1_000_001;
/** Active list-append keys, and transactions started on one before it is retired. */
const APPEND_KEYS = 4;
const APPEND_KEY_TXNS = 40;

export interface WorkloadOptions {
    readonly servers: readonly string[];
    readonly seed: number;
    /** Workers per workload. */
    readonly registerWorkers: number;
    readonly setWorkers: number;
    readonly bankWorkers: number;
    readonly appendWorkers: number;
    /** Pause between one worker's ops (ms, uniform in [min, max]). */
    readonly thinkMs: readonly [number, number];
    /**
     * Sanity mode (tests the harness): this fraction of register reads goes to `weakRead`
     * (a node's local copy, no leader check) and must make the checker fail.
     */
    readonly weakReads?: { readonly fraction: number; readonly read: (k: number) => Promise<number | null> };
    /** Use the database name (dqlite-demo's is 'demo'). */
    readonly database?: string;
}

export interface Histories {
    readonly register: readonly Op<RegisterInput, RegisterOutput>[];
    readonly set: readonly Op<SetWorkloadInput, SetWorkloadOutput>[];
    readonly bank: readonly Op<BankInput, BankOutput>[];
    /** Op id of the set's final read, when it succeeded. */
    readonly setFinalRead: number | undefined;
    /** Op id of the bank's final read, when it succeeded. */
    readonly bankFinalRead: number | undefined;
    readonly append: readonly Op<AppendInput, AppendOutput>[];
    /** Op id of the list-append final read (every key ever used), when it succeeded. */
    readonly appendFinalRead: number | undefined;
}

/** Wraps a read's error: a read has no effect, so a failed one is FAILED (dropped). */
class ReadFailed extends Error {}

/**
 * Definite failures: reads; NotLeaderError (nothing was proposed); SQLITE_BUSY / SQLITE_LOCKED
 * (primary codes 5, 6: the statement did not run, so its transaction did not commit).
 */
const definiteFailure = (error: unknown): boolean => error instanceof NotLeaderError || error instanceof ReadFailed
    || (error instanceof SqliteError && [5, 6].includes(error.sqliteCode & 0xff));

/** Runs a read; any error becomes ReadFailed (with the original as cause). */
async function read<T>(run: () => Promise<T>): Promise<T> {
    try {
        return await run();
    } catch (error) {
        throw new ReadFailed('read failed', { cause: error });
    }
}

/** Runs the workers until stop(); then final reads. */
export class Workloads {
    private readonly options: WorkloadOptions;
    private readonly random: SeededRandom;
    /** One client per worker (its own connections and leader discovery), like a Jepsen process. */
    private readonly clients = new Map<number, Database>();
    private stopping = false;
    private running: Promise<void>[] = [];
    private readonly register = new HistoryRecorder<RegisterInput, RegisterOutput>({ definiteFailure });
    private readonly set = new HistoryRecorder<SetWorkloadInput, SetWorkloadOutput>({ definiteFailure });
    private readonly bank = new HistoryRecorder<BankInput, BankOutput>({ definiteFailure });
    private readonly append = new HistoryRecorder<AppendInput, AppendOutput>({ definiteFailure });
    private appendKeys: { key: number; txns: number }[] = [];
    private nextAppendKey = 1;
    private appendFinal: number | undefined;
    private nextValue = 1;
    private keys: { key: number; ops: number }[] = [];
    private nextKey = 1;
    private setFinal: number | undefined;
    private bankFinal: number | undefined;
    /** Errors by code (for the summary). */
    readonly errors = new Map<string, number>();

    constructor(options: WorkloadOptions) {
        this.options = options;
        this.random = new SeededRandom(options.seed).fork('workloads');
        for (let i = 0; i < ACTIVE_KEYS; i++) this.keys.push({ key: this.nextKey++, ops: 0 });
        for (let i = 0; i < APPEND_KEYS; i++) this.appendKeys.push({ key: this.nextAppendKey++, txns: 0 });
    }

    private get database(): string {
        return this.options.database ?? DATABASE;
    }

    /** Connects and creates the schema (retrying until `timeoutMs`). */
    async setup(timeoutMs: number): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            try {
                await this.connectClients();
                const db = this.client(SETUP);
                await db.exec('CREATE TABLE IF NOT EXISTS reg (k INTEGER PRIMARY KEY, v INTEGER)');
                await db.exec('CREATE TABLE IF NOT EXISTS s (v INTEGER PRIMARY KEY)');
                await db.exec('CREATE TABLE IF NOT EXISTS bank (id TEXT PRIMARY KEY, balance INTEGER NOT NULL)');
                await db.exec('CREATE TABLE IF NOT EXISTS la (k INTEGER PRIMARY KEY, v TEXT NOT NULL)');
                const values = ACCOUNTS.map(() => '(?, ?)').join(', ');
                await db.exec(`INSERT OR IGNORE INTO bank (id, balance) VALUES ${values}`,
                    ACCOUNTS.flatMap((a) => [a, INITIAL_BALANCE]));
                const rows = await db.query<{ n: number }>('SELECT count(*) AS n FROM bank').all();
                if (rows[0]?.n !== ACCOUNTS.length) throw new Error('bank not initialised');
                return;
            } catch (error) {
                if (Date.now() > deadline) throw new Error('cannot create the schema', { cause: error });
                await sleep(200);
            }
        }
    }

    /** Worker `worker`'s client (connected in setup()). */
    private client(worker: number): Database {
        const db = this.clients.get(worker);
        if (db === undefined) throw new Error(`no client for worker ${worker}`);
        return db;
    }

    /** Connects a client per worker: the servers in a worker-specific order, so discovery differs. */
    private async connectClients(): Promise<void> {
        const o = this.options;
        const workers = [...Array(o.registerWorkers + o.setWorkers + o.bankWorkers + o.appendWorkers).keys(),
            SETUP, FINAL, FINAL + 1, FINAL + 2];
        for (const worker of workers) {
            if (this.clients.has(worker)) continue;
            const servers = new SeededRandom(o.seed).fork(`servers-${worker}`).shuffle([...o.servers]);
            this.clients.set(worker, await connect({
                servers, database: this.database, timeoutMs: OP_TIMEOUT_MS,
                dialTimeoutMs: 1_000, probeTimeoutMs: 1_000, poolSize: 2,
            }));
        }
    }

    start(): void {
        let worker = 0;
        for (let i = 0; i < this.options.registerWorkers; i++) this.running.push(this.loop(worker++, 'register'));
        for (let i = 0; i < this.options.setWorkers; i++) this.running.push(this.loop(worker++, 'set'));
        for (let i = 0; i < this.options.bankWorkers; i++) this.running.push(this.loop(worker++, 'bank'));
        for (let i = 0; i < this.options.appendWorkers; i++) this.running.push(this.loop(worker++, 'append'));
    }

    /** Stops issuing ops and waits for the ops in flight. */
    async stop(): Promise<void> {
        this.stopping = true;
        await Promise.all(this.running);
        this.running = [];
    }

    private count(error: unknown): void {
        if (error instanceof ReadFailed) error = error.cause;
        let code = (error as { code?: string }).code ?? (error as Error).name ?? 'unknown';
        if (error instanceof SqliteError) code += `:${error.sqliteCode}`;
        this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
    }

    private async loop(worker: number, kind: 'register' | 'set' | 'bank' | 'append'): Promise<void> {
        const random = this.random.fork(`worker-${worker}`);
        while (!this.stopping) {
            try {
                if (kind === 'register') await this.registerOp(worker, random);
                else if (kind === 'set') await this.setOp(worker, random);
                else if (kind === 'bank') await this.bankOp(worker, random);
                else await this.appendOp(worker, random);
            } catch (error) {
                // record() never throws for an op's own errors; anything here is a harness bug.
                this.count(error);
                throw error;
            }
            const [min, max] = this.options.thinkMs;
            await sleep(random.range(min, max));
        }
    }

    private pickKey(random: SeededRandom): number {
        const i = random.int(this.keys.length);
        const slot = this.keys[i] as { key: number; ops: number };
        slot.ops++;
        if (slot.ops >= KEY_OPS) this.keys[i] = { key: this.nextKey++, ops: 0 };
        return slot.key;
    }

    private async registerOp(worker: number, random: SeededRandom): Promise<void> {
        const db = this.client(worker);
        const k = this.pickKey(random);
        const key = `r${k}`;
        const roll = random.float();
        const weak = this.options.weakReads !== undefined && random.chance(this.options.weakReads.fraction);
        if (roll < 0.4 && weak) {
            const weakRead = this.options.weakReads?.read as (k: number) => Promise<number | null>;
            const { error } = await this.register.record(worker, key, { f: 'read' }, () => read(() => weakRead(k)));
            if (error !== undefined) this.count(error);
        } else if (roll < 0.4) {
            const { error } = await this.register.record(worker, key, { f: 'read' }, () => read(async () => {
                const rows = await db.query<{ v: number }>('SELECT v FROM reg WHERE k = ?', [k],
                    { timeoutMs: OP_TIMEOUT_MS }).all();
                return rows[0]?.v ?? null;
            }));
            if (error !== undefined) this.count(error);
        } else if (roll < 0.7) {
            const value = this.nextValue++;
            const { error } = await this.register.record(worker, key, { f: 'write', value }, async () => {
                await db.exec('INSERT INTO reg (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v',
                    [k, value], { timeoutMs: OP_TIMEOUT_MS });
                return undefined;
            });
            if (error !== undefined) this.count(error);
        } else {
            // Compare-and-set from a recent value (or null): some succeed, some fail.
            const from = random.chance(0.15) ? null : Math.max(1, this.nextValue - 1 - random.int(4));
            const to = this.nextValue++;
            const { error } = await this.register.record(worker, key, { f: 'cas', from, to }, async () => {
                const result = from === null
                    ? await db.exec('INSERT INTO reg (k, v) VALUES (?, ?) ON CONFLICT (k) DO NOTHING', [k, to],
                        { timeoutMs: OP_TIMEOUT_MS })
                    : await db.exec('UPDATE reg SET v = ? WHERE k = ? AND v = ?', [to, k, from],
                        { timeoutMs: OP_TIMEOUT_MS });
                return Number(result.rowsAffected) === 1;
            });
            if (error !== undefined) this.count(error);
        }
    }

    private async setOp(worker: number, random: SeededRandom): Promise<void> {
        if (random.chance(0.05)) {
            await this.setRead(worker);
            return;
        }
        const db = this.client(worker);
        const value = this.nextValue++;
        const { error } = await this.set.record(worker, 'set', { f: 'add', value }, async () => {
            await db.exec('INSERT INTO s (v) VALUES (?)', [value], { timeoutMs: OP_TIMEOUT_MS });
            return undefined;
        });
        if (error !== undefined) this.count(error);
    }

    private async setRead(worker: number): Promise<number | undefined> {
        const db = this.client(worker);
        const before = this.set.history().length;
        const { error } = await this.set.record(worker, 'set', { f: 'read' }, () => read(async () => {
            const rows = await db.query<{ v: number }>('SELECT v FROM s', [], { timeoutMs: OP_TIMEOUT_MS }).all();
            return rows.map((r) => Number(r.v));
        }));
        if (error !== undefined) {
            this.count(error);
            return undefined;
        }
        return this.set.history().slice(before).find((op) => op.input.f === 'read' && Array.isArray(op.output))?.id;
    }

    private async bankOp(worker: number, random: SeededRandom): Promise<void> {
        if (random.chance(0.3)) {
            await this.bankRead(worker);
            return;
        }
        const db = this.client(worker);
        const from = random.pick(ACCOUNTS);
        let to = random.pick(ACCOUNTS);
        while (to === from) to = random.pick(ACCOUNTS);
        const amount = random.range(1, 10);
        const { error } = await this.bank.record(worker, 'bank', { f: 'transfer', from, to, amount }, async () => {
            await db.transaction(async (tx) => {
                await tx.exec('UPDATE bank SET balance = balance - ? WHERE id = ?', [amount, from],
                    { timeoutMs: OP_TIMEOUT_MS });
                await tx.exec('UPDATE bank SET balance = balance + ? WHERE id = ?', [amount, to],
                    { timeoutMs: OP_TIMEOUT_MS });
            }, { timeoutMs: OP_TIMEOUT_MS });
            return undefined;
        });
        if (error !== undefined) this.count(error);
    }

    private async bankRead(worker: number): Promise<number | undefined> {
        const db = this.client(worker);
        const before = this.bank.history().length;
        const { error } = await this.bank.record(worker, 'bank', { f: 'read' }, () => read(async () => {
            const rows = await db.query<{ id: string; balance: number }>('SELECT id, balance FROM bank', [],
                { timeoutMs: OP_TIMEOUT_MS }).all();
            const out: Record<string, number> = {};
            for (const r of rows) out[String(r.id)] = Number(r.balance);
            return out;
        }));
        if (error !== undefined) {
            this.count(error);
            return undefined;
        }
        return this.bank.history().slice(before).find((op) => op.input.f === 'read' && op.output !== undefined)?.id;
    }

    /** Picks `n` distinct active list-append keys, retiring a key after APPEND_KEY_TXNS uses. */
    private pickAppendKeys(random: SeededRandom, n: number): number[] {
        const slots = random.shuffle([...this.appendKeys.keys()]).slice(0, n);
        return slots.map((i) => {
            const slot = this.appendKeys[i] as { key: number; txns: number };
            slot.txns++;
            if (slot.txns >= APPEND_KEY_TXNS) this.appendKeys[i] = { key: this.nextAppendKey++, txns: 0 };
            return slot.key;
        });
    }

    /** One list-append transaction: 1-3 micro-ops, each an append of a unique value or a read. */
    private async appendOp(worker: number, random: SeededRandom): Promise<void> {
        const keys = this.pickAppendKeys(random, random.range(1, 3));
        const micro: AppendMicro[] = [];
        for (const key of keys) {
            const roll = random.float();
            if (roll < 0.5) micro.push({ f: 'append', key, value: this.nextValue++ });
            else if (roll < 0.8) micro.push({ f: 'read', key });
            else micro.push({ f: 'read', key }, { f: 'append', key, value: this.nextValue++ });
        }
        const { error } = await this.append.record(worker, `la`, micro, () => this.runAppend(worker, micro));
        if (error !== undefined) this.count(error);
    }

    /** Runs micro-ops in one transaction; a read-only one has no effect, so its errors are ReadFailed. */
    private async runAppend(worker: number, micro: AppendInput): Promise<AppendOutput> {
        const db = this.client(worker);
        const body = (): Promise<AppendOutput> => db.transaction(async (tx) => {
            const out: (readonly number[] | null)[] = [];
            for (const op of micro) {
                if (op.f === 'append') {
                    await tx.exec('INSERT INTO la (k, v) VALUES (?, ?) '
                        + 'ON CONFLICT (k) DO UPDATE SET v = v || \',\' || excluded.v',
                    [op.key, String(op.value)], { timeoutMs: OP_TIMEOUT_MS });
                    out.push(null);
                } else {
                    const rows = await tx.query<{ v: string }>('SELECT v FROM la WHERE k = ?', [op.key],
                        { timeoutMs: OP_TIMEOUT_MS }).all();
                    out.push(parseList(rows[0]?.v));
                }
            }
            return out;
        }, { timeoutMs: OP_TIMEOUT_MS });
        return micro.every((op) => op.f === 'read') ? read(body) : body();
    }

    /** Final read of every list-append key ever used, in one read-only transaction. */
    private async appendFinalRead(worker: number): Promise<number | undefined> {
        const micro: AppendMicro[] = [];
        for (let key = 1; key < this.nextAppendKey; key++) micro.push({ f: 'read', key });
        const before = this.append.history().length;
        const { error } = await this.append.record(worker, 'la', micro, () => this.runAppend(worker, micro));
        if (error !== undefined) {
            this.count(error);
            return undefined;
        }
        return this.append.history().slice(before).find((op) => Array.isArray(op.output))?.id;
    }

    /** Final reads of the set, the bank and the lists after the heal, retried until `timeoutMs`. */
    async finalReads(timeoutMs: number): Promise<void> {
        const deadline = Date.now() + timeoutMs;
        const worker = FINAL;
        while (this.setFinal === undefined && Date.now() < deadline) {
            this.setFinal = await this.setRead(worker);
            if (this.setFinal === undefined) await sleep(200);
        }
        while (this.bankFinal === undefined && Date.now() < deadline) {
            this.bankFinal = await this.bankRead(worker + 1);
            if (this.bankFinal === undefined) await sleep(200);
        }
        while (this.options.appendWorkers > 0 && this.appendFinal === undefined && Date.now() < deadline) {
            this.appendFinal = await this.appendFinalRead(worker + 2);
            if (this.appendFinal === undefined) await sleep(200);
        }
    }

    histories(): Histories {
        return {
            register: this.register.history(),
            set: this.set.history(),
            bank: this.bank.history(),
            setFinalRead: this.setFinal,
            bankFinalRead: this.bankFinal,
            append: this.append.history(),
            appendFinalRead: this.appendFinal,
        };
    }

    async close(): Promise<void> {
        await Promise.all([...this.clients.values()].map((db) => db.close()));
    }
}

/** A stored list ('1,5,9'; no row = empty). */
function parseList(text: string | undefined): number[] {
    if (text === undefined || text === null || text === '') return [];
    return String(text).split(',').map(Number);
}

function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}
