// Deadlines and cancellation for one call (STYLE.md §6, §7.5.9). Every public async method runs
// inside a CallScope: one AbortSignal that fires with a TimeoutError when the call's deadline
// passes, or with an AbortError (cause: the caller's signal.reason) when the caller aborts.
// Internal code only ever sees those two coded errors as `signal.reason`. Timers come from the
// owner's TimerSet (unref'd, except the deadline of a call in progress, which keeps the process
// alive until the call settles); dispose() removes the listener and cancels the timer.

import { assert } from '../lib/assert.js';
import type { TimerSet } from '../lib/clock.js';
import { AbortError, ClosedError, TimeoutError } from '../lib/errors.js';

export interface CallOptions {
    /** Cancels the call; it then rejects with AbortError whose cause is `signal.reason`. */
    readonly signal?: AbortSignal;
    /** The call's deadline; it then rejects with TimeoutError. Defaults to the client's timeoutMs. */
    readonly timeoutMs?: number;
}

export class CallScope {
    readonly signal: AbortSignal;
    private readonly controller = new AbortController();
    private readonly userSignal: AbortSignal | undefined;
    private readonly cancelTimer: () => void;

    constructor(timers: TimerSet, timeoutMs: number, userSignal?: AbortSignal) {
        assert(Number.isFinite(timeoutMs) && timeoutMs > 0, `bad timeout ${timeoutMs}`);
        this.signal = this.controller.signal;
        this.userSignal = userSignal;
        if (userSignal?.aborted === true) {
            this.controller.abort(new AbortError('aborted', { cause: userSignal.reason }));
        } else {
            userSignal?.addEventListener('abort', this.onUserAbort, { once: true });
        }
        // Ref'd, unlike the owner's other timers: a call in progress keeps the process alive until
        // it settles (an idle client does not). With only unref'd timers, a call waiting between
        // two dial attempts let the process exit with code 0 and the call never settled.
        const timer = timers.setTimer(timeoutMs, () => {
            this.controller.abort(new TimeoutError(`timed out after ${timeoutMs} ms`));
        }, true);
        this.cancelTimer = () => timer.cancel();
    }

    private readonly onUserAbort = (): void => {
        this.controller.abort(new AbortError('aborted', { cause: this.userSignal?.reason }));
    };

    /** Fires the scope with `reason` (the owner closing); no-op if it already fired. */
    abort(reason: Error): void {
        if (!this.signal.aborted) this.controller.abort(reason);
    }

    /** Throws the scope's AbortError or TimeoutError once it fired. */
    check(): void {
        if (this.signal.aborted) throw this.signal.reason;
    }

    dispose(): void {
        this.cancelTimer();
        this.userSignal?.removeEventListener('abort', this.onUserAbort);
    }
}

/**
 * The scopes and timers of one owner (a Database, an AdminClient). close() cancels every timer
 * and fires every live scope with the given error, so nothing waits past the owner's close.
 */
export class ScopeOwner {
    readonly timers: TimerSet;
    private readonly scopes = new Set<CallScope>();
    private closedWith: Error | undefined;

    /**
     * With `captureCallSites`, each call records the stack where it was made and appends it to
     * the stack of its rejection (errors arrive from socket callbacks, whose stacks show only
     * library frames: postgres.js's trick). It costs one Error per call, so it is a debug option.
     */
    constructor(
        timers: TimerSet, private readonly defaultTimeoutMs: number, private readonly captureCallSites = false,
    ) {
        this.timers = timers;
    }

    /** Runs `fn` inside a fresh scope and disposes of it afterwards. */
    async run<T>(options: CallOptions | undefined, fn: (scope: CallScope) => Promise<T>): Promise<T> {
        if (this.closedWith !== undefined) throw new ClosedError(this.closedWith.message, { cause: this.closedWith });
        const site = this.captureCallSites ? new Error('call site') : undefined;
        const scope = new CallScope(this.timers, options?.timeoutMs ?? this.defaultTimeoutMs, options?.signal);
        this.scopes.add(scope);
        try {
            scope.check();
            return await fn(scope);
        } catch (error) {
            if (site !== undefined && error instanceof Error && site.stack !== undefined) {
                const frames = site.stack.split('\n').slice(1).join('\n');
                error.stack = `${error.stack ?? String(error)}\n    --- called from ---\n${frames}`;
            }
            throw error;
        } finally {
            this.scopes.delete(scope);
            scope.dispose();
        }
    }

    close(error: Error): void {
        if (this.closedWith !== undefined) return;
        this.closedWith = error;
        for (const scope of this.scopes) scope.abort(error);
        this.timers.close();
    }
}

/** Waits `delayMs`, or rejects with the signal's reason when it fires first. */
export function sleep(timers: TimerSet, delayMs: number, signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
        if (signal.aborted) {
            reject(signal.reason);
            return;
        }
        const onAbort = (): void => {
            timer.cancel();
            reject(signal.reason);
        };
        const timer = timers.setTimer(delayMs, () => {
            signal.removeEventListener('abort', onAbort);
            resolve();
        });
        signal.addEventListener('abort', onAbort, { once: true });
    });
}
