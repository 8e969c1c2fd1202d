// A linearizability checker in the style of Porcupine (Wing & Gong, with Lowe's memoization;
// TESTING.md §3.2 and §3.4). The history is split per key (linearizability is local, so the
// whole is linearizable iff every key is), and each partition is searched depth-first:
//
//   Entries are the ops' calls and returns sorted by time (calls first on ties, so touching
//   intervals are concurrent), held in a doubly-linked list. Walking from the head, a call entry
//   is an op we may linearize now: if the model accepts its output and the (set of linearized
//   ops, state) pair is new, push it, unlink its call and return, and restart from the head.
//   Reaching a return entry means an op that already returned is not linearized: backtrack by
//   popping the last op, restoring the state and relinking it, then continue after its call.
//   Success when every op with a known output is linearized; failure when there is nothing left
//   to pop. The stack is explicit (no recursion), the set of linearized ops is a bitset with an
//   incrementally updated Zobrist hash, and the cache holds copies of (bitset, state) pairs.
//
// UNKNOWN ops accept any output and return at +∞, so they may take effect at any time after
// their call, or never. Unless disabled, a pre-pass (see models.ts) drops UNKNOWN read-only ops,
// bounds an UNKNOWN write whose unique value was observed by the earliest return of an observer,
// and drops an UNKNOWN write nobody observed when no op in the partition depends on absence.
// Registers first get the overwritten-value check (overwrittenObservation below), a direct proof
// that a completed op observed a value that had certainly been overwritten, and grow-only objects
// the missing-element check (a read lacks an add that returned before it began); a stale read
// among many UNKNOWN ops is otherwise proved only by exhausting every interleaving before it.
// Each partition has a wall-clock budget; running out gives the verdict 'unknown'.

import { FAILED, UNKNOWN, describeOp, type Failed, type Op, type Unknown } from './history.js';
import { isPure, step, type Model, type Value } from './models.js';

export type Verdict = 'ok' | 'illegal' | 'unknown';

export interface CheckOptions {
    /** Wall-clock budget per partition (ms); exceeding it gives 'unknown'. Default 10,000. */
    budgetMs?: number;
    /** Check per op.key (default true). False checks the history as one object. */
    partition?: boolean;
    /** Apply the unique-value pre-pass to UNKNOWN ops (default true). */
    patchUnknown?: boolean;
    /** Try the direct proofs (overwritten value, missing element) before searching (default true). */
    proveOverwritten?: boolean;
    /** Monotonic milliseconds; defaults to performance.now. */
    now?: () => number;
}

export interface FailureReport {
    /** The longest sequence of ops the search could linearize, in order. */
    readonly linearized: readonly Op<unknown, unknown>[];
    /** The model state after that sequence. */
    readonly state: string;
    /** The op that had returned but could not be placed after that sequence. */
    readonly blocked: Op<unknown, unknown>;
    /** Ops not in the sequence whose intervals overlap the blocked op's interval. */
    readonly concurrent: readonly Op<unknown, unknown>[];
    /** Why, when the illegality was proved without the search (the overwritten-value check). */
    readonly reason?: string;
}

export interface PartitionResult {
    readonly key: string;
    readonly verdict: Verdict;
    /** Ops searched after dropping failed ops and the unknown-op pre-pass. */
    readonly opCount: number;
    readonly droppedUnknown: number;
    readonly elapsedMs: number;
    readonly cacheEntries: number;
    readonly failure?: FailureReport;
}

export interface CheckResult {
    readonly verdict: Verdict;
    readonly partitions: readonly PartitionResult[];
    readonly elapsedMs: number;
}

