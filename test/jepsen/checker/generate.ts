// Generators of histories for testing the checkers (TESTING.md §3.4 "testing the checker").
// A history is made by simulating clients: each client issues one op at a time with a random
// duration; every op that takes effect gets a linearization point inside its interval (an UNKNOWN
// op that takes effect may do so after it returned; a FAILED op never does); the outputs come from
// applying the ops to the model in linearization-point order. Such a history is linearizable by
// construction. Mutations then make a chosen history non-linearizable on purpose.

import type { SeededRandom } from '../../../src/lib/random.js';
import { FAILED, UNKNOWN, type Op } from './history.js';
import {
    appendList, casMap, casRegister, counter, register, set, uniqueAppendList,
    type Model, type Value,
} from './models.js';

export type ModelKind =
    'register' | 'cas-register' | 'cas-map' | 'set' | 'append-list' | 'unique-append-list' | 'counter';
export const MODEL_KINDS: readonly ModelKind[] = [
    'register', 'cas-register', 'cas-map', 'set', 'append-list', 'unique-append-list', 'counter',
];

// The generators handle every model through one loose type; the models check their inputs.
export type AnyModel = Model<unknown, unknown, unknown>;
export type AnyOp = Op<unknown, unknown>;

/** The model the checker uses for a kind. */
export function modelOf(kind: ModelKind): AnyModel {
    const models: Record<ModelKind, unknown> = {
        'register': register, 'cas-register': casRegister, 'cas-map': casMap,
        'set': set, 'append-list': appendList, 'unique-append-list': uniqueAppendList, 'counter': counter,
    };
    return models[kind] as AnyModel;
}

/** The plain model that generates histories and that the brute-force oracle uses. */
export function referenceModelOf(kind: ModelKind): AnyModel {
    return modelOf(kind === 'unique-append-list' ? 'append-list' : kind);
}

export interface GenerateOptions {
    readonly kind: ModelKind;
    readonly ops: number;
    readonly clients: number;
    /** Partition keys (ops pick one at random). */
    readonly keys: number;
    readonly unknownRate: number;
    readonly failRate: number;
    /** Every written value distinct (else drawn from 1..3, to make collisions likely). */
    readonly uniqueValues: boolean;
    /** Maximum op duration and gap between a client's ops, in time units. */
    readonly durationMax: number;
    readonly gapMax: number;
    /** Nanoseconds per time unit. */
    readonly unitNs: number;
}

interface Pending {
    readonly id: number;
    readonly client: number;
    readonly key: string;
    readonly input: unknown;
    readonly call: number;
    readonly ret: number;
    readonly status: 'ok' | 'unknown' | 'fail';
    /** Undefined when the op never takes effect. */
    readonly point: number | undefined;
}

function randomInput(
    rng: SeededRandom, o: GenerateOptions, key: string, values: () => number, recent: Value[],
): unknown {
    const pickValue = (): number => (o.uniqueValues ? values() : rng.range(1, 3));
    switch (o.kind) {
        case 'register':
            return rng.chance(0.5) ? { f: 'read' } : { f: 'write', value: pickValue() };
        case 'cas-register':
        case 'cas-map': {
            const r = rng.float();
            const base = r < 0.4 ? { f: 'read' } : r < 0.7 ? { f: 'write', value: pickValue() }
                : { f: 'cas', from: recent.length === 0 || rng.chance(0.2) ? null : rng.pick(recent), to: pickValue() };
            return o.kind === 'cas-map' ? { ...base, key } : base;
        }
        case 'set':
            return rng.chance(0.6) ? { f: 'add', value: pickValue() } : { f: 'read' };
        case 'append-list':
        case 'unique-append-list':
            return rng.chance(0.6) ? { f: 'append', value: pickValue() } : { f: 'read' };
        case 'counter':
            return rng.chance(0.6) ? { f: 'add', delta: rng.range(1, 3) } : { f: 'read' };
    }
}

