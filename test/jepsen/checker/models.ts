// Sequential specifications for the linearizability checker (TESTING.md §3.2, §3.4). Every model
// here is deterministic: apply(state, input) gives the one next state and the one output the
// object would return, and the checker accepts a recorded output when matches() says so. States
// are immutable values with a 32-bit hash and an equality, so the search can memoize them.
//
// Optional hooks describe unique values (written/observed/dependsOnAbsence). The checker uses them
// to bound UNKNOWN operations the way etcd's robustness tests do: an unknown write whose unique
// value some operation observed must have taken effect before that observer returned; an unknown
// write whose value nobody observed may be dropped when no operation depends on a value's absence
// (a failed compare-and-set does). Without the hooks, unknown operations stay open until +∞.

import { UNKNOWN, type Unknown } from './history.js';
import { fmix32, mix32 } from '../../../src/lib/murmur.js';

export type Value = number | string | null;

export interface Model<S, I, O> {
    readonly name: string;
    init(): S;
    /** The next state and the output, from a state and an input. Pure. */
    apply(state: S, input: I): { state: S; output: O };
    /** Whether a recorded output agrees with the output the model produced. */
    matches(recorded: O, expected: O): boolean;
    hash(state: S): number;
    equal(a: S, b: S): boolean;
    /** Operations that never change the state (an UNKNOWN one can be dropped). */
    isReadOnly(input: I): boolean;
    /**
     * Whether an op with this output never changes the object's contents (default: isReadOnly).
     * The checker places such an op as soon as it is legal and never tries it later.
     */
    isPure?(input: I, output: O | Unknown): boolean;
    /**
     * True when every op that changes the state is a blind update (its output says nothing about
     * the state) and all such ops commute (counter adds, set adds). The search then tries an open
     * UNKNOWN op only right before a pure op or another UNKNOWN op, never before an update.
     */
    readonly updatesCommute?: boolean;
    describeInput(input: I): string;
    describeState(state: S): string;
    /** The value this op would store, when values identify their writer. */
    written?(input: I): Value | undefined;
    /** Values a completed op proves were present when it took effect. */
    observed?(input: I, output: O): readonly Value[];
    /** Values an UNKNOWN op would need present if it took effect (e.g. a CAS's expected value). */
    mayObserve?(input: I): readonly Value[];
    /** Whether a completed op's output could depend on a value being absent (e.g. a failed CAS). */
    dependsOnAbsence?(input: I, output: O): boolean;
    /**
     * For registers: the value a completed op surely leaves in its register (a write's value, a
     * successful CAS's new value), or undefined when it stores nothing. Used with `written`,
     * `observed` and `registerOf` for the overwritten-value check (see linearizability.ts).
     */
    overwrites?(input: I, output: O): Value | undefined;
    /** For registers: the value an op would store if it took effect (null included), else undefined. */
    mayStore?(input: I): Value | undefined;
    /** For registers: the value every register holds before any op stores to it. */
    readonly initialValue?: Value;
    /**
     * For grow-only objects (no op ever removes a value; every completed op with a `written` value
     * added it): the whole contents a completed read returned, else undefined.
     */
    contents?(input: I, output: O): readonly Value[] | undefined;
    /** For registers: which register an op touches (ops of different registers never interact). */
    registerOf?(input: I): string;
    /**
     * A transition that needs more than apply/matches: it gets the recorded output and the op's
     * interval (relative numbers, ret Infinity when open) and returns the next state or undefined.
     */
    step?(state: S, input: I, output: O | Unknown, interval: Interval): S | undefined;
}

export interface Interval {
    readonly call: number;
    readonly ret: number;
}

const NO_INTERVAL: Interval = { call: -Infinity, ret: Infinity };

export function isPure<S, I, O>(model: Model<S, I, O>, input: I, output: O | Unknown): boolean {
    return model.isPure !== undefined ? model.isPure(input, output) : model.isReadOnly(input);
}

/** The model's transition with a recorded output: the next state, or undefined when illegal. */
export function step<S, I, O>(
    model: Model<S, I, O>, state: S, input: I, output: O | Unknown, interval: Interval = NO_INTERVAL,
): S | undefined {
    if (model.step !== undefined) return model.step(state, input, output, interval);
    const next = model.apply(state, input);
    if (output === UNKNOWN || model.matches(output, next.output)) return next.state;
    return undefined;
}

// ---- hashing -----------------------------------------------------------------------------------