/** Checks a history against a model; see the file comment. */
export function checkLinearizable<S, I, O>(
    model: Model<S, I, O>,
    history: readonly Op<I, O>[],
    options: CheckOptions = {},
): CheckResult {
    const now = options.now ?? (() => performance.now());
    const started = now();
    const groups = new Map<string, Op<I, O>[]>();
    for (const op of history) {
        if (op.output === FAILED) continue;
        const key = options.partition === false ? '' : op.key;
        let group = groups.get(key);
        if (group === undefined) groups.set(key, (group = []));
        group.push(op);
    }
    const partitions: PartitionResult[] = [];
    for (const [key, ops] of [...groups].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
        partitions.push(checkPartition(model, key, ops, options, now));
    }
    let verdict: Verdict = 'ok';
    if (partitions.some((p) => p.verdict === 'unknown')) verdict = 'unknown';
    if (partitions.some((p) => p.verdict === 'illegal')) verdict = 'illegal';
    return { verdict, partitions, elapsedMs: now() - started };
}

interface Prepared<I, O> {
    readonly ops: Op<I, O>[];
    /** Return time per op, as a number relative to the earliest call; Infinity when open. */
    readonly ret: number[];
    readonly call: number[];
    readonly dropped: number;
    /** UNKNOWN writes of a unique value nobody can observe, kept only because of absence dependence. */
    readonly unobserved: ReadonlySet<Op<I, O>>;
}

/** Drops what cannot matter and bounds UNKNOWN ops (see models.ts for why this is sound). */
function prepare<S, I, O>(model: Model<S, I, O>, input: Op<I, O>[], patch: boolean): Prepared<I, O> {
    let base = input[0]?.call ?? 0n;
    for (const op of input) if (op.call < base) base = op.call;
    let ops = input;
    if (patch) ops = ops.filter((op) => !(op.output === UNKNOWN && model.isReadOnly(op.input)));
    const bound = new Map<Op<I, O>, bigint>();
    const dropped = new Set<Op<I, O>>();
    const unobserved = new Set<Op<I, O>>();
    if (patch && model.written !== undefined && model.observed !== undefined) {
        const writers = new Map<Value, number>();
        for (const op of ops) {
            const v = model.written(op.input);
            if (v !== undefined) writers.set(v, (writers.get(v) ?? 0) + 1);
        }
        const firstObserved = new Map<Value, bigint>();
        let absence = false;
        const mayBeObserved = new Set<Value>();
        for (const op of ops) {
            if (op.output === UNKNOWN) {
                for (const v of model.mayObserve?.(op.input) ?? []) mayBeObserved.add(v);
                continue;
            }
            const output = op.output as O;
            if (model.dependsOnAbsence?.(op.input, output) === true) absence = true;
            for (const v of model.observed(op.input, output)) {
                const seen = firstObserved.get(v);
                if (seen === undefined || op.ret < seen) firstObserved.set(v, op.ret);
            }
        }
        for (const op of ops) {
            if (op.output !== UNKNOWN) continue;
            const v = model.written(op.input);
            if (v === undefined || writers.get(v) !== 1) continue;
            const seen = firstObserved.get(v);
            if (seen !== undefined) bound.set(op, seen > op.call ? seen : op.call);
            else if (!mayBeObserved.has(v)) (absence ? unobserved : dropped).add(op);
        }
        ops = ops.filter((op) => !dropped.has(op));
    }
    const call = ops.map((op) => Number(op.call - base));
    const ret = ops.map((op) => {
        if (op.output !== UNKNOWN) return Number(op.ret - base);
        const b = bound.get(op);
        return b === undefined ? Infinity : Number(b - base);
    });
    return { ops, call, ret, dropped: input.length - ops.length, unobserved };
}

/**
 * The overwritten-value check for registers, a proof of illegality that needs no search. Let a
 * completed op R observe value a (a read returning a, a CAS swapping from a) in register g. Either
 * a is g's initial value and no op in the partition could store a (`mayStore`, whether completed
 * or not), so g holds a only before its first store; or W is the only op that could store a, and W
 * completed storing it, so in any linearization W precedes R and nothing between them changes g
 * (no op but W can store a again, and W is placed once). A completed op X that stores another
 * value in g and that returned before R was called (and, in the second case, was called after W
 * returned) must be placed before R (and after W) by real-time order, so g cannot hold a when R
 * takes effect: no linearization exists. This is what a stale read looks like, and the search
 * proves it only by exhausting every interleaving before R, which UNKNOWN ops multiply.
 */
