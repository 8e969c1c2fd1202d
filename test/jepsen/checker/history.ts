// The shape of a recorded history (TESTING.md §3.4): one record per client operation with its
// invocation and completion times on a monotonic clock (process.hrtime.bigint(), nanoseconds).
// An operation's output is either what the client saw, UNKNOWN (timed out, connection lost, or
// an indeterminate error: it may or may not have taken effect, possibly after its return), or
// FAILED (the system guarantees it did not take effect; the checkers drop it).

/** Output of an operation whose effect is unknown: it may have happened, at any time after its call. */
export const UNKNOWN: unique symbol = Symbol('unknown');
export type Unknown = typeof UNKNOWN;

/** Output of an operation that definitely did not take effect. */
export const FAILED: unique symbol = Symbol('failed');
export type Failed = typeof FAILED;

export interface Op<I, O> {
    /** Unique within the history. */
    readonly id: number;
    /** The client (process) that issued it; a client whose op became UNKNOWN should get a new id. */
    readonly client: number;
    /** Partition key: ops on different keys are independent objects and checked separately. */
    readonly key: string;
    readonly input: I;
    readonly output: O | Unknown | Failed;
    /** Invocation time, taken before the request was sent. */
    readonly call: bigint;
    /** Completion time, taken after the response arrived; ignored (treated as +∞) when UNKNOWN. */
    readonly ret: bigint;
}

export function isUnknown<O>(output: O | Unknown | Failed): output is Unknown {
    return output === UNKNOWN;
}

export function isFailed<O>(output: O | Unknown | Failed): output is Failed {
    return output === FAILED;
}

export function describeValue(value: unknown): string {
    if (value === UNKNOWN) return '?';
    if (value === FAILED) return 'fail';
    if (value === undefined) return 'ok';
    if (typeof value === 'bigint') return `${value}n`;
    return JSON.stringify(value) ?? String(value);
}

/** One compact line per op, e.g. `#12 c3 k=x write(7) -> ok [100, 250]`. */
export function describeOp(op: Op<unknown, unknown>, describeInput?: (input: unknown) => string): string {
    const input = describeInput !== undefined ? describeInput(op.input) : describeValue(op.input);
    const ret = op.output === UNKNOWN ? '∞' : String(op.ret);
    return `#${op.id} c${op.client} k=${op.key} ${input} -> ${describeValue(op.output)} [${op.call}, ${ret}]`;
}

/** Checks the invariants every recorder must keep; returns the problems found (empty when fine). */
export function validateHistory(ops: readonly Op<unknown, unknown>[]): string[] {
    const problems: string[] = [];
    const ids = new Set<number>();
    for (const op of ops) {
        if (ids.has(op.id)) problems.push(`duplicate op id ${op.id}`);
        ids.add(op.id);
        if (op.output !== UNKNOWN && op.ret < op.call) problems.push(`op ${op.id} returns before its call`);
    }
    return problems;
}