export function hashValue(value: Value, seed = 0x2545f491): number {
    if (value === null) return mix32(seed, 0x6e756c6c);
    if (typeof value === 'number') {
        if (Number.isInteger(value) && Math.abs(value) < 2 ** 31) return mix32(seed, value);
        const text = String(value);
        let h = mix32(seed, 0x6e756d);
        for (let i = 0; i < text.length; i++) h = mix32(h, text.charCodeAt(i));
        return h;
    }
    let h = mix32(seed, 0x737472);
    for (let i = 0; i < value.length; i++) h = mix32(h, value.charCodeAt(i));
    return h;
}


// ---- registers -----------------------------------------------------------------------------------

export type RegisterInput =
    | { readonly f: 'read' }
    | { readonly f: 'write'; readonly value: Value }
    | { readonly f: 'cas'; readonly from: Value; readonly to: Value };
/** read → the value; write → undefined; cas → whether it swapped. */
export type RegisterOutput = Value | boolean | undefined;

function describeRegisterInput(input: RegisterInput): string {
    switch (input.f) {
        case 'read': return 'read';
        case 'write': return `write(${JSON.stringify(input.value)})`;
        case 'cas': return `cas(${JSON.stringify(input.from)}→${JSON.stringify(input.to)})`;
    }
}

function registerModel(name: string, allowCas: boolean, initial: Value): Model<Value, RegisterInput, RegisterOutput> {
    return {
        name,
        init: () => initial,
        apply(state, input) {
            switch (input.f) {
                case 'read': return { state, output: state };
                case 'write': return { state: input.value, output: undefined };
                case 'cas':
                    if (!allowCas) throw new Error(`${name} has no cas`);
                    return state === input.from ? { state: input.to, output: true } : { state, output: false };
            }
        },
        matches: (recorded, expected) => recorded === expected,
        hash: (state) => hashValue(state),
        equal: (a, b) => a === b,
        isReadOnly: (input) => input.f === 'read',
        describeInput: describeRegisterInput,
        describeState: (state) => JSON.stringify(state),
        written(input) {
            if (input.f === 'write') return input.value === null ? undefined : input.value;
            if (input.f === 'cas') return input.to === null ? undefined : input.to;
            return undefined;
        },
        observed(input, output) {
            if (input.f === 'read') return [output as Value];
            if (input.f === 'cas' && output === true) return [input.from];
            return [];
        },
        mayObserve: (input) => (input.f === 'cas' ? [input.from] : []),
        dependsOnAbsence: (input, output) => input.f === 'cas' && output === false,
        overwrites: registerOverwrites,
        mayStore: registerMayStore,
        initialValue: initial,
        registerOf: () => '',
        isPure: (input, output) => input.f === 'read' || (input.f === 'cas' && output === false),
    };
}

function registerMayStore(input: RegisterInput): Value | undefined {
    return input.f === 'write' ? input.value : input.f === 'cas' ? input.to : undefined;
}

function registerOverwrites(input: RegisterInput, output: unknown): Value | undefined {
    if (input.f === 'write') return input.value;
    if (input.f === 'cas' && output === true) return input.to;
    return undefined;
}

/** A read/write register starting at null. */
export const register = registerModel('register', false, null);
/** A read/write/compare-and-set register starting at null. */
export const casRegister = registerModel('cas-register', true, null);

// ---- key → value map (the per-key partitioning of a CAS register) --------------------------------

export type MapInput =
    | { readonly f: 'read'; readonly key: string }
    | { readonly f: 'write'; readonly key: string; readonly value: Value }
    | { readonly f: 'cas'; readonly key: string; readonly from: Value; readonly to: Value };
export type MapOutput = RegisterOutput;
/** Sorted by key; absent keys read as null. */
export type MapState = readonly (readonly [string, Value])[];

function mapGet(state: MapState, key: string): Value {
    for (const [k, v] of state) if (k === key) return v;
    return null;
}

function mapSet(state: MapState, key: string, value: Value): MapState {
    const out = state.filter(([k]) => k !== key);
    out.push([key, value]);
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    return out;
}

/**
 * A map of CAS registers. Checked per key (op.key must equal input.key) each partition holds one
 * entry; checked whole (partition: false) it is the full map, which the tests use to confirm
 * that partitioning does not change the verdict.
 */
