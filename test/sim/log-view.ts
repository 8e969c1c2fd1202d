// A compact view of a raft log for the checkers: per index, the entry's term and the rolling
// prefix hash of the log up to it (TESTING.md §8(a): "per-node rolling prefix hash"). Two logs
// agree up to an index exactly when their prefix hashes there are equal. The view may start
// after a snapshot (baseIndex); optionally it keeps the entries themselves (the simulated disk).

import { assert } from '../../src/lib/assert.js';
import type { Entry } from '../../src/raft/types.js';
import { chainHash, entryHash } from './hash.js';

export class LogView {
    baseIndex = 0;
    baseTerm = 0;
    basePrefix = 0;
    private terms: number[] = [];
    private prefixes: number[] = [];
    private readonly stored: Entry[] | undefined;

    constructor(options: { keepEntries: boolean }) {
        this.stored = options.keepEntries ? [] : undefined;
    }

    get lastIndex(): number {
        return this.baseIndex + this.terms.length;
    }

    get lastTerm(): number {
        return this.terms.length === 0 ? this.baseTerm : (this.terms[this.terms.length - 1] as number);
    }

    get lastPrefix(): number {
        return this.terms.length === 0 ? this.basePrefix : (this.prefixes[this.prefixes.length - 1] as number);
    }

    /** True if the view knows the entry (or the snapshot point) at `index`. */
    has(index: number): boolean {
        return index >= this.baseIndex && index <= this.lastIndex;
    }

    termAt(index: number): number | undefined {
        if (index === this.baseIndex) return this.baseTerm;
        if (index < this.baseIndex || index > this.lastIndex) return undefined;
        return this.terms[index - this.baseIndex - 1];
    }

    prefixAt(index: number): number | undefined {
        if (index === this.baseIndex) return this.basePrefix;
        if (index < this.baseIndex || index > this.lastIndex) return undefined;
        return this.prefixes[index - this.baseIndex - 1];
    }

    /** Entries with index in [lo, hi] (only for views that keep entries). */
    entries(lo: number, hi: number): Entry[] {
        assert(this.stored !== undefined, 'this view keeps no entries');
        const from = Math.max(lo, this.baseIndex + 1) - this.baseIndex - 1;
        const to = Math.min(hi, this.lastIndex) - this.baseIndex;
        return from < to ? this.stored.slice(from, to) : [];
    }

    /** Starts over at a snapshot point. */
    reset(index: number, term: number, prefix: number): void {
        this.baseIndex = index;
        this.baseTerm = term;
        this.basePrefix = prefix;
        this.terms = [];
        this.prefixes = [];
        if (this.stored !== undefined) this.stored.length = 0;
    }

    /** Drops every entry with index ≥ `index`. */
    truncateFrom(index: number): void {
        assert(index > this.baseIndex, `truncate at ${index} inside the base ${this.baseIndex}`);
        if (index > this.lastIndex) return;
        const keep = index - this.baseIndex - 1;
        this.terms.length = keep;
        this.prefixes.length = keep;
        if (this.stored !== undefined) this.stored.length = keep;
    }

    /** Drops entries up to and including `index`, which becomes the new base. */
    compactTo(index: number): void {
        if (index <= this.baseIndex) return;
        assert(index <= this.lastIndex, `compact to ${index} beyond the last index ${this.lastIndex}`);
        const drop = index - this.baseIndex;
        this.baseTerm = this.terms[drop - 1] as number;
        this.basePrefix = this.prefixes[drop - 1] as number;
        this.baseIndex = index;
        this.terms = this.terms.slice(drop);
        this.prefixes = this.prefixes.slice(drop);
        if (this.stored !== undefined) this.stored.splice(0, drop);
    }

    /** Appends the next entry; returns its prefix hash. The caller checks contiguity first. */
    append(entry: Entry): number {
        assert(entry.index === this.lastIndex + 1, `append ${entry.index} after ${this.lastIndex}`);
        const prefix = chainHash(this.lastPrefix, entryHash(entry.index, entry.term, entry.type, entry.data));
        this.terms.push(entry.term);
        this.prefixes.push(prefix);
        if (this.stored !== undefined) this.stored.push(entry);
        return prefix;
    }

    copyFrom(other: LogView, fromIndex: number): void {
        const start = Math.max(fromIndex, other.baseIndex);
        this.reset(start, other.termAt(start) as number, other.prefixAt(start) as number);
        for (let i = start + 1; i <= other.lastIndex; i++) {
            this.terms.push(other.terms[i - other.baseIndex - 1] as number);
            this.prefixes.push(other.prefixes[i - other.baseIndex - 1] as number);
            if (this.stored !== undefined && other.stored !== undefined) {
                this.stored.push(other.stored[i - other.baseIndex - 1] as Entry);
            }
        }
    }
}
