// One state field per owning object (STYLE.md §7.5.2): idle → opening → open → closing →
// closed, plus failed. Every transition goes through moveTo(), which asserts it is allowed,
// like dqlite's sm_move. A later close() joins the first one's promise.

import { assert } from './assert.js';
import { ClosedError } from './errors.js';

export type LifecycleState = 'idle' | 'opening' | 'open' | 'closing' | 'closed' | 'failed';

const ALLOWED: Record<LifecycleState, readonly LifecycleState[]> = {
    idle: ['opening', 'open', 'closing', 'closed', 'failed'],
    opening: ['open', 'closing', 'failed'],
    open: ['closing', 'failed'],
    closing: ['closed', 'failed'],
    failed: ['closing', 'closed'],
    closed: [],
};

export class Lifecycle {
    private current: LifecycleState = 'idle';
    private closePromise: Promise<void> | undefined;
    private failure: unknown;

    constructor(readonly name: string) {}

    get state(): LifecycleState {
        return this.current;
    }

    get isOpen(): boolean {
        return this.current === 'open';
    }

    /** True once close() began or the object failed: event handlers must drop late events. */
    get isStopping(): boolean {
        return this.current === 'closing' || this.current === 'closed' || this.current === 'failed';
    }

    get error(): unknown {
        return this.failure;
    }

    moveTo(next: LifecycleState): void {
        assert(ALLOWED[this.current].includes(next), `${this.name}: ${this.current} → ${next} not allowed`);
        this.current = next;
    }

    /** Records the first failure and moves to failed (no-op when already stopping). */
    fail(error: unknown): boolean {
        if (this.current === 'closed' || this.current === 'failed' || this.current === 'closing') return false;
        this.failure = error;
        this.current = 'failed';
        return true;
    }

    /** Throws ClosedError unless open (for public methods). */
    assertOpen(): void {
        if (this.current !== 'open') {
            throw new ClosedError(`${this.name} is ${this.current}`, { cause: this.failure });
        }
    }

    /**
     * Runs `teardown` exactly once, moving to closing then closed; later calls return the same
     * promise. The teardown must not throw for expected conditions.
     */
    close(teardown: () => Promise<void>): Promise<void> {
        if (this.closePromise !== undefined) return this.closePromise;
        if (this.current === 'closed') return (this.closePromise = Promise.resolve());
        this.moveTo('closing');
        this.closePromise = (async () => {
            try {
                await teardown();
            } finally {
                this.current = 'closed';
            }
        })();
        return this.closePromise;
    }
}
