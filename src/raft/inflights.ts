// The window of AppendEntries messages in flight to one follower in the replicate state
// (etcd's tracker.Inflights): a bounded FIFO of the last index each message carried. A
// response acknowledging index i frees every message whose last index is <= i.

import { assert } from '../lib/assert.js';
import type { LogIndex } from './types.js';

export class Inflights {
    private readonly capacity: number;
    /** Ring buffer of last indexes, oldest first starting at `start`. */
    private readonly buffer: LogIndex[];
    private start = 0;
    private size = 0;

    constructor(capacity: number) {
        assert(Number.isInteger(capacity) && capacity > 0, 'inflight capacity must be positive');
        this.capacity = capacity;
        this.buffer = new Array<LogIndex>(capacity).fill(0);
    }

    get count(): number {
        return this.size;
    }

    isFull(): boolean {
        return this.size === this.capacity;
    }

    /** Records a message whose last entry is `last`; indexes must increase. */
    add(last: LogIndex): void {
        assert(!this.isFull(), 'inflights overflow');
        if (this.size > 0) {
            const newest = this.buffer[(this.start + this.size - 1) % this.capacity] as LogIndex;
            assert(last > newest, `inflight index ${last} not above ${newest}`);
        }
        this.buffer[(this.start + this.size) % this.capacity] = last;
        this.size++;
    }

    /** Frees every message whose last index is <= `index`. */
    freeLE(index: LogIndex): void {
        while (this.size > 0 && (this.buffer[this.start] as LogIndex) <= index) {
            this.start = (this.start + 1) % this.capacity;
            this.size--;
        }
    }

    /** Frees the oldest message (a heartbeat response proves the link works again). */
    freeFirst(): void {
        if (this.size === 0) return;
        this.start = (this.start + 1) % this.capacity;
        this.size--;
    }

    reset(): void {
        this.start = 0;
        this.size = 0;
    }
}
