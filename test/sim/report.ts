// Summaries of a batch of simulated runs: failures with one-line repros, coverage of the
// "sometimes" counters, throughput. Shared by the CLI and the slow test.

import { EXIT_CODES } from './failure.js';
import { finish, mix32 } from './hash.js';
import type { SimResult } from './simulation.js';
import { SOMETIMES } from './types.js';
import type { Counters } from './types.js';

export function reproCommand(seed: number): string {
    return `npm run sim -- --seed ${seed}`;
}

/** The exit code for a batch: the most serious failure kind wins (safety, then liveness, then crash). */
export function exitCodeOf(results: readonly SimResult[]): number {
    if (results.some((r) => r.kind === 'safety')) return EXIT_CODES.safety;
    if (results.some((r) => r.kind === 'liveness')) return EXIT_CODES.liveness;
    if (results.some((r) => r.kind === 'crash')) return EXIT_CODES.crash;
    return 0;
}

/** One hash over the trace hashes of all runs, in seed order. */
export function batchHash(results: readonly SimResult[]): string {
    let h = 0;
    for (const r of results) h = mix32(h, parseInt(r.traceHash || '0', 16) | 0);
    return (finish(h) >>> 0).toString(16).padStart(8, '0');
}

export function failureLines(results: readonly SimResult[]): string[] {
    const lines: string[] = [];
    for (const r of results) {
        if (r.ok) continue;
        const first = (r.message ?? '').split('\n')[0] ?? '';
        lines.push(`FAIL seed ${r.seed} (${r.kind}): ${first}`);
        lines.push(`  repro: ${reproCommand(r.seed)}`);
    }
    return lines;
}

/** Per counter: in how many runs it fired, and the total. */
export function coverageLines(results: readonly SimResult[]): string[] {
    const n = results.length;
    if (n === 0) return [];
    const keys = Object.keys(results[0]?.counters ?? {}) as (keyof Counters)[];
    const lines: string[] = [];
    for (const key of keys) {
        let seeds = 0;
        let total = 0;
        for (const r of results) {
            const v = r.counters[key];
            total += v;
            if (v > 0) seeds++;
        }
        const mark = SOMETIMES.includes(key) ? (seeds * 20 >= n ? ' ' : '!') : ' ';
        const share = ((100 * seeds) / n).toFixed(1).padStart(5);
        lines.push(`${mark} ${key.padEnd(28)} ${share}% of seeds   total ${total}`);
    }
    return lines;
}

export function summaryLines(results: readonly SimResult[], wallMs: number): string[] {
    const failures = results.filter((r) => !r.ok);
    const byKind = (k: string): number => failures.filter((r) => r.kind === k).length;
    const simSeconds = results.reduce((s, r) => s + r.simTimeMs, 0) / 1000;
    const leaderTimes = results.map((r) => r.leaderAfterHealMs).filter((x): x is number => x !== undefined);
    const convergeTimes = results.map((r) => r.convergedAfterHealMs).filter((x): x is number => x !== undefined);
    const max = (xs: number[]): string => (xs.length === 0 ? '-' : Math.max(...xs).toFixed(0));
    return [
        `seeds ${results.length}, failures ${failures.length} (safety ${byKind('safety')}, liveness ` +
            `${byKind('liveness')}, crash ${byKind('crash')})`,
        `wall ${(wallMs / 1000).toFixed(1)} s, ${(results.length / (wallMs / 1000)).toFixed(1)} seeds/s, ` +
            `simulated ${simSeconds.toFixed(0)} s, events ${results.reduce((s, r) => s + r.counters.events, 0)}`,
        `after heal: single leader within max ${max(leaderTimes)} ms, converged within max ${max(convergeTimes)} ms`,
        `batch trace hash ${batchHash(results)}`,
    ];
}
