// One nemesis run (TESTING.md §8(b)): start a cluster of real `tqlite node` processes behind
// fault proxies, run the workloads while the nemesis injects faults, heal everything, then check:
//
//   - a leader within 5 s of the final heal;
//   - every node at the same applied index with identical databases (digest of the committed
//     pages, integrity 'ok') within 30 s, and every node in the configuration;
//   - the register history is linearizable (casRegister, per key), the set lost / stale /
//     unexpected nothing (final read after the heal), every bank read summed to the total;
//   - list-append transactions (see appendCheck below): no read incompatible with the final
//     lists, no acknowledged append missing from the final read, no duplicate or unknown values,
//     no aborted reads and no dependency cycles (checker/list-append.ts, on windows of the history);
//   - 0 unexpected process exits, 0 assertion / uncaught / FATAL lines in node logs.
//
// The result carries the figures the CLI prints (ops, outcomes, faults, checker and convergence
// times) and the list of violations; an empty list is a pass.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkLinearizable, describeResult } from '../checker/linearizability.js';
import { casRegister } from '../checker/models.js';
import { checkBank, checkSet } from '../checker/invariants.js';
import { checkListAppend, type MicroOp, type Txn } from '../checker/list-append.js';
import { FAILED, UNKNOWN, type Op } from '../checker/history.js';
import { NemesisCluster, type NodeStatusLine, type Target } from './cluster.js';
import { Nemesis, needsDiskMode, type FaultKind, type Profile } from './nemesis.js';

/** Disk mode (the disk profile): each node's data directory is a tmpfs this big. */
const DISK_MIB = 256;
import { ACCOUNTS, BANK_TOTAL, Workloads, type AppendInput, type AppendOutput } from './workloads.js';
import { SeededRandom } from '../../../src/lib/random.js';

export interface RunOptions {
    /** tqlite (default) or a dqlite-demo cluster (see dqlite.ts). */
    readonly target?: Target;
    readonly seed: number;
    readonly durationS: number;
    readonly nodes: number;
    readonly profile: Profile;
    /** Start nodes with --unsafe-power-cut-mode (default true). */
    readonly powerCut?: boolean;
    /** Keep the log directory even when the run passes (default: keep only on failure). */
    readonly keepLogs?: boolean;
    readonly log?: (line: string) => void;
    /** Checker budget per register key (ms). */
    readonly checkerBudgetMs?: number;
    /**
     * Harness sanity check: half of the register reads read a random node's local copy (DUMP,
     * no leader, no ReadIndex). A correct harness reports the register history as not
     * linearizable.
     */
    readonly sanityStaleReads?: boolean;
    /** Aborting ends the fault phase early; the heal and every check still run. */
    readonly signal?: AbortSignal;
    /** Client workers (register, set, bank, list-append). */
    readonly workers?: readonly [number, number, number, number];
}

export interface OutcomeCounts {
    ok: number;
    fail: number;
    unknown: number;
}

export interface RunResult {
    readonly target: Target;
    readonly seed: number;
    readonly profile: Profile;
    readonly nodes: number;
    readonly durationS: number;
    readonly violations: string[];
    readonly ops: {
        register: OutcomeCounts; set: OutcomeCounts; bank: OutcomeCounts; append: OutcomeCounts; total: number;
    };
    readonly faults: Record<string, number>;
    readonly checkerMs: number;
    readonly registerKeys: number;
    /** Milliseconds from the final heal to a leader / to convergence (undefined: never). */
    readonly leaderMs: number | undefined;
    readonly convergeMs: number | undefined;
    readonly appliedIndex: number | undefined;
    readonly setReport: { acknowledged: number; lost: number; stale: number; unexpected: number; recovered: number };
    readonly bankReads: number;
    readonly appendReport: AppendReport;
    readonly clientErrors: Record<string, number>;
    readonly unexpectedExits: number;
    /** Nodes that stopped on a disk the nemesis filled (disk profile: expected fail-stops). */
    readonly fullDiskStops: number;
    readonly logProblems: number;
    readonly errorLines: number;
    readonly logDir: string;
    readonly wallS: number;
    /** Seconds of the fault phase (shorter than durationS when aborted). */
    readonly faultS: number;
}

