// Loading log segments: parse every segment file, tell a torn tail (a write that never became
// durable, safe to drop) from corruption of synced data (fail-stop), and replay the batches into
// the in-memory index. Pure except for the reads done by the caller.
//
// The rules (docs/disk-format.md §Load):
//  - Segments replay in the order of the sequence number in their header.
//  - A closed segment must parse completely: any bad batch, trailing byte or a name that does
//    not match its content is corruption (it was fsynced before it was renamed).
//  - In an open segment, a bad batch is a torn tail only if (a) its damage is not exactly one
//    flipped bit, (b) no valid batch header follows it in the file, and (c) no later segment
//    holds a batch (a batch is written only after the previous one was synced). Otherwise it
//    is corruption.
//  - Replay: a batch with firstIndex ≤ the last index replaces everything from firstIndex on.
//    Entries at or below the snapshot index are dropped. What remains must be contiguous.

import { StorageError } from '../lib/errors.js';
import type { EntryType } from '../raft/types.js';
import type { EntryLocation } from './format.js';
import { SEGMENT_HEADER_BYTES, decodeSegmentHeader, findValidBatchAfter, parseBatch } from './format.js';

const CLOSED_RE = /^(\d{16})-(\d{16})$/;
const OPEN_RE = /^open-(\d+)$/;

function pad16(n: number): string {
    return String(n).padStart(16, '0');
}

export function closedSegmentName(first: number, last: number): string {
    return `${pad16(first)}-${pad16(last)}`;
}

export function openSegmentName(seq: number): string {
    return `open-${seq}`;
}

export type SegmentFileName =
    | { readonly kind: 'open'; readonly seq: number }
    | { readonly kind: 'closed'; readonly first: number; readonly last: number };

export function parseSegmentName(name: string): SegmentFileName | undefined {
    const o = OPEN_RE.exec(name);
    if (o !== null) return { kind: 'open', seq: Number(o[1]) };
    const c = CLOSED_RE.exec(name);
    if (c !== null) return { kind: 'closed', first: Number(c[1]), last: Number(c[2]) };
    return undefined;
}

/** A segment file known to the store. Mutable: the store updates it as it writes. */
export class Segment {
    /** Smallest batch firstIndex, or 0 when the segment holds no batch yet. */
    firstIndex = 0;
    /** Largest index a batch reached (firstIndex + count − 1); first − 1 for a lone marker. */
    lastIndex = 0;
    batches = 0;
    /** Bytes in use (header + batches); where the next batch goes in an open segment. */
    endOffset = SEGMENT_HEADER_BYTES;

    constructor(readonly seq: number, public name: string, public isOpen: boolean) {}

    addBatch(firstIndex: number, count: number, bytes: number): void {
        const last = firstIndex + count - 1;
        if (this.batches === 0) {
            this.firstIndex = firstIndex;
            this.lastIndex = last;
        } else {
            this.firstIndex = Math.min(this.firstIndex, firstIndex);
            this.lastIndex = Math.max(this.lastIndex, last);
        }
        this.batches += 1;
        this.endOffset += bytes;
    }

    closedName(): string {
        return closedSegmentName(this.firstIndex, this.lastIndex);
    }
}

/** Where an entry lives: enough to read and verify its whole batch again. */
export interface Loc {
    readonly segment: Segment;
    readonly batchOffset: number;
    readonly batchBytes: number;
    readonly payloadOffset: number;
    readonly length: number;
    readonly term: number;
    readonly type: EntryType;
}

export interface ParsedBatch {
    readonly offset: number;
    readonly firstIndex: number;
    readonly bytes: number;
    readonly entries: readonly EntryLocation[];
}

export interface ParsedSegment {
    readonly name: string;
    readonly segment: Segment;
    readonly data: Uint8Array;
    readonly batches: readonly ParsedBatch[];
    /** Offset of the torn tail, when the segment ended in one. */
    readonly tornAt: number | undefined;
    /** An open segment whose header was never written (a preparation cut short). */
    readonly unwritten: boolean;
}

function corrupt(name: string, what: string): StorageError {
    return new StorageError(`segment ${name}: ${what}`, 'ERR_STORAGE_CORRUPT');
}