function overwrittenObservation<S, I, O>(model: Model<S, I, O>, ops: readonly Op<I, O>[]): FailureReport | undefined {
    const { observed, overwrites, mayStore, registerOf } = model;
    if (observed === undefined || overwrites === undefined || mayStore === undefined || registerOf === undefined ||
        model.initialValue === undefined) {
        return undefined;
    }
    const initial = model.initialValue;
    // Candidates per (register, value); partition: false may mix registers.
    const storers = new Map<string, Op<I, O>[]>();
    const slot = (register: string, v: Value): string => JSON.stringify([register, v]);
    for (const op of ops) {
        const v = mayStore.call(model, op.input);
        if (v === undefined) continue;
        const k = slot(registerOf.call(model, op.input), v);
        const list = storers.get(k);
        if (list === undefined) storers.set(k, [op]);
        else list.push(op);
    }
    const stores: { op: Op<I, O>; value: Value; register: string }[] = [];
    for (const op of ops) {
        if (op.output === UNKNOWN) continue;
        const value = overwrites.call(model, op.input, op.output as O);
        if (value !== undefined) stores.push({ op, value, register: registerOf.call(model, op.input) });
    }
    for (const r of ops) {
        if (r.output === UNKNOWN) continue;
        const register = registerOf.call(model, r.input);
        for (const a of observed.call(model, r.input, r.output as O)) {
            const candidates = storers.get(slot(register, a)) ?? [];
            let w: Op<I, O> | undefined;
            if (candidates.length === 0) {
                if (a !== initial) continue;
            } else {
                if (candidates.length !== 1) continue;
                w = candidates[0] as Op<I, O>;
                if (w === r || w.output === UNKNOWN || overwrites.call(model, w.input, w.output as O) !== a) continue;
            }
            for (const x of stores) {
                if (x.op === w || x.op === r || x.value === a || x.register !== register) continue;
                if ((w === undefined || x.op.call > w.ret) && x.op.ret < r.call) {
                    const what = w === undefined ? 'the initial value' : 'stored only by the first op';
                    const held = JSON.stringify(x.value);
                    return {
                        linearized: (w === undefined ? [x.op] : [w, x.op]) as Op<unknown, unknown>[],
                        // The touched register only (a map's other keys are not part of the proof).
                        state: register === '' ? held : `{${register}=${held}}`,
                        blocked: r as Op<unknown, unknown>,
                        concurrent: [],
                        reason: `the blocked op observed ${JSON.stringify(a)} (${what}), but the last op ` +
                            'above, which must precede it in real time, stored another value (no search needed)',
                    };
                }
            }
        }
    }
    return undefined;
}

/**
 * The same kind of proof for grow-only objects (sets, append lists): once an add of v takes
 * effect, v stays in the contents, and a completed add took effect before it returned. So a
 * completed read called after a completed add of v returned, whose contents lack v, cannot be
 * placed in any linearization (real time puts the add before it).
 */