function outcomes(ops: readonly Op<unknown, unknown>[]): OutcomeCounts {
    const counts = { ok: 0, fail: 0, unknown: 0 };
    for (const op of ops) {
        if (op.output === UNKNOWN) counts.unknown++;
        else if (op.output === FAILED) counts.fail++;
        else counts.ok++;
    }
    return counts;
}

/** An op as JSON: times as decimal strings, UNKNOWN / FAILED as strings. */
function plainOp(op: Op<unknown, unknown>): object {
    const output = op.output === UNKNOWN ? 'UNKNOWN' : op.output === FAILED ? 'FAILED' : op.output;
    return { ...op, output, call: String(op.call), ret: String(op.ret) };
}

/** Same applied index, same digests, integrity ok, every node in the configuration. */
function converged(statuses: readonly (NodeStatusLine | undefined)[], size: number): string | undefined {
    const first = statuses[0];
    if (statuses.some((s) => s === undefined) || first === undefined) return 'a node did not answer';
    const digest = (s: NodeStatusLine): string => JSON.stringify(s.databases);
    for (const s of statuses as NodeStatusLine[]) {
        if (s.fsmAppliedIndex !== first.fsmAppliedIndex || s.appliedIndex !== first.appliedIndex) {
            return `applied ${statuses.map((x) => x?.appliedIndex).join('/')}`;
        }
        if (digest(s) !== digest(first)) return 'database digests differ';
        if (s.databases.some((d) => d.integrity !== 'ok')) return 'integrity check failed';
        if (s.members !== size) {
            return `${s.members} members, expected ${size}; voters ${s.voters.join(',')}; `
                + `applied ${statuses.map((x) => `${x?.role}@${x?.appliedIndex}/${x?.members}`).join(' ')}`;
        }
    }
    return undefined;
}

export interface AppendReport {
    /** Keys in the final read. */
    keys: number;
    reads: number;
    acknowledged: number;
    lost: number;
    /** Appends of unknown outcome found in the final read. */
    recovered: number;
    windows: number;
    edges: number;
    anomalies: string[];
}

/** Transactions with a window this long (and half-overlapping windows) keep the rt edges' n² small. */
const APPEND_WINDOW = 800;

/**
 * Checks the list-append history. Global checks, over the whole history: every committed read
 * of a key is a prefix of the longest list read of it (the final read's, normally); every
 * acknowledged append is in the final read; no list holds a value twice or a value never
 * appended to that key. Then checker/list-append.ts (a sketch of Elle: aborted reads, duplicate
 * appends, ww/wr/rw/rt cycles) on windows of APPEND_WINDOW transactions in call order, each
 * overlapping the previous by half: a cycle inside a window is a real cycle; one spanning more
 * than a window is missed.
 */