export const casMap: Model<MapState, MapInput, MapOutput> = {
    name: 'cas-map',
    init: () => [],
    apply(state, input) {
        const current = mapGet(state, input.key);
        switch (input.f) {
            case 'read': return { state, output: current };
            case 'write': return { state: mapSet(state, input.key, input.value), output: undefined };
            case 'cas':
                if (current !== input.from) return { state, output: false };
                return { state: mapSet(state, input.key, input.to), output: true };
        }
    },
    matches: (recorded, expected) => recorded === expected,
    hash(state) {
        let h = 0x1234567;
        for (const [k, v] of state) h = mix32(hashValue(k, h), hashValue(v));
        return fmix32(h);
    },
    equal(a, b) {
        if (a.length !== b.length) return false;
        for (let i = 0; i < a.length; i++) {
            const x = a[i] as readonly [string, Value];
            const y = b[i] as readonly [string, Value];
            if (x[0] !== y[0] || x[1] !== y[1]) return false;
        }
        return true;
    },
    isReadOnly: (input) => input.f === 'read',
    describeInput: (input) => `${input.key}:${describeRegisterInput(input)}`,
    describeState: (state) => `{${state.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ')}}`,
    written: (input) => casRegister.written?.(input),
    observed: (input, output) => casRegister.observed?.(input, output) ?? [],
    mayObserve: (input) => (input.f === 'cas' ? [input.from] : []),
    isPure: (input, output) => input.f === 'read' || (input.f === 'cas' && output === false),
    dependsOnAbsence: (input, output) => input.f === 'cas' && output === false,
    overwrites: (input, output) => registerOverwrites(input, output),
    mayStore: (input) => registerMayStore(input),
    initialValue: null,
    registerOf: (input) => input.key,
};

// ---- persistent lists (shared by the set and the append-only list) -------------------------------

/** An immutable cons list, newest first, carrying its length and a hash. */
interface Cell {
    readonly value: number;
    readonly rest: Cell | null;
    readonly length: number;
    readonly hash: number;
}

function cellsOf(cell: Cell | null): number[] {
    const out: number[] = [];
    for (let c = cell; c !== null; c = c.rest) out.push(c.value);
    return out.reverse();
}

// ---- set of numbers --------------------------------------------------------------------------------

export type SetInput = { readonly f: 'add'; readonly value: number } | { readonly f: 'read' };
/** add → undefined; read → the elements in any order. */
export type SetOutput = readonly number[] | undefined;
/**
 * The adds so far, newest first, repeats included (a multiset, so an add costs O(1)); reads see
 * the distinct elements. The hash is order-independent: the sum of element hashes, plus the count.
 */
export type SetState = Cell | null;

function countsOf(state: SetState): Map<number, number> {
    const counts = new Map<number, number>();
    for (let c = state; c !== null; c = c.rest) counts.set(c.value, (counts.get(c.value) ?? 0) + 1);
    return counts;
}

/** What a recorded read needs for checking, computed once per recorded output. */
interface ReadSummary {
    readonly members: ReadonlySet<number>;
    readonly hasRepeats: boolean;
    readonly hash: number;
}

const readSummaries = new WeakMap<readonly number[], ReadSummary>();

function summarize(output: readonly number[]): ReadSummary {
    let summary = readSummaries.get(output);
    if (summary === undefined) {
        const members = new Set(output);
        let hash = 0;
        for (const v of members) hash = (hash + fmix32(hashValue(v))) >>> 0;
        summary = { members, hasRepeats: members.size !== output.length, hash };
        readSummaries.set(output, summary);
    }
    return summary;
}

/** Whether the distinct elements of `state` are exactly the recorded read's. */
function setReadMatches(state: SetState, output: readonly number[]): boolean {
    const read = summarize(output);
    const count = state?.length ?? 0;
    if (read.hasRepeats || count < read.members.size) return false;
    if (count === read.members.size && (state?.hash ?? 0) !== read.hash) return false;
    const seen = new Set<number>();
    for (let c = state; c !== null; c = c.rest) {
        if (!read.members.has(c.value)) return false;
        seen.add(c.value);
    }
    return seen.size === read.members.size;
}