function missingElement<S, I, O>(model: Model<S, I, O>, ops: readonly Op<I, O>[]): FailureReport | undefined {
    const { written, contents } = model;
    if (written === undefined || contents === undefined) return undefined;
    const adds: { op: Op<I, O>; value: Value }[] = [];
    for (const op of ops) {
        if (op.output === UNKNOWN) continue;
        const value = written.call(model, op.input);
        if (value !== undefined) adds.push({ op, value });
    }
    for (const r of ops) {
        if (r.output === UNKNOWN) continue;
        const seen = contents.call(model, r.input, r.output as O);
        if (seen === undefined) continue;
        const members = new Set(seen);
        for (const add of adds) {
            if (add.op.ret < r.call && !members.has(add.value)) {
                return {
                    linearized: [add.op] as Op<unknown, unknown>[],
                    state: `contains ${JSON.stringify(add.value)}`,
                    blocked: r as Op<unknown, unknown>,
                    concurrent: [],
                    reason: `the blocked op's contents lack ${JSON.stringify(add.value)}, added by the op above, ` +
                        'which returned before the blocked op began (no search needed)',
                };
            }
        }
    }
    return undefined;
}

const NIL = -1;

/**
 * The memo of (linearized set, state) pairs already explored. Bitsets live back to back in one
 * growing arena and a bucket holds entry numbers, so millions of entries cost little garbage.
 */
class Cache<S> {
    /** hash → first entry number; chains continue through `nextInChain`. */
    private readonly heads = new Map<number, number>();
    private nextInChain = new Int32Array(1024);
    private arena: Uint32Array;
    private readonly states: S[] = [];
    size = 0;

    constructor(private readonly model: Model<S, unknown, unknown>, private readonly words: number) {
        this.arena = new Uint32Array(Math.max(1, words) * 1024);
    }

    /** Adds (bits, state) unless present; returns whether it was added. */
    add(hash: number, bits: Uint32Array, state: S): boolean {
        const first = this.heads.get(hash);
        for (let e = first ?? -1; e !== -1; e = this.nextInChain[e] as number) {
            if (this.sameBits(e, bits) && this.model.equal(this.states[e] as S, state)) return false;
        }
        const e = this.size++;
        if (e >= this.nextInChain.length) {
            const chain = new Int32Array(this.nextInChain.length * 2);
            chain.set(this.nextInChain);
            this.nextInChain = chain;
            const arena = new Uint32Array(this.arena.length * 2);
            arena.set(this.arena);
            this.arena = arena;
        }
        this.arena.set(bits, e * this.words);
        this.nextInChain[e] = first ?? -1;
        this.states.push(state);
        this.heads.set(hash, e);
        return true;
    }

    private sameBits(e: number, bits: Uint32Array): boolean {
        const base = e * this.words;
        for (let i = 0; i < this.words; i++) if (this.arena[base + i] !== bits[i]) return false;
        return true;
    }
}