/** A history that is linearizable by construction (see the file comment). */
export function generateHistory(rng: SeededRandom, o: GenerateOptions): AnyOp[] {
    const model = referenceModelOf(o.kind);
    let nextValue = 1;
    const values = (): number => nextValue++;
    const recent = new Map<string, Value[]>();
    const clientTime: number[] = Array.from({ length: o.clients }, () => rng.int(o.gapMax + 1));
    const clientId: number[] = Array.from({ length: o.clients }, (_, i) => i);
    let nextClient = o.clients;
    const pending: Pending[] = [];
    for (let id = 0; id < o.ops; id++) {
        // The client that is free earliest issues the next op.
        let c = 0;
        for (let i = 1; i < o.clients; i++) if ((clientTime[i] as number) < (clientTime[c] as number)) c = i;
        const key = `k${rng.int(o.keys)}`;
        const recentValues = recent.get(key) ?? [];
        const input = randomInput(rng, o, key, values, recentValues);
        const writtenValue = model.written?.(input);
        if (writtenValue !== undefined) {
            recentValues.push(writtenValue);
            if (recentValues.length > 4) recentValues.shift();
            recent.set(key, recentValues);
        }
        const call = (clientTime[c] as number) + rng.int(o.gapMax + 1);
        const ret = call + rng.int(o.durationMax + 1);
        const r = rng.float();
        const status = r < o.unknownRate ? 'unknown' : r < o.unknownRate + o.failRate ? 'fail' : 'ok';
        let point: number | undefined;
        if (status === 'ok') point = call + rng.float() * (ret - call);
        else if (status === 'unknown' && rng.chance(0.5)) point = call + rng.float() * 3 * (ret - call + 1);
        pending.push({ id, client: clientId[c] as number, key, input, call, ret, status, point });
        clientTime[c] = ret;
        // A client whose op is indeterminate is considered crashed; its thread continues as a new client.
        if (status === 'unknown') clientId[c] = nextClient++;
    }
    const outputs = new Map<number, unknown>();
    const states = new Map<string, unknown>();
    const effective = pending.filter((p) => p.point !== undefined);
    effective.sort((a, b) => (a.point as number) - (b.point as number) || a.id - b.id);
    for (const p of effective) {
        // cas-map keeps one map across keys; other models get one object per key.
        const stateKey = o.kind === 'cas-map' ? '' : p.key;
        const before = states.has(stateKey) ? states.get(stateKey) : model.init();
        const after = model.apply(before, p.input);
        states.set(stateKey, after.state);
        outputs.set(p.id, after.output);
    }
    return pending.map((p) => ({
        id: p.id,
        client: p.client,
        key: p.key,
        input: p.input,
        output: p.status === 'ok' ? outputs.get(p.id) : p.status === 'unknown' ? UNKNOWN : FAILED,
        call: BigInt(p.call) * BigInt(o.unitNs),
        ret: BigInt(p.ret) * BigInt(o.unitNs),
    }));
}

/** Small random parameters for the differential test against the brute-force oracle. */
export function tinyOptions(rng: SeededRandom): GenerateOptions {
    const kind = rng.pick(MODEL_KINDS);
    return {
        kind,
        ops: rng.range(1, 8),
        clients: rng.range(1, 4),
        keys: kind === 'cas-map' ? rng.range(1, 2) : 1,
        unknownRate: rng.pick([0, 0.15, 0.3]),
        failRate: rng.pick([0, 0.1, 0.2]),
        uniqueValues: kind === 'unique-append-list' || rng.chance(0.5),
        durationMax: 4,
        gapMax: 2,
        unitNs: 1,
    };
}