export const set: Model<SetState, SetInput, SetOutput> = {
    name: 'set',
    init: () => null,
    step(state, input, output) {
        if (input.f === 'read') {
            if (output === UNKNOWN) return state;
            return output !== undefined && setReadMatches(state, output) ? state : undefined;
        }
        if (output !== UNKNOWN && output !== undefined) return undefined;
        const hash = ((state?.hash ?? 0) + fmix32(hashValue(input.value))) >>> 0;
        return { value: input.value, rest: state, length: (state?.length ?? 0) + 1, hash };
    },
    apply(state, input) {
        if (input.f === 'read') return { state, output: [...countsOf(state).keys()] };
        const hash = ((state?.hash ?? 0) + fmix32(hashValue(input.value))) >>> 0;
        const length = (state?.length ?? 0) + 1;
        return { state: { value: input.value, rest: state, length, hash }, output: undefined };
    },
    matches(recorded, expected) {
        if (recorded === undefined || expected === undefined) return recorded === expected;
        if (recorded.length !== expected.length) return false;
        const members = new Set(expected);
        const seen = new Set<number>();
        for (const v of recorded) {
            if (!members.has(v) || seen.has(v)) return false;
            seen.add(v);
        }
        return true;
    },
    hash: (state) => fmix32((state?.hash ?? 0) ^ (state?.length ?? 0)),
    equal(a, b) {
        if (a === b) return true;
        if (a === null || b === null) return false;
        if (a.length !== b.length || a.hash !== b.hash) return false;
        const counts = countsOf(a);
        for (let c: Cell | null = b; c !== null; c = c.rest) {
            const left = counts.get(c.value) ?? 0;
            if (left === 0) return false;
            counts.set(c.value, left - 1);
        }
        return true;
    },
    isReadOnly: (input) => input.f === 'read',
    updatesCommute: true,
    describeInput: (input) => (input.f === 'read' ? 'read' : `add(${input.value})`),
    describeState: (state) => `#{${[...countsOf(state).keys()].sort((x, y) => x - y).join(' ')}}`,
    written: (input) => (input.f === 'add' ? input.value : undefined),
    observed: (input, output) => (input.f === 'read' && output !== undefined ? output : []),
    contents: (input, output) => (input.f === 'read' && output !== undefined ? output : undefined),
};

// ---- append-only list ---------------------------------------------------------------------------------

export type ListInput = { readonly f: 'append'; readonly value: number } | { readonly f: 'read' };
/** append → undefined; read → the whole list, oldest first. */
export type ListOutput = readonly number[] | undefined;
export type ListState = Cell | null;

export const appendList: Model<ListState, ListInput, ListOutput> = {
    name: 'append-list',
    init: () => null,
    apply(state, input) {
        if (input.f === 'read') return { state, output: cellsOf(state) };
        const hash = mix32(state?.hash ?? 0x51ed270b, input.value);
        const length = (state?.length ?? 0) + 1;
        return { state: { value: input.value, rest: state, length, hash }, output: undefined };
    },
    matches(recorded, expected) {
        if (recorded === undefined || expected === undefined) return recorded === expected;
        if (recorded.length !== expected.length) return false;
        for (let i = 0; i < recorded.length; i++) if (recorded[i] !== expected[i]) return false;
        return true;
    },
    hash: (state) => fmix32((state?.hash ?? 0) ^ (state?.length ?? 0)),
    equal(a, b) {
        let x = a;
        let y = b;
        while (x !== y) {
            if (x === null || y === null) return false;
            if (x.length !== y.length || x.hash !== y.hash || x.value !== y.value) return false;
            x = x.rest;
            y = y.rest;
        }
        return true;
    },
    isReadOnly: (input) => input.f === 'read',
    describeInput: (input) => (input.f === 'read' ? 'read' : `append(${input.value})`),
    describeState: (state) => `[${cellsOf(state).join(' ')}]`,
    written: (input) => (input.f === 'append' ? input.value : undefined),
    observed: (input, output) => (input.f === 'read' && output !== undefined ? output : []),
    contents: (input, output) => (input.f === 'read' && output !== undefined ? output : undefined),
};

// ---- append-only list with unique values, ordered lazily ------------------------------------------

/** Appends linearized since the last read, not yet put in order; a multiset with an xor hash. */
interface Pending {
    readonly value: number;
    readonly call: number;
    readonly ret: number;
    readonly rest: Pending | null;
    readonly size: number;
    readonly hash: number;
}

export interface LazyListState {
    /** The list as the last read fixed it (newest first). */
    readonly prefix: Cell | null;
    /** Appends after that read, in no particular order. */
    readonly tail: Pending | null;
}

function pendingOf(tail: Pending | null): Map<number, Pending> {
    const out = new Map<number, Pending>();
    for (let p = tail; p !== null; p = p.rest) out.set(p.value, p);
    return out;
}