function checkPartition<S, I, O>(
    model: Model<S, I, O>,
    key: string,
    input: Op<I, O>[],
    options: CheckOptions,
    now: () => number,
): PartitionResult {
    const started = now();
    const deadline = started + (options.budgetMs ?? 10_000);
    const { ops, call, ret, dropped, unobserved } = prepare(model, input, options.patchUnknown !== false);
    const witness = options.proveOverwritten === false
        ? undefined
        : overwrittenObservation(model, input) ?? missingElement(model, input);
    if (witness !== undefined) {
        return {
            key, verdict: 'illegal', opCount: ops.length, droppedUnknown: dropped, elapsedMs: now() - started,
            cacheEntries: 0, failure: witness,
        };
    }
    const n = ops.length;
    const open = ops.map((op) => op.output === UNKNOWN);
    let remaining = open.reduce((count, isOpen) => count + (isOpen ? 0 : 1), 0);
    const result = (verdict: Verdict, cacheEntries: number, failure?: FailureReport): PartitionResult => ({
        key, verdict, opCount: n, droppedUnknown: dropped, elapsedMs: now() - started, cacheEntries,
        ...(failure !== undefined ? { failure } : {}),
    });
    if (remaining === 0) return result('ok', 0);

    // Entries 0..n-1 are calls, n..2n-1 returns; 2n is the head sentinel.
    const order = Array.from({ length: 2 * n }, (_, i) => i);
    const timeOf = (e: number): number => (e < n ? (call[e] as number) : (ret[e - n] as number));
    order.sort((a, b) => {
        const ta = timeOf(a);
        const tb = timeOf(b);
        if (ta !== tb) return ta < tb ? -1 : 1;
        return Number(a >= n) - Number(b >= n) || a - b;
    });
    const head = 2 * n;
    const next = new Int32Array(2 * n + 1).fill(NIL);
    const prev = new Int32Array(2 * n + 1).fill(NIL);
    let last = head;
    for (const e of order) {
        next[last] = e;
        prev[e] = last;
        last = e;
    }
    const lift = (e: number): void => {
        const r = e + n;
        next[prev[e] as number] = next[e] as number;
        if (next[e] !== NIL) prev[next[e] as number] = prev[e] as number;
        next[prev[r] as number] = next[r] as number;
        if (next[r] !== NIL) prev[next[r] as number] = prev[r] as number;
    };
    const unlift = (e: number): void => {
        const r = e + n;
        if (next[r] !== NIL) prev[next[r] as number] = r;
        next[prev[r] as number] = r;
        if (next[e] !== NIL) prev[next[e] as number] = e;
        next[prev[e] as number] = e;
    };

    // Zobrist values: a fixed xorshift stream, so runs are reproducible.
    const zobrist = new Int32Array(n);
    let z = 0x9e3779b9 | 0;
    for (let i = 0; i < n; i++) {
        z ^= z << 13;
        z ^= z >>> 17;
        z ^= z << 5;
        zobrist[i] = z;
    }
    // Open UNKNOWN ops with equal inputs are interchangeable once called (any output, no return),
    // so only the earliest-called one not yet linearized is tried: members of a class are
    // linearized in call order. This is what keeps non-unique unknown ops (counter adds) cheap.
    const classOf = new Int32Array(n).fill(-1);
    const rankInClass = new Int32Array(n);
    const classes = new Map<string, number>();
    const classSizes: number[] = [];
    for (const e of order) {
        if (e >= n || open[e] !== true || ret[e] !== Infinity) continue;
        const signature = JSON.stringify((ops[e] as Op<I, O>).input);
        let c = classes.get(signature);
        if (c === undefined) {
            c = classSizes.length;
            classes.set(signature, c);
            classSizes.push(0);
        }
        classOf[e] = c;
        rankInClass[e] = classSizes[c] as number;
        classSizes[c] = (classSizes[c] as number) + 1;
    }
    const classNext = new Int32Array(classSizes.length);
    const callRank = new Int32Array(n);
    order.filter((e) => e < n).forEach((e, rank) => (callRank[e] = rank));
    const bits = new Uint32Array(Math.ceil(n / 32));
    const cache = new Cache<S>(model as Model<S, unknown, unknown>, bits.length);
    const stackOp = new Int32Array(n);
    const stackState: S[] = new Array<S>(n);
    let depth = 0;
    let state = model.init();
    let zh = 0;
    let best: { ops: number[]; state: S; blocked: number } | undefined;
    let iterations = 0;
    let entry = next[head] as number;

    // Open UNKNOWN updates that may wait: placed right before a definite update, such an op could
    // as well be placed later. With commuting blind updates that is every open update; otherwise
    // it is a write of a unique value nobody observes (followed by a write it is overwritten
    // unseen, the same as taking effect at the very end, which an UNKNOWN op may always do).
    const mayWait = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
        const waits = model.updatesCommute === true || unobserved.has(ops[i] as Op<I, O>);
        if (open[i] === true && ret[i] === Infinity && waits) mayWait[i] = 1;
    }
    // Without commuting updates, an op W that may wait is useful only right before a definite pure
    // op P that is illegal now and legal after W: the rule below prunes every other follower of W
    // (a pure op legal without W, a definite update, another open update), and placing W does not
    // change which ops are available (W is open, so its return entry lies past every other one),
    // so a W that enables no such P in the current window leads only to pruned branches. Hence W
    // is tried only when it enables one; the illegal definite pure ops of the window are listed
    // once per configuration and W's check steps each from W's state. (A read can never be
    // enabled by an unobserved write, whose value no completed read returns; a failed CAS can be.)
    const definitePure = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
        const o = ops[i] as Op<I, O>;
        if (open[i] !== true && isPure(model, o.input, o.output as O)) definitePure[i] = 1;
    }
    let configuration = 0;
    let blockedFor = -1;
    const blockedPure: number[] = [];
    const waitingMayHelp = (w: number): boolean => {
        if (model.updatesCommute === true) return true;
        if (blockedFor !== configuration) {
            blockedFor = configuration;
            blockedPure.length = 0;
            for (let e = next[head] as number; e !== NIL && e < n; e = next[e] as number) {
                if (definitePure[e] !== 1) continue;
                const o = ops[e] as Op<I, O>;
                const interval = { call: call[e] as number, ret: ret[e] as number };
                if (step(model, state, o.input, o.output as O, interval) === undefined) blockedPure.push(e);
            }
        }
        if (blockedPure.length === 0) return false;
        const wop = ops[w] as Op<I, O>;
        const after = step(model, state, wop.input, UNKNOWN, { call: call[w] as number, ret: ret[w] as number });
        if (after === undefined) return false;
        for (const e of blockedPure) {
            const o = ops[e] as Op<I, O>;
            const interval = { call: call[e] as number, ret: ret[e] as number };
            if (step(model, after, o.input, o.output as O, interval) !== undefined) return true;
        }
        return false;
    };
    const forced = new Uint8Array(n);
    let backtracking = false;
    for (;;) {
        if ((++iterations & 1023) === 0 && now() > deadline) return result('unknown', cache.size);
        if (backtracking) {
            if (depth === 0) break;
            depth--;
            const undone = stackOp[depth] as number;
            state = stackState[depth] as S;
            configuration++;
            stackState[depth] = undefined as S;
            bits[undone >>> 5] = (bits[undone >>> 5] as number) & ~(1 << (undone & 31));
            zh ^= zobrist[undone] as number;
            unlift(undone);
            const undoneClass = classOf[undone] as number;
            if (undoneClass >= 0) classNext[undoneClass] = (classNext[undoneClass] as number) - 1;
            if (open[undone] !== true) remaining++;
            // Not placing a pure op where it was legal is never better than placing it: keep popping.
            backtracking = forced[depth] === 1;
            entry = next[undone] as number;
            continue;
        }
        if (entry === NIL) throw new Error('linearizability: walked off the entry list');
        if (entry >= n) {
            // A return entry: the op (entry - n) returned but is not linearized here.
            if (best === undefined || depth > best.ops.length) {
                best = { ops: Array.from(stackOp.subarray(0, depth)), state, blocked: entry - n };
            }
            backtracking = true;
            continue;
        }
        if (mayWait[entry] === 1 && !waitingMayHelp(entry)) {
            entry = next[entry] as number;
            continue;
        }
        const c = classOf[entry] as number;
        if (c >= 0 && classNext[c] !== rankInClass[entry]) {
            entry = next[entry] as number;
            continue;
        }
        const op = ops[entry] as Op<I, O>;
        const output = open[entry] === true ? UNKNOWN : (op.output as Exclude<O | Unknown | Failed, Failed>);
        const pure = isPure(model, op.input, output);
        // An op that may wait (above) is never placed right before a definite update, nor right
        // before a pure op that was legal without it (the pure op could go first). Before another
        // open update: with commuting updates only in call order; otherwise never (a write hides
        // the waiting write; a CAS then fails, a no-op that may as well happen at the end).
        if (depth > 0 && forced[depth - 1] === 0 && mayWait[stackOp[depth - 1] as number] === 1) {
            const top = stackOp[depth - 1] as number;
            const interval = { call: call[entry] as number, ret: ret[entry] as number };
            let prune: boolean;
            if (pure) prune = step(model, stackState[depth - 1] as S, op.input, output, interval) !== undefined;
            else if (open[entry] !== true) prune = true;
            else prune = model.updatesCommute !== true || (callRank[entry] as number) < (callRank[top] as number);
            if (prune) {
                entry = next[entry] as number;
                continue;
            }
        }
        const after = step(model, state, op.input, output, { call: call[entry] as number, ret: ret[entry] as number });
        if (after === undefined) {
            entry = next[entry] as number;
            continue;
        }
        // A pure op (one that never changes the object's contents) that is legal now is placed now:
        // every op that had to precede it is already placed (else the walk would have stopped at
        // that op's return), so any linearization placing it later can place it here instead.
        const word = entry >>> 5;
        const mask = 1 << (entry & 31);
        bits[word] = (bits[word] as number) | mask;
        const h2 = zh ^ (zobrist[entry] as number);
        if (!cache.add((h2 ^ Math.imul(model.hash(after), 0x9e3779b1)) >>> 0, bits, after)) {
            bits[word] = (bits[word] as number) & ~mask;
            if (pure) backtracking = true;
            else entry = next[entry] as number;
            continue;
        }
        stackOp[depth] = entry;
        stackState[depth] = state;
        forced[depth] = pure ? 1 : 0;
        depth++;
        state = after;
        configuration++;
        zh = h2;
        lift(entry);
        if (c >= 0) classNext[c] = (classNext[c] as number) + 1;
        if (open[entry] !== true && --remaining === 0) return result('ok', cache.size);
        entry = next[head] as number;
    }

    const found = best as { ops: number[]; state: S; blocked: number };
    const placed = new Set(found.ops);
    const blockedCall = call[found.blocked] as number;
    const blockedRet = ret[found.blocked] as number;
    const concurrent: Op<unknown, unknown>[] = [];
    for (let i = 0; i < n; i++) {
        if (i === found.blocked || placed.has(i)) continue;
        const overlaps = (call[i] as number) <= blockedRet && (ret[i] as number) >= blockedCall;
        if (overlaps) concurrent.push(ops[i] as Op<unknown, unknown>);
    }
    return result('illegal', cache.size, {
        linearized: found.ops.map((i) => ops[i] as Op<unknown, unknown>),
        state: model.describeState(found.state),
        blocked: ops[found.blocked] as Op<unknown, unknown>,
        concurrent,
    });
}