export function appendCheck(history: readonly Op<AppendInput, AppendOutput>[], finalRead: number | undefined): AppendReport {
    const anomalies: string[] = [];
    const txns: Txn[] = history.map((op) => {
        const status = op.output === UNKNOWN ? 'unknown' : op.output === FAILED ? 'fail' : 'ok';
        const output = status === 'ok' ? op.output as AppendOutput : undefined;
        const ops: MicroOp[] = op.input.map((m, i) => m.f === 'append'
            ? { f: 'append', key: String(m.key), value: m.value }
            : { f: 'read', key: String(m.key), value: output?.[i] ?? undefined });
        return { id: op.id, client: op.client, ops, status, call: op.call, ret: op.ret };
    });
    const appended = new Map<string, 'ok' | 'fail' | 'unknown'>();
    for (const t of txns) for (const m of t.ops) if (m.f === 'append') appended.set(`${m.key}/${m.value}`, t.status);
    const longest = new Map<string, readonly number[]>();
    let reads = 0;
    for (const t of txns) {
        for (const m of t.ops) {
            if (m.f !== 'read' || m.value === undefined) continue;
            reads++;
            if (m.value.length > (longest.get(m.key)?.length ?? 0)) longest.set(m.key, m.value);
            if (new Set(m.value).size !== m.value.length) {
                anomalies.push(`txn ${t.id} read a duplicate in ${m.key}=${JSON.stringify(m.value)}`);
            }
            for (const v of m.value) {
                if (!appended.has(`${m.key}/${v}`)) anomalies.push(`txn ${t.id} read ${m.key}/${v}, never appended`);
            }
        }
    }
    for (const t of txns) {
        for (const m of t.ops) {
            if (m.f !== 'read' || m.value === undefined) continue;
            const full = longest.get(m.key) ?? [];
            if (m.value.some((v, i) => full[i] !== v)) {
                anomalies.push(`incompatible-order: txn ${t.id} read ${m.key}=${JSON.stringify(m.value)}, `
                    + `longest ${JSON.stringify(full)}`);
            }
        }
    }
    let acknowledged = 0;
    let lost = 0;
    let recovered = 0;
    const final = txns.find((t) => t.id === finalRead && t.status === 'ok');
    const finalLists = new Map<string, Set<number>>();
    for (const m of final?.ops ?? []) {
        if (m.f === 'read' && m.value !== undefined) finalLists.set(m.key, new Set(m.value));
    }
    for (const t of txns) {
        for (const m of t.ops) {
            if (m.f !== 'append' || t.status === 'fail') continue;
            const present = finalLists.get(m.key)?.has(m.value) === true;
            if (t.status === 'ok') acknowledged++;
            if (t.status === 'ok' && final !== undefined && !present) {
                lost++;
                if (lost <= 10) anomalies.push(`lost: acknowledged append ${m.key}/${m.value} (txn ${t.id}) not read`);
            }
            if (t.status === 'unknown' && present) recovered++;
        }
    }
    const sorted = [...txns].sort((a, b) => (a.call < b.call ? -1 : a.call > b.call ? 1 : 0));
    let windows = 0;
    let edges = 0;
    const seen = new Set<string>(anomalies);
    for (let start = 0; start === 0 || start + APPEND_WINDOW / 2 < sorted.length; start += APPEND_WINDOW / 2) {
        const report = checkListAppend(sorted.slice(start, start + APPEND_WINDOW));
        windows++;
        edges += report.edgeCount;
        for (const a of report.anomalies) {
            const text = `${a.kind}: ${a.detail}` + (a.cycle === undefined ? ''
                : ` [${a.cycle.map((c) => `${c.txn} -${c.edge}->`).join(' ')}]`);
            if (!seen.has(text)) anomalies.push(text);
            seen.add(text);
        }
    }
    return { keys: finalLists.size, reads, acknowledged, lost, recovered, windows, edges, anomalies };
}

