// Invariant checkers for the set and bank workloads (TESTING.md §1.1, §8(b)), in the spirit of
// Jepsen's set-full and bank checkers. They are linear in the history and need no search.
//
// Set: every acknowledged add must be in the final read ("lost" otherwise); a completed read that
// began after an add was acknowledged must contain it ("stale" otherwise); a read may contain only
// values some add attempted ("unexpected"); UNKNOWN adds found in the final read are "recovered".
// Bank: every completed read of all balances must sum to the constant total.

import { FAILED, UNKNOWN, type Op } from './history.js';

export type SetWorkloadInput = { readonly f: 'add'; readonly value: number } | { readonly f: 'read' };
export type SetWorkloadOutput = readonly number[] | undefined;

export interface SetReport {
    readonly ok: boolean;
    readonly attempted: number;
    readonly acknowledged: number;
    /** Acknowledged adds missing from the final read. */
    readonly lost: readonly number[];
    /** Reads (by op id) missing a value whose add was acknowledged before the read began. */
    readonly stale: readonly { readonly read: number; readonly value: number }[];
    /** Values read that no add attempted. */
    readonly unexpected: readonly number[];
    /** UNKNOWN adds present in the final read. */
    readonly recovered: number;
    /** False when no completed read exists to serve as the final read. */
    readonly hasFinalRead: boolean;
}

/**
 * Checks a set history. `finalRead` is the id of the read taken after the cluster healed; by
 * default the completed read that began last.
 */
export function checkSet(history: readonly Op<SetWorkloadInput, SetWorkloadOutput>[], finalRead?: number): SetReport {
    const adds = history.filter((op) => op.input.f === 'add');
    const reads = history.filter((op) => op.input.f === 'read' && Array.isArray(op.output));
    const attempted = new Set<number>();
    for (const op of adds) if (op.output !== FAILED) attempted.add((op.input as { value: number }).value);
    const acked = adds.filter((op) => op.output !== UNKNOWN && op.output !== FAILED);
    let last: (typeof reads)[number] | undefined;
    for (const r of reads) {
        if (finalRead === undefined ? last === undefined || r.call > last.call : r.id === finalRead) last = r;
    }
    const finalValues = new Set<number>(last === undefined ? [] : (last.output as readonly number[]));
    const lost = last === undefined ? [] : acked.map((op) => (op.input as { value: number }).value)
        .filter((v) => !finalValues.has(v));
    // Stale: sort acknowledged adds by return time and walk reads by call time.
    const ackedByRet = [...acked].sort((a, b) => (a.ret < b.ret ? -1 : a.ret > b.ret ? 1 : 0));
    const stale: { read: number; value: number }[] = [];
    const unexpected = new Set<number>();
    for (const r of reads) {
        const seen = new Set(r.output as readonly number[]);
        for (const v of seen) if (!attempted.has(v)) unexpected.add(v);
        for (const add of ackedByRet) {
            if (add.ret >= r.call) break;
            const value = (add.input as { value: number }).value;
            if (!seen.has(value)) stale.push({ read: r.id, value });
        }
    }
    const recovered = adds
        .filter((op) => op.output === UNKNOWN && finalValues.has((op.input as { value: number }).value)).length;
    return {
        ok: last !== undefined && lost.length === 0 && stale.length === 0 && unexpected.size === 0,
        attempted: attempted.size,
        acknowledged: acked.length,
        lost,
        stale,
        unexpected: [...unexpected].sort((a, b) => a - b),
        recovered,
        hasFinalRead: last !== undefined,
    };
}

export type BankInput =
    | { readonly f: 'transfer'; readonly from: string; readonly to: string; readonly amount: number }
    | { readonly f: 'read' };
/** read → balance per account; transfer → undefined. */
export type BankOutput = Readonly<Record<string, number>> | undefined;

export interface BankReport {
    readonly ok: boolean;
    readonly reads: number;
    /** Reads whose balances do not sum to the total, or that miss or add accounts. */
    readonly bad: readonly { readonly read: number; readonly total: number; readonly why: string }[];
}

/** Checks that every completed read sees exactly `accounts` and the constant `total`. */
export function checkBank(
    history: readonly Op<BankInput, BankOutput>[],
    options: { readonly total: number; readonly accounts: readonly string[] },
): BankReport {
    const bad: { read: number; total: number; why: string }[] = [];
    let reads = 0;
    const expected = [...options.accounts].sort().join(',');
    for (const op of history) {
        if (op.input.f !== 'read' || op.output === UNKNOWN || op.output === FAILED || op.output === undefined) continue;
        reads++;
        const balances = op.output;
        const total = Object.values(balances).reduce((sum, b) => sum + b, 0);
        const names = Object.keys(balances).sort().join(',');
        if (names !== expected) bad.push({ read: op.id, total, why: `accounts ${names}, expected ${expected}` });
        else if (total !== options.total) {
            bad.push({ read: op.id, total, why: `total ${total}, expected ${options.total}` });
        }
    }
    return { ok: bad.length === 0, reads, bad };
}
