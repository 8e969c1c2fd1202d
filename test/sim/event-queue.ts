// The simulator's agenda: a binary min-heap of events ordered by (time, sequence number). The
// sequence number breaks ties in insertion order, so two runs of one seed pop events in exactly
// the same order.

import { assert } from '../../src/lib/assert.js';

export interface SimEvent {
    readonly time: number;
    readonly sequence: number;
    /** A short tag for traces; also mixed into the trace hash. */
    readonly kind: number;
    /** The node the event concerns (0 = none); mixed into the trace hash. */
    readonly node: number;
    readonly run: () => void;
}

export class EventQueue {
    private readonly heap: SimEvent[] = [];
    private sequenceNext = 0;

    get size(): number {
        return this.heap.length;
    }

    push(time: number, kind: number, node: number, run: () => void): void {
        assert(Number.isFinite(time), 'event time must be finite');
        const event: SimEvent = { time, sequence: this.sequenceNext++, kind, node, run };
        const heap = this.heap;
        heap.push(event);
        let i = heap.length - 1;
        while (i > 0) {
            const parent = (i - 1) >> 1;
            const p = heap[parent] as SimEvent;
            if (!before(event, p)) break;
            heap[i] = p;
            i = parent;
        }
        heap[i] = event;
    }

    pop(): SimEvent | undefined {
        const heap = this.heap;
        const top = heap[0];
        if (top === undefined) return undefined;
        const last = heap.pop() as SimEvent;
        if (heap.length === 0) return top;
        let i = 0;
        const n = heap.length;
        for (;;) {
            const left = 2 * i + 1;
            if (left >= n) break;
            const right = left + 1;
            let child = left;
            if (right < n && before(heap[right] as SimEvent, heap[left] as SimEvent)) child = right;
            if (!before(heap[child] as SimEvent, last)) break;
            heap[i] = heap[child] as SimEvent;
            i = child;
        }
        heap[i] = last;
        return top;
    }

    peekTime(): number {
        const top = this.heap[0];
        return top === undefined ? Infinity : top.time;
    }
}

function before(a: SimEvent, b: SimEvent): boolean {
    return a.time < b.time || (a.time === b.time && a.sequence < b.sequence);
}