/** Parses one segment file. Throws ERR_STORAGE_CORRUPT for damage a crash cannot explain. */
export function parseSegment(name: string, data: Uint8Array): ParsedSegment {
    const kind = parseSegmentName(name);
    if (kind === undefined) throw corrupt(name, 'bad name');
    const header = decodeSegmentHeader(data);
    if (header.kind === 'corrupt') throw corrupt(name, header.reason);
    if (header.kind === 'unwritten') {
        // Preparing an open segment writes its header and zeros, then syncs, before any batch
        // goes in; an unwritten header with batches behind it is damage.
        if (kind.kind === 'closed' || findValidBatchAfter(data, SEGMENT_HEADER_BYTES, data.length)) {
            throw corrupt(name, 'missing header');
        }
        const seq = kind.kind === 'open' ? kind.seq : 0;
        return { name, segment: new Segment(seq, name, true), data, batches: [], tornAt: undefined, unwritten: true };
    }
    if (kind.kind === 'open' && kind.seq !== header.seq) throw corrupt(name, 'sequence number does not match name');
    const segment = new Segment(header.seq, name, kind.kind === 'open');
    const batches: ParsedBatch[] = [];
    let pos = SEGMENT_HEADER_BYTES;
    let tornAt: number | undefined;
    for (;;) {
        const r = parseBatch(data, pos, data.length);
        if (r.kind === 'ok') {
            batches.push({ offset: pos, firstIndex: r.firstIndex, bytes: r.bytes, entries: r.entries });
            segment.addBatch(r.firstIndex, r.entries.length, r.bytes);
            pos += r.bytes;
            if (pos === data.length) break;
            continue;
        }
        if (kind.kind === 'closed') throw corrupt(name, r.kind === 'end' ? 'zeros inside a closed segment' : r.reason);
        if (r.kind === 'bad' && r.bitFlip) throw corrupt(name, `${r.reason} (flipped bit)`);
        if (findValidBatchAfter(data, pos + 8, data.length)) {
            throw corrupt(name, `${r.kind === 'bad' ? r.reason : 'zero header'} before a valid batch`);
        }
        if (r.kind === 'bad') tornAt = pos;
        break;
    }
    if (kind.kind === 'closed') {
        if (batches.length === 0) throw corrupt(name, 'closed segment without batches');
        if (segment.firstIndex !== kind.first || segment.lastIndex !== kind.last) {
            throw corrupt(name, `holds ${segment.closedName()}`);
        }
    }
    return { name, segment, data, batches, tornAt, unwritten: false };
}

export interface ReplayResult {
    /** Locations of entries floor+1 .. lastIndex. */
    readonly locs: Loc[];
    readonly lastIndex: number;
    /** Seq of the segment holding the last batch, or undefined when there is none. */
    readonly lastBatchSeq: number | undefined;
}

/**
 * Replays parsed segments (any order; sorted here by seq) above `floor` (the snapshot index).
 * Checks the torn-tail rule across segments and the contiguity of the result.
 */
export function replaySegments(parsed: ParsedSegment[], floor: number): ReplayResult {
    const sorted = parsed.filter((p) => !p.unwritten).sort((a, b) => a.segment.seq - b.segment.seq);
    for (let i = 1; i < sorted.length; i++) {
        if ((sorted[i] as ParsedSegment).segment.seq === (sorted[i - 1] as ParsedSegment).segment.seq) {
            throw corrupt((sorted[i] as ParsedSegment).name, 'duplicate sequence number');
        }
    }
    let lastWithData = -1;
    sorted.forEach((p, i) => {
        if (p.batches.length > 0) lastWithData = i;
    });
    sorted.forEach((p, i) => {
        if (p.tornAt !== undefined && i < lastWithData) {
            throw corrupt(p.name, 'damaged batch followed by later segments');
        }
    });
    const locs: (Loc | undefined)[] = [];
    let last = 0;
    const base = floor + 1;
    for (const p of sorted) {
        for (const b of p.batches) {
            // A batch may start past last + 1 (a gap): acceptable only if later batches fill
            // it or it falls below the floor, which the final check decides.
            b.entries.forEach((e, k) => {
                const index = b.firstIndex + k;
                if (index < base) return;
                locs[index - base] = {
                    segment: p.segment, batchOffset: b.offset, batchBytes: b.bytes,
                    payloadOffset: e.payloadOffset, length: e.length, term: e.term, type: e.type,
                };
            });
            last = b.firstIndex + b.entries.length - 1;
            locs.length = Math.max(0, last - floor);
        }
    }
    last = Math.max(last, floor);
    for (let i = 0; i < locs.length; i++) {
        if (locs[i] === undefined) {
            throw new StorageError(`log has a gap at index ${base + i}`, 'ERR_STORAGE_CORRUPT');
        }
    }
    const lastBatchSeq = lastWithData >= 0 ? (sorted[lastWithData] as ParsedSegment).segment.seq : undefined;
    return { locs: locs as Loc[], lastIndex: last, lastBatchSeq };
}