export async function runNemesis(options: RunOptions): Promise<RunResult> {
    const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
    const t0 = Date.now();
    const logDir = mkdtempSync(join(tmpdir(), `tqlite-nemesis-${options.seed}-`));
    const violations: string[] = [];
    log(`nemesis: seed ${options.seed}, ${options.nodes} nodes, profile ${options.profile}, `
        + `${options.durationS} s, power-cut mode ${options.powerCut !== false ? 'on' : 'off'}; logs in ${logDir}`);
    log(`replay: node build/test/jepsen/nemesis/cli.js --seed ${options.seed} --nodes ${options.nodes} `
        + `--profile ${options.profile} --duration ${options.durationS} --target ${options.target ?? 'tqlite'}`);
    const target = options.target ?? 'tqlite';
    const cluster = await NemesisCluster.open({
        target, size: options.nodes, seed: options.seed, powerCut: options.powerCut !== false, logDir, log,
        ...(target === 'tqlite' && needsDiskMode(options.profile) ? { diskMiB: DISK_MIB } : {}),
    });
    // Ten workers in all (the op rate of the runs before list-append came in).
    const [rw, sw, bw, aw] = options.workers ?? [3, 2, 3, 2];
    const weakRandom = new SeededRandom(options.seed).fork('weak-reads');
    const weakRead = async (k: number): Promise<number | null> => {
        const up = cluster.states.flatMap((s, i) => (s === 'up' ? [i] : []));
        const i = up[weakRandom.int(Math.max(1, up.length))] ?? 0;
        const database = target === 'dqlite' ? 'demo' : 'jepsen';
        const rows = await cluster.weakRead(i, database, 'SELECT v FROM reg WHERE k = ?', [k]);
        const v = (rows[0] as { v?: number } | undefined)?.v;
        return v === undefined ? null : Number(v);
    };
    if (options.sanityStaleReads === true) log('SANITY MODE: half the register reads are weak (a node\'s local copy)');
    const workloads = new Workloads({
        servers: cluster.advertised, seed: options.seed, registerWorkers: rw, setWorkers: sw, bankWorkers: bw,
        appendWorkers: aw,
        thinkMs: [20, 120], ...(target === 'dqlite' ? { database: 'demo' } : {}),
        ...(options.sanityStaleReads === true ? { weakReads: { fraction: 0.5, read: weakRead } } : {}),
    });
    const nemesis = new Nemesis(cluster, {
        seed: options.seed, profile: options.profile, durationMs: options.durationS * 1_000, log,
        ...(target === 'dqlite' ? { disabled: ['member', 'disk-full'] as const } : {}),
    });
    let leaderMs: number | undefined;
    let convergeMs: number | undefined;
    let appliedIndex: number | undefined;
    let checkerMs = 0;
    let registerKeys = 0;
    let setReport = { acknowledged: 0, lost: 0, stale: 0, unexpected: 0, recovered: 0 };
    let bankReads = 0;
    let appendReport: AppendReport = {
        keys: 0, reads: 0, acknowledged: 0, lost: 0, recovered: 0, windows: 0, edges: 0, anomalies: [],
    };
    let faultS = 0;
    let result: RunResult | undefined;
    try {
        // Formation: n1 bootstraps, the others join; wait for every member.
        cluster.start(0, true);
        await cluster.waitFor('a first leader', 20_000,
            async () => ((await cluster.leaderSeenBy(0)) === 0 ? true : undefined));
        for (let i = 1; i < options.nodes; i++) cluster.start(i);
        await cluster.waitFor(`${options.nodes} members`, 60_000, async () => {
            const members = await cluster.members();
            return members.length === options.nodes ? true : undefined;
        });
        log(`cluster formed in ${Date.now() - t0} ms`);
        await workloads.setup(30_000);
        workloads.start();

        const onAbort = (): void => {
            log('abort requested: ending the fault phase now, then heal and check');
            nemesis.stop();
        };
        options.signal?.addEventListener('abort', onAbort, { once: true });
        if (options.signal?.aborted === true) onAbort();
        const faultStart = Date.now();
        await nemesis.run();
        faultS = (Date.now() - faultStart) / 1000;
        await nemesis.healAll();
        const healed = Date.now();
        try {
            // Waits up to 30 s to report the real figure; more than 5 s is a violation.
            await cluster.waitFor('a leader after the heal', 30_000, async () => cluster.leader());
            leaderMs = Date.now() - healed;
            if (leaderMs > 5_000) violations.push(`leader only ${leaderMs} ms after the final heal (bound 5 s)`);
        } catch {
            violations.push('no leader within 30 s of the final heal');
        }
        // The last ops run on the healed cluster, then the final reads.
        await workloads.stop();
        await workloads.finalReads(30_000);

        const convergeStart = Date.now();
        let last = '';
        if (target === 'dqlite') {
            log('convergence (applied index, digests) not checked: dqlite-demo has no status line');
        } else try {
            await cluster.waitFor('convergence', 30_000, async () => {
                const statuses = await Promise.all([...Array(options.nodes).keys()].map((i) => cluster.status(i)));
                const why = converged(statuses, options.nodes);
                if (why === undefined) {
                    appliedIndex = statuses[0]?.appliedIndex;
                    return true;
                }
                last = why;
                // Pace the polls: every poll makes each node log a status line.
                await new Promise((resolve) => setTimeout(resolve, 250));
                return undefined;
            });
            convergeMs = Date.now() - convergeStart;
        } catch {
            violations.push(`nodes did not converge within 30 s of the final reads: ${last}`);
        }

        // Checks on the histories.
        const histories = workloads.histories();
        const c0 = performance.now();
        const lin = checkLinearizable(casRegister, histories.register, { budgetMs: options.checkerBudgetMs ?? 10_000 });
        registerKeys = lin.partitions.length;
        if (lin.verdict !== 'ok') {
            violations.push(`register history: ${lin.verdict}`);
            const report = describeResult(casRegister, lin);
            writeFileSync(join(logDir, 'register-failure.txt'), report);
            log(report.split('\n').slice(0, 60).join('\n'));
        }
        const set = checkSet(histories.set, histories.setFinalRead);
        setReport = {
            acknowledged: set.acknowledged, lost: set.lost.length, stale: set.stale.length,
            unexpected: set.unexpected.length, recovered: set.recovered,
        };
        if (!set.hasFinalRead || histories.setFinalRead === undefined) violations.push('set: no final read');
        if (set.lost.length > 0) {
            violations.push(`set: ${set.lost.length} acknowledged adds lost: ${set.lost.slice(0, 20).join(',')}`);
        }
        if (set.stale.length > 0) {
            violations.push(`set: ${set.stale.length} stale reads, e.g. ${JSON.stringify(set.stale.slice(0, 5))}`);
        }
        if (set.unexpected.length > 0) {
            violations.push(`set: unexpected values ${set.unexpected.slice(0, 20).join(',')}`);
        }
        const bank = checkBank(histories.bank, { total: BANK_TOTAL, accounts: ACCOUNTS });
        bankReads = bank.reads;
        if (histories.bankFinalRead === undefined) violations.push('bank: no final read');
        if (!bank.ok) {
            violations.push(`bank: ${bank.bad.length} bad reads, e.g. ${JSON.stringify(bank.bad.slice(0, 3))}`);
        }
        if (aw > 0) {
            appendReport = appendCheck(histories.append, histories.appendFinalRead);
            if (histories.appendFinalRead === undefined) violations.push('list-append: no final read');
            if (appendReport.anomalies.length > 0) {
                violations.push(`list-append: ${appendReport.anomalies.length} anomalies, first: `
                    + appendReport.anomalies.slice(0, 5).join(' | '));
            }
        }
        checkerMs = performance.now() - c0;

        const ops = {
            register: outcomes(histories.register), set: outcomes(histories.set), bank: outcomes(histories.bank),
            append: outcomes(histories.append),
            total: histories.register.length + histories.set.length + histories.bank.length
                + histories.append.length,
        };
        for (const p of nemesis.problems) violations.push(`nemesis: ${p}`);
        if (cluster.unexpectedExits.length > 0) {
            const exits = JSON.stringify(cluster.unexpectedExits);
            violations.push(`${cluster.unexpectedExits.length} unexpected exits: ${exits}`);
        }
        if (cluster.logProblems.length > 0) {
            violations.push(`${cluster.logProblems.length} assertion/uncaught/FATAL log lines, first: `
                + cluster.logProblems.slice(0, 3).map((p) => `n${p.node + 1}: ${p.line.slice(0, 400)}`).join(' | '));
        }
        const faults: Record<string, number> = {};
        for (const [k, v] of nemesis.counts) faults[k as FaultKind] = v;
        result = {
            target, seed: options.seed, profile: options.profile, nodes: options.nodes, durationS: options.durationS,
            violations, ops, faults, checkerMs, registerKeys, leaderMs, convergeMs, appliedIndex, setReport, bankReads,
            appendReport, clientErrors: Object.fromEntries(workloads.errors),
            unexpectedExits: cluster.unexpectedExits.length, fullDiskStops: cluster.fullDiskStops.length,
            logProblems: cluster.logProblems.length, errorLines: cluster.errorLines, logDir,
            wallS: (Date.now() - t0) / 1000, faultS,
        };
        writeFileSync(join(logDir, 'summary.json'), JSON.stringify(result, null, 2));
        if (violations.length > 0 || options.keepLogs === true) {
            writeFileSync(join(logDir, 'histories.json'), JSON.stringify({
                register: histories.register.map(plainOp), set: histories.set.map(plainOp),
                bank: histories.bank.map(plainOp), setFinalRead: histories.setFinalRead,
                bankFinalRead: histories.bankFinalRead, append: histories.append.map(plainOp),
                appendFinalRead: histories.appendFinalRead,
            }));
        }
        writeFileSync(join(logDir, 'nemesis-events.json'), JSON.stringify(nemesis.events, null, 2));
        return result;
    } catch (error) {
        violations.push(`harness error: ${(error as Error).stack ?? String(error)}`);
        log(`harness error: ${(error as Error).stack ?? String(error)}`);
        for (let i = 0; i < options.nodes; i++) {
            log(`--- n${i + 1} log: ${join(logDir, `n${i + 1}.log`)}`);
        }
        throw error;
    } finally {
        nemesis.stop();
        await workloads.stop().catch(() => undefined);
        await workloads.close().catch(() => undefined);
        await cluster.close();
        if (result !== undefined && result.violations.length === 0 && options.keepLogs !== true) {
            rmSync(logDir, { recursive: true, force: true });
        }
    }
}