/** A readable report of every non-ok partition (empty string when the result is ok). */
export function describeResult<S, I, O>(model: Model<S, I, O>, result: CheckResult, maxLinearized = 20): string {
    const lines: string[] = [];
    const desc = (input: unknown): string => model.describeInput(input as I);
    for (const p of result.partitions) {
        if (p.verdict === 'ok') continue;
        lines.push(`partition ${JSON.stringify(p.key)}: ${p.verdict} (${p.opCount} ops, ` +
            `${p.elapsedMs.toFixed(1)} ms, ${p.cacheEntries} cache entries)`);
        if (p.failure === undefined) continue;
        const f = p.failure;
        const shown = f.linearized.slice(-maxLinearized);
        lines.push(`  longest linearization: ${f.linearized.length} ops` +
            (shown.length < f.linearized.length ? `, last ${shown.length}:` : ':'));
        for (const op of shown) lines.push(`    ${describeOp(op, desc)}`);
        lines.push(`  state after it: ${f.state}`);
        lines.push(`  could not place: ${describeOp(f.blocked, desc)}`);
        lines.push(`  concurrent with it (${f.concurrent.length}):`);
        for (const op of f.concurrent) lines.push(`    ${describeOp(op, desc)}`);
        if (f.reason !== undefined) lines.push(`  proof: ${f.reason}`);
    }
    return lines.join('\n');
}
