// Records what clients saw, as a history for the checkers (TESTING.md §3.4): the invocation time
// is taken with process.hrtime.bigint() just before the request starts and the completion time
// just after its promise settles. A rejection is FAILED only when the caller's predicate says the
// system guarantees the op did not happen (e.g. refused before reaching a leader); any other
// error (timeout, lost connection, indeterminate commit) is UNKNOWN. As in Knossos, a worker
// whose op became UNKNOWN continues under a new client id, because its old process may still
// have an op in flight.

import { FAILED, UNKNOWN, type Op } from './checker/history.js';

export interface RecorderOptions {
    /** Errors that prove the op had no effect; everything else is UNKNOWN. Default: none. */
    readonly definiteFailure?: (error: unknown) => boolean;
    /** The monotonic clock; defaults to process.hrtime.bigint. */
    readonly now?: () => bigint;
}

export class HistoryRecorder<I, O> {
    private readonly ops: Op<I, O>[] = [];
    private readonly clientOf = new Map<number, number>();
    private nextId = 0;
    private nextClient = 0;
    private readonly now: () => bigint;
    private readonly definiteFailure: (error: unknown) => boolean;
    /** Ops invoked and not yet settled. */
    private inFlight = 0;

    constructor(options: RecorderOptions = {}) {
        this.now = options.now ?? (() => process.hrtime.bigint());
        this.definiteFailure = options.definiteFailure ?? (() => false);
    }

    /** The client id a worker currently records under. */
    clientFor(worker: number): number {
        let client = this.clientOf.get(worker);
        if (client === undefined) this.clientOf.set(worker, (client = this.nextClient++));
        return client;
    }

    /**
     * Runs `run`, records the op and returns its outcome; never throws for the op's own errors
     * (they are recorded and returned as `{ error }`).
     */
    async record(
        worker: number, key: string, input: I, run: () => Promise<O>,
    ): Promise<{ value?: O; error?: unknown }> {
        const client = this.clientFor(worker);
        const id = this.nextId++;
        this.inFlight++;
        const call = this.now();
        try {
            const value = await run();
            const ret = this.now();
            this.ops.push({ id, client, key, input, output: value, call, ret });
            return { value };
        } catch (error) {
            const ret = this.now();
            const failed = this.definiteFailure(error);
            this.ops.push({ id, client, key, input, output: failed ? FAILED : UNKNOWN, call, ret });
            if (!failed) this.clientOf.set(worker, this.nextClient++);
            return { error };
        } finally {
            this.inFlight--;
        }
    }

    /** Ops recorded so far, in completion order. */
    history(): readonly Op<I, O>[] {
        return this.ops;
    }

    get pendingCount(): number {
        return this.inFlight;
    }
}
