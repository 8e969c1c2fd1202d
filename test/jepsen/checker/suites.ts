// The checker's self-tests as functions of their sizes, shared by checker.test.ts (scaled down)
// and checker.slow.test.ts (the counts TESTING.md §8(c) asks for). Each case derives its own seed
// from the suite seed, so a failure names one case that replays alone.

import { SeededRandom } from '../../../src/lib/random.js';
import { bruteForceLinearizable } from './brute-force.js';
import {
    generateHistory, inject, modelOf, mutateOutput, referenceModelOf, tinyOptions,
    type AnyOp, type GenerateOptions, type Injection, type ModelKind,
} from './generate.js';
import { describeOp } from './history.js';
import { checkLinearizable, describeResult, type CheckResult } from './linearizability.js';

/** The suite seed: SEED from the environment, else a fresh one; always printed. */
export function suiteSeed(name: string): number {
    const fromEnv = process.env['SEED'];
    const seed = fromEnv !== undefined ? Number(fromEnv) : Math.floor(Math.random() * 2 ** 31);
    console.log(`# ${name}: seed ${seed} (replay with SEED=${seed})`);
    return seed;
}

function caseRandom(seed: number, index: number): SeededRandom {
    return new SeededRandom((seed + Math.imul(index, 0x9e3779b1)) | 0);
}

export interface DifferentialStats {
    histories: number;
    linearizable: number;
    disagreements: string[];
}

/**
 * Tiny random histories: the checker (as is, without the unknown-op pre-pass, without the
 * overwritten-value proof) vs brute force.
 */
export function runDifferential(seed: number, count: number): DifferentialStats {
    const stats: DifferentialStats = { histories: 0, linearizable: 0, disagreements: [] };
    for (let i = 0; i < count; i++) {
        const rng = caseRandom(seed, i);
        const options = tinyOptions(rng);
        const history = generateHistory(rng, options);
        const mutations = rng.pick([0, 0, 1, 2]);
        for (let m = 0; m < mutations; m++) mutateOutput(rng, history);
        const model = modelOf(options.kind);
        const expected = bruteForceLinearizable(referenceModelOf(options.kind), history);
        stats.histories++;
        if (expected) stats.linearizable++;
        const variants: [string, CheckResult][] = [
            ['default', checkLinearizable(model, history)],
            ['no pre-pass', checkLinearizable(model, history, { patchUnknown: false })],
            ['search only', checkLinearizable(model, history, { proveOverwritten: false })],
        ];
        if (options.kind === 'cas-map') {
            variants.push(['unpartitioned', checkLinearizable(model, history, { partition: false })]);
        }
        for (const [name, result] of variants) {
            const got = result.verdict === 'ok';
            if (result.verdict === 'unknown' || got !== expected) {
                const lines = history.map((op) => `    ${describeOp(op, (x) => model.describeInput(x))}`);
                stats.disagreements.push(`case ${i} (${options.kind}, ${name}): brute force says ` +
                    `${expected}, checker says ${result.verdict}\n${lines.join('\n')}`);
            }
        }
    }
    return stats;
}

export function largeOptions(rng: SeededRandom, kind: ModelKind, opsMin: number, opsMax: number): GenerateOptions {
    return {
        kind,
        ops: rng.range(opsMin, opsMax),
        clients: rng.range(1, 10),
        keys: rng.chance(0.5) ? 1 : rng.range(2, 10),
        // Counter adds are not unique, so the pre-pass cannot bound UNKNOWN ones and each stays
        // open to +∞: the search is exponential in them (2,000 ops, 10 clients, 1 % unknown runs
        // past 30 s). Large counter histories therefore have none; the tiny differential test
        // covers UNKNOWN counter adds.
        unknownRate: kind === 'counter' ? 0 : rng.pick([0, 0.02, 0.05]),
        failRate: rng.pick([0, 0.02]),
        uniqueValues: true,
        durationMax: rng.pick([10, 100, 1000]),
        gapMax: rng.pick([0, 10, 100]),
        unitNs: 1000,
    };
}

/**
 * Models for the large histories. The plain append-list is exponential in the number of appends
 * that may be reordered before a read reveals their order, so large lists use the lazy model.
 */