function lazyRead(state: LazyListState, recorded: readonly number[]): LazyListState | undefined {
    const fixed = state.prefix?.length ?? 0;
    if (recorded.length !== fixed + (state.tail?.size ?? 0)) return undefined;
    let i = fixed - 1;
    for (let c = state.prefix; c !== null; c = c.rest, i--) if (recorded[i] !== c.value) return undefined;
    if (state.tail === null) return state;
    // The tail may be read in any order that respects real time among its appends: no append
    // may come after one that was called after it returned.
    const pending = pendingOf(state.tail);
    let prefix = state.prefix;
    let callMax = -Infinity;
    for (let j = fixed; j < recorded.length; j++) {
        const p = pending.get(recorded[j] as number);
        if (p === undefined || p.ret < callMax) return undefined;
        pending.delete(p.value);
        if (p.call > callMax) callMax = p.call;
        const hash = mix32(prefix?.hash ?? 0x51ed270b, p.value);
        prefix = { value: p.value, rest: prefix, length: (prefix?.length ?? 0) + 1, hash };
    }
    return { prefix, tail: null };
}

/**
 * The append-only list for histories whose appended values are unique per key (the workloads'
 * rule). Appends since the last read are kept as an unordered set, and a read picks their order
 * (checking it against real time), so concurrent appends do not multiply the search by every
 * order in which they could have happened. Same verdicts as appendList on unique values (the
 * differential test checks it); a repeated value is a usage error and throws.
 */
export const uniqueAppendList: Model<LazyListState, ListInput, ListOutput> = {
    name: 'unique-append-list',
    init: () => ({ prefix: null, tail: null }),
    apply(state, input) {
        const ordered = [...(state.tail === null ? [] : [...pendingOf(state.tail).values()].reverse())];
        if (input.f === 'read') {
            const output = [...cellsOf(state.prefix), ...ordered.map((p) => p.value)];
            return { state: lazyRead(state, output) as LazyListState, output };
        }
        const next = uniqueAppendList.step?.(state, input, undefined, NO_INTERVAL) as LazyListState;
        return { state: next, output: undefined };
    },
    step(state, input, output, interval) {
        if (input.f === 'read') {
            if (output === UNKNOWN) return state;
            return output === undefined ? undefined : lazyRead(state, output);
        }
        for (let c = state.prefix; c !== null; c = c.rest) {
            if (c.value === input.value) throw new Error(`unique-append-list: value ${input.value} appended twice`);
        }
        for (let p = state.tail; p !== null; p = p.rest) {
            if (p.value === input.value) throw new Error(`unique-append-list: value ${input.value} appended twice`);
        }
        const tail = state.tail;
        return {
            prefix: state.prefix,
            tail: {
                value: input.value, call: interval.call, ret: interval.ret, rest: tail, size: (tail?.size ?? 0) + 1,
                hash: ((tail?.hash ?? 0) ^ fmix32(hashValue(input.value))) >>> 0,
            },
        };
    },
    matches: (recorded, expected) => appendList.matches(recorded, expected),
    hash: (state) =>
        fmix32(appendList.hash(state.prefix) ^ Math.imul(state.tail?.hash ?? 0, 0x9e3779b1) ^ (state.tail?.size ?? 0)),
    equal(a, b) {
        if (!appendList.equal(a.prefix, b.prefix)) return false;
        if (a.tail === b.tail) return true;
        if (a.tail === null || b.tail === null) return false;
        if (a.tail.size !== b.tail.size || a.tail.hash !== b.tail.hash) return false;
        const members = pendingOf(a.tail);
        for (let p: Pending | null = b.tail; p !== null; p = p.rest) if (!members.has(p.value)) return false;
        return true;
    },
    isReadOnly: (input) => input.f === 'read',
    describeInput: (input) => appendList.describeInput(input),
    describeState: (state) =>
        `[${cellsOf(state.prefix).join(' ')}] + unordered {${[...pendingOf(state.tail).keys()].join(' ')}}`,
    written: (input) => (input.f === 'append' ? input.value : undefined),
    observed: (input, output) => (input.f === 'read' && output !== undefined ? output : []),
    contents: (input, output) => (input.f === 'read' && output !== undefined ? output : undefined),
};

// ---- counter ---------------------------------------------------------------------------------------------

export type CounterInput = { readonly f: 'add'; readonly delta: number } | { readonly f: 'read' };
export type CounterOutput = number | undefined;

/** A counter starting at 0; deltas are not unique, so UNKNOWN adds stay open until +∞. */
export const counter: Model<number, CounterInput, CounterOutput> = {
    name: 'counter',
    init: () => 0,
    apply(state, input) {
        if (input.f === 'read') return { state, output: state };
        return { state: state + input.delta, output: undefined };
    },
    matches: (recorded, expected) => recorded === expected,
    hash: (state) => fmix32(hashValue(state)),
    equal: (a, b) => a === b,
    isReadOnly: (input) => input.f === 'read',
    updatesCommute: true,
    describeInput: (input) => (input.f === 'read' ? 'read' : `add(${input.delta})`),
    describeState: (state) => String(state),
};