/** The summary the CLI prints. */
export function formatSummary(r: RunResult): string {
    const o = (c: OutcomeCounts): string => `ok ${c.ok} / fail ${c.fail} / unknown ${c.unknown}`;
    const faults = Object.entries(r.faults).map(([k, v]) => `${k} ${v}`).join(', ') || 'none';
    const lines = [
        `=== nemesis summary (${r.target}): seed ${r.seed}, ${r.nodes} nodes, profile ${r.profile}, ${r.durationS} s `
            + `(wall ${r.wallS.toFixed(0)} s)`,
        `ops: ${r.ops.total} (${(r.ops.total / Math.max(1, r.faultS)).toFixed(1)}/s over the ${r.faultS.toFixed(0)} s `
            + 'fault phase)',
        `  register: ${o(r.ops.register)}; ${r.registerKeys} keys`,
        `  set:      ${o(r.ops.set)}; acknowledged ${r.setReport.acknowledged}, lost ${r.setReport.lost}, `
            + `stale ${r.setReport.stale}, unexpected ${r.setReport.unexpected}, `
            + `unknown-but-present ${r.setReport.recovered}`,
        `  bank:     ${o(r.ops.bank)}; ${r.bankReads} reads checked`,
        `  append:   ${o(r.ops.append)} txns; ${r.appendReport.keys} keys, ${r.appendReport.reads} list reads, `
            + `acknowledged appends ${r.appendReport.acknowledged}, lost ${r.appendReport.lost}, `
            + `unknown-but-present ${r.appendReport.recovered}; ${r.appendReport.edges} dependency edges in `
            + `${r.appendReport.windows} windows, ${r.appendReport.anomalies.length} anomalies`,
        `client errors: ${JSON.stringify(r.clientErrors)}`,
        `faults injected: ${faults}`,
        `checker: ${r.checkerMs.toFixed(0)} ms`,
        `after the final heal: leader in ${r.leaderMs ?? 'never'} ms; ` + (r.target === 'dqlite'
            ? 'convergence not checked (dqlite-demo has no status line)'
            : `converged in ${r.convergeMs ?? 'never'} ms at applied index ${r.appliedIndex ?? '?'}`),
        `unexpected exits ${r.unexpectedExits}, bad log lines ${r.logProblems}, error-level log lines ${r.errorLines}`
            + (r.fullDiskStops > 0 ? `, stops on a full disk ${r.fullDiskStops} (expected)` : ''),
        r.violations.length === 0 ? 'RESULT: PASS (0 violations)'
            : `RESULT: FAIL (${r.violations.length} violations; logs kept in ${r.logDir})\n`
                + r.violations.map((v) => `  - ${v}`).join('\n'),
    ];
    return lines.join('\n');
}