const LARGE_KINDS: readonly ModelKind[] = [
    'register', 'cas-register', 'cas-map', 'set', 'unique-append-list', 'counter',
];

export interface AcceptanceStats {
    histories: number;
    ops: number;
    accepted: number;
    failures: string[];
    elapsedMs: number;
    slowestMs: number;
    /** Checking time per model kind (ms). */
    byKindMs: Record<string, number>;
}

/** Generated linearizable histories over every model: all must be accepted. */
export function runAcceptance(seed: number, count: number, opsMin: number, opsMax: number): AcceptanceStats {
    const stats: AcceptanceStats = {
        histories: 0, ops: 0, accepted: 0, failures: [], elapsedMs: 0, slowestMs: 0, byKindMs: {},
    };
    for (let i = 0; i < count; i++) {
        const rng = caseRandom(seed, i);
        const kind = LARGE_KINDS[i % LARGE_KINDS.length] as ModelKind;
        const options = largeOptions(rng, kind, opsMin, opsMax);
        const history = generateHistory(rng, options);
        const model = modelOf(kind);
        const result = checkLinearizable(model, history, { budgetMs: 60_000 });
        stats.histories++;
        stats.ops += history.length;
        stats.elapsedMs += result.elapsedMs;
        stats.byKindMs[kind] = (stats.byKindMs[kind] ?? 0) + result.elapsedMs;
        stats.slowestMs = Math.max(stats.slowestMs, result.elapsedMs);
        if (result.verdict === 'ok') stats.accepted++;
        else {
            const report = describeResult(model, result);
            stats.failures.push(`case ${i} ${JSON.stringify(options)}: ${result.verdict}\n${report}`);
        }
    }
    return stats;
}

export interface RejectionStats {
    histories: number;
    rejected: number;
    byKind: Record<string, number>;
    byKindMs: Record<string, number>;
    /** Injected histories found linearizable: a soundness bug (as opposed to 'unknown'). */
    accepted: number;
    failures: string[];
    elapsedMs: number;
    slowestMs: number;
}

const INJECTABLE: readonly ModelKind[] = ['register', 'cas-register', 'cas-map', 'set', 'unique-append-list'];

/** The same kind of histories with one injected stale read or lost write: all must be rejected. */
export function runRejection(
    seed: number, count: number, opsMin: number, opsMax: number, budgetMs = 60_000,
): RejectionStats {
    const stats: RejectionStats = {
        histories: 0, rejected: 0, byKind: {}, byKindMs: {}, accepted: 0, failures: [], elapsedMs: 0, slowestMs: 0,
    };
    for (let i = 0; stats.histories < count; i++) {
        const rng = caseRandom(seed, i);
        const kind = INJECTABLE[i % INJECTABLE.length] as ModelKind;
        const what: Injection = rng.chance(0.5) ? 'stale-read' : 'lost-write';
        const options = largeOptions(rng, kind, opsMin, opsMax);
        const history = inject(rng, kind, generateHistory(rng, options), what);
        if (history === undefined) continue;
        const model = modelOf(kind);
        const result = checkLinearizable(model, history, { budgetMs });
        stats.histories++;
        if (result.verdict === 'ok') stats.accepted++;
        const label = `${kind}/${what}`;
        stats.byKind[label] = (stats.byKind[label] ?? 0) + 1;
        stats.elapsedMs += result.elapsedMs;
        stats.byKindMs[label] = (stats.byKindMs[label] ?? 0) + result.elapsedMs;
        stats.slowestMs = Math.max(stats.slowestMs, result.elapsedMs);
        if (result.verdict === 'illegal') stats.rejected++;
        else stats.failures.push(`case ${i} ${label} ${JSON.stringify(options)}: ${result.verdict}`);
    }
    return stats;
}

/** A register-map history for the performance figures of TESTING.md §8(c). */
export function performanceHistory(
    seed: number, ops: number, keys: number, clients: number, unknownRate: number,
): AnyOp[] {
    return generateHistory(new SeededRandom(seed), {
        kind: 'cas-map', ops, clients, keys, unknownRate, failRate: 0, uniqueValues: true,
        durationMax: 100, gapMax: 10, unitNs: 1000,
    });
}
