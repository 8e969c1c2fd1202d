// Time is injected (STYLE.md §7.5.8): nothing outside this file calls setTimeout directly.
// Owners keep their timers in a TimerSet and cancel them all on close.

import { assert } from './assert.js';

export interface Timer {
    /** Cancels the timer; idempotent. A cancelled timer's callback never runs. */
    cancel(): void;
}

export interface Clock {
    /** Milliseconds on a monotonic scale (not wall time). */
    now(): number;
    /** Runs `fn` once after `delayMs`. Returns a handle whose cancel() is idempotent. */
    setTimer(delayMs: number, fn: () => void, options?: { unref?: boolean }): Timer;
}

/** The real clock: performance.now() and setTimeout. */
export class SystemClock implements Clock {
    now(): number {
        return performance.now();
    }

    setTimer(delayMs: number, fn: () => void, options?: { unref?: boolean }): Timer {
        assert(delayMs >= 0, 'negative delay');
        let done = false;
        const handle = setTimeout(() => {
            if (done) return;
            done = true;
            fn();
        }, delayMs);
        if (options?.unref === true) handle.unref();
        return {
            cancel(): void {
                if (done) return;
                done = true;
                clearTimeout(handle);
            },
        };
    }
}

export const systemClock: Clock = new SystemClock();

/** A clock for tests and simulation: time moves only when advance() is called. */
export class ManualClock implements Clock {
    private timeMs: number;
    private sequence = 0;
    private readonly pending = new Map<number, { atMs: number; fn: () => void }>();

    constructor(startMs = 0) {
        this.timeMs = startMs;
    }

    now(): number {
        return this.timeMs;
    }

    setTimer(delayMs: number, fn: () => void): Timer {
        assert(delayMs >= 0, 'negative delay');
        const id = this.sequence++;
        this.pending.set(id, { atMs: this.timeMs + delayMs, fn });
        return { cancel: () => void this.pending.delete(id) };
    }

    get pendingCount(): number {
        return this.pending.size;
    }

    /** Advances time by `ms`, firing due timers in order of due time, then creation. */
    advance(ms: number): void {
        assert(ms >= 0, 'cannot go back in time');
        const targetMs = this.timeMs + ms;
        for (;;) {
            let nextId = -1;
            let nextAt = Infinity;
            for (const [id, t] of this.pending) {
                if (t.atMs < nextAt || (t.atMs === nextAt && id < nextId)) {
                    nextAt = t.atMs;
                    nextId = id;
                }
            }
            if (nextId < 0 || nextAt > targetMs) break;
            const timer = this.pending.get(nextId);
            assert(timer !== undefined);
            this.pending.delete(nextId);
            this.timeMs = Math.max(this.timeMs, timer.atMs);
            timer.fn();
        }
        this.timeMs = targetMs;
    }
}

/**
 * The timers of one owner. close() cancels all of them and makes later setTimer calls
 * return already-cancelled timers, so nothing fires after the owner closed.
 */
export class TimerSet {
    private readonly timers = new Set<Timer>();
    private closed = false;

    constructor(private readonly clock: Clock, private readonly unref = false) {}

    /** `keepAlive` overrides an unref'd set for this timer: it keeps the process alive. */
    setTimer(delayMs: number, fn: () => void, keepAlive = false): Timer {
        if (this.closed) return { cancel: () => undefined };
        let timer: Timer | undefined;
        const wrapped = (): void => {
            if (timer !== undefined) this.timers.delete(timer);
            if (this.closed) return;
            fn();
        };
        timer = this.clock.setTimer(delayMs, wrapped, { unref: this.unref && !keepAlive });
        const owned: Timer = {
            cancel: () => {
                timer?.cancel();
                if (timer !== undefined) this.timers.delete(timer);
            },
        };
        this.timers.add(timer);
        return owned;
    }

    get size(): number {
        return this.timers.size;
    }

    close(): void {
        this.closed = true;
        for (const t of this.timers) t.cancel();
        this.timers.clear();
    }
}