/** Replaces the output of one completed op with a plausible wrong one (or returns false). */
export function mutateOutput(rng: SeededRandom, history: AnyOp[]): boolean {
    const candidates = history.map((op, i) => ({ op, i })).filter(({ op }) =>
        op.output !== UNKNOWN && op.output !== FAILED && op.output !== undefined);
    if (candidates.length === 0) return false;
    const { op, i } = rng.pick(candidates);
    const out = op.output;
    let changed: unknown;
    if (typeof out === 'boolean') changed = !out;
    else if (Array.isArray(out)) {
        const list = [...(out as number[])];
        const r = rng.int(3);
        if (r === 0 && list.length > 0) list.splice(rng.int(list.length), 1);
        else if (r === 1 && list.length > 1) {
            const a = rng.int(list.length);
            const b = rng.int(list.length);
            [list[a], list[b]] = [list[b] as number, list[a] as number];
        } else list.splice(rng.int(list.length + 1), 0, rng.range(1, 4));
        changed = list;
    } else if (typeof out === 'number' || out === null) {
        const choices: Value[] = [null, 1, 2, 3, 4, 5, 6];
        const fInput = op.input as { f: string };
        const nearby = fInput.f === 'read' && typeof out === 'number' && rng.chance(0.5);
        changed = nearby ? (out as number) + rng.pick([-1, 1]) : rng.pick(choices);
    } else return false;
    history[i] = { ...op, output: changed };
    return true;
}

export type Injection = 'stale-read' | 'lost-write';

function isDefiniteWrite(op: AnyOp): { value: Value } | undefined {
    if (op.output === UNKNOWN || op.output === FAILED) return undefined;
    const input = op.input as { f: string; value?: Value; to?: Value };
    if (input.f === 'write') return { value: input.value as Value };
    if (input.f === 'cas' && op.output === true) return { value: input.to as Value };
    return undefined;
}

/**
 * Injects one violation that makes any history non-linearizable, or returns undefined when the
 * history offers no place for it. Registers and maps (unique values): a completed read returns a
 * value whose write was followed, in real time, by another completed write that returned before
 * the read began (a 'stale-read'; for a register a lost write looks the same). Sets and lists: a
 * completed add/append vanishes from one read ('stale-read') or from every read ('lost-write')
 * that began after the add returned.
 */
export function inject(rng: SeededRandom, kind: ModelKind, history: AnyOp[], what: Injection): AnyOp[] | undefined {
    const out = [...history];
    if (kind === 'register' || kind === 'cas-register' || kind === 'cas-map') {
        const reads = out.map((op, i) => ({ op, i })).filter(({ op }) =>
            (op.input as { f: string }).f === 'read' && op.output !== UNKNOWN && op.output !== FAILED);
        rng.shuffle(reads);
        for (const { op: read, i } of reads) {
            const writes = out.filter((w) => w.key === read.key && isDefiniteWrite(w) !== undefined);
            // W2: a definite write that returned before the read began; W1 (or the initial value) before W2.
            const w2s = writes.filter((w) => w.ret < read.call);
            if (w2s.length === 0) continue;
            const w2 = rng.pick(w2s);
            const w1s = writes.filter((w) => w.ret < w2.call);
            const initial = w1s.length === 0 || rng.chance(0.2);
            const stale: Value = initial ? null : (isDefiniteWrite(rng.pick(w1s)) as { value: Value }).value;
            if (stale === read.output) continue;
            out[i] = { ...read, output: stale };
            return out;
        }
        return undefined;
    }
    if (kind === 'set' || kind === 'append-list' || kind === 'unique-append-list') {
        const adds = out.filter((op) =>
            (op.input as { f: string }).f !== 'read' && op.output !== UNKNOWN && op.output !== FAILED);
        rng.shuffle(adds);
        for (const add of adds) {
            const value = (add.input as { value: number }).value;
            const later = out.map((op, i) => ({ op, i })).filter(({ op }) => op.key === add.key &&
                (op.input as { f: string }).f === 'read' && Array.isArray(op.output) && op.call > add.ret);
            if (later.length === 0) continue;
            const targets = what === 'stale-read' ? [rng.pick(later)] : later;
            for (const { op, i } of targets) {
                out[i] = { ...op, output: (op.output as number[]).filter((v) => v !== value) };
            }
            return out;
        }
        return undefined;
    }
    return undefined;
}
