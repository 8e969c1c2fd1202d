// The on-disk encodings of the raft log (docs/disk-format.md is the byte-by-byte description;
// keep the two in step). Pure functions: bytes in, bytes or parsed values out. All integers are
// little-endian; every structure is a multiple of 8 bytes; every byte that is data is covered by
// a CRC-32C (src/lib/crc32c.ts).

import { assert } from '../lib/assert.js';
import { ByteReader, ByteWriter, pad8 } from '../lib/bytes.js';
import { crc32c } from '../lib/crc32c.js';
import type { Configuration, Entry, EntryType, HardState, Role, ServerInfo, SnapshotMeta } from '../raft/types.js';

export const FORMAT_VERSION = 1;

const SEGMENT_MAGIC = Buffer.from('TQLITE-S', 'latin1');
const METADATA_MAGIC = Buffer.from('TQLITE-M', 'latin1');
export const SNAPSHOT_MAGIC = Buffer.from('TQLITE-P', 'latin1');

export const SEGMENT_HEADER_BYTES = 32;
export const BATCH_HEADER_BYTES = 32;
export const DESCRIPTOR_BYTES = 16;
export const METADATA_BYTES = 48;
export const SNAPSHOT_HEADER_BYTES = 32;
export const SNAPSHOT_FRAME_HEADER_BYTES = 8;
export const SNAPSHOT_END_BYTES = 24;
/** Largest snapshot frame (one chunk); larger chunks are split by the writer. */
export const SNAPSHOT_FRAME_BYTES_MAX = 16 * 1024 * 1024;
/** Largest entry payload accepted (a sanity bound on what a header may claim). */
export const ENTRY_BYTES_MAX = 0x7fff_fff0;

function buf(data: Uint8Array): Buffer {
    return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function isAllZero(data: Uint8Array, start: number, end: number): boolean {
    for (let i = start; i < end; i++) if (data[i] !== 0) return false;
    return true;
}

// ---- single-bit-flip classification -----------------------------------------------------

const TABLE = (() => {
    const table = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
        let c = n;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
        table[n] = c >>> 0;
    }
    return table;
})();

/**
 * Whether a CRC mismatch over data[start, end) is explained by exactly one flipped bit, either
 * in the data or in the stored checksum. CRC-32C is affine in the data, so for equal lengths
 * crc(a) ^ crc(b) depends only on a ^ b; for a single flipped bit that syndrome is unique per
 * position (messages up to 2^31 bits), and we compare it with every position's. This tells a
 * flipped bit in synced data (corruption: fail-stop) from a torn write (whole sectors missing),
 * which the open segment's tail may legitimately have. Cost: 8 table steps per byte, paid only
 * when a checksum already failed.
 */
export function isSingleBitFlip(data: Uint8Array, start: number, end: number, storedCrc: number): boolean {
    const syndrome = (crc32c(data, 0, start, end) ^ storedCrc) >>> 0;
    if (syndrome === 0) return false;
    if ((syndrome & (syndrome - 1)) === 0) return true;
    const regs = new Uint32Array(8);
    for (let j = 0; j < 8; j++) regs[j] = TABLE[1 << j] as number;
    for (let pos = end - 1; pos >= start; pos--) {
        for (let j = 0; j < 8; j++) {
            const r = regs[j] as number;
            if (r === syndrome) return true;
            regs[j] = ((TABLE[r & 0xff] as number) ^ (r >>> 8)) >>> 0;
        }
    }
    return false;
}

// ---- segment header -----------------------------------------------------------------------

export function encodeSegmentHeader(seq: number): Uint8Array {
    const w = new ByteWriter(SEGMENT_HEADER_BYTES);
    w.bytes(SEGMENT_MAGIC).u32(FORMAT_VERSION).u32(0).u64(seq).u32(0);
    const bytes = Buffer.alloc(SEGMENT_HEADER_BYTES);
    bytes.set(w.finish());
    bytes.writeUInt32LE(crc32c(bytes, 0, 0, 28), 28);
    return bytes;
}

export type SegmentHeader =
    | { readonly kind: 'ok'; readonly seq: number }
    /** Never written: the file is shorter than a header or the header is all zeros. */
    | { readonly kind: 'unwritten' }
    | { readonly kind: 'corrupt'; readonly reason: string };

export function decodeSegmentHeader(data: Uint8Array): SegmentHeader {
    if (data.length < SEGMENT_HEADER_BYTES || isAllZero(data, 0, SEGMENT_HEADER_BYTES)) return { kind: 'unwritten' };
    const b = buf(data);
    if (b.readUInt32LE(28) !== crc32c(b, 0, 0, 28)) return { kind: 'corrupt', reason: 'segment header checksum' };
    if (!b.subarray(0, 8).equals(SEGMENT_MAGIC)) return { kind: 'corrupt', reason: 'segment magic' };
    if (b.readUInt32LE(8) !== FORMAT_VERSION) return { kind: 'corrupt', reason: 'segment format version' };
    const seq = new ByteReader(b, 16, 24).u64Number();
    return { kind: 'ok', seq };
}

// ---- batches --------------------------------------------------------------------------------

/** Bytes a batch of these entries occupies. */
export function batchBytes(entries: readonly Entry[]): number {
    let n = BATCH_HEADER_BYTES + entries.length * DESCRIPTOR_BYTES;
    for (const e of entries) n += pad8(e.data.length);
    return n;
}

/**
 * One batch: entries firstIndex.. (possibly none: a truncation marker). A batch whose
 * firstIndex is at or below the log's last index replaces everything from firstIndex on.
 */
export function encodeBatch(firstIndex: number, entries: readonly Entry[]): Uint8Array {
    assert(Number.isSafeInteger(firstIndex) && firstIndex >= 1, 'bad batch firstIndex');
    const total = batchBytes(entries);
    const out = Buffer.alloc(total);
    let d = BATCH_HEADER_BYTES;
    entries.forEach((e, i) => {
        assert(e.index === firstIndex + i, 'batch entries must be contiguous');
        assert(e.data.length <= ENTRY_BYTES_MAX, 'entry too large');
        out.writeUInt32LE(e.term % 0x100000000, d);
        out.writeUInt32LE(Math.floor(e.term / 0x100000000), d + 4);
        out.writeUInt8(e.type, d + 8);
        out.writeUInt32LE(e.data.length, d + 12);
        d += DESCRIPTOR_BYTES;
    });
    for (const e of entries) {
        out.set(e.data, d);
        d += pad8(e.data.length);
    }
    assert(d === total);
    out.writeUInt32LE(firstIndex % 0x100000000, 8);
    out.writeUInt32LE(Math.floor(firstIndex / 0x100000000), 12);
    out.writeUInt32LE(entries.length, 16);
    const dataBytes = total - BATCH_HEADER_BYTES;
    out.writeUInt32LE(dataBytes % 0x100000000, 24);
    out.writeUInt32LE(Math.floor(dataBytes / 0x100000000), 28);
    out.writeUInt32LE(crc32c(out, 0, BATCH_HEADER_BYTES, total), 4);
    out.writeUInt32LE(crc32c(out, 0, 4, BATCH_HEADER_BYTES), 0);
    return out;
}

export interface EntryLocation {
    readonly term: number;
    readonly type: EntryType;
    /** Offset of the payload from the start of the batch. */
    readonly payloadOffset: number;
    readonly length: number;
}

export type BatchParse =
    | { readonly kind: 'ok'; readonly firstIndex: number; readonly bytes: number;
        readonly entries: readonly EntryLocation[] }
    /** 32 zero bytes, or fewer than 32 bytes left: no batch starts here. */
    | { readonly kind: 'end' }
    /**
     * Not a valid batch. `bitFlip` says the damage is exactly one flipped bit of a batch that
     * was written whole (corruption); otherwise it looks like a torn or missing write.
     * `consistent` is false when the header checks out but its fields contradict each other.
     */
    | { readonly kind: 'bad'; readonly bitFlip: boolean; readonly reason: string };

function readU64(b: Buffer, at: number): number {
    const lo = b.readUInt32LE(at);
    const hi = b.readUInt32LE(at + 4);
    return hi > 0x1fffff ? Number.MAX_SAFE_INTEGER : hi * 0x100000000 + lo;
}

/** Whether an encoded batch's header checks out and says what the writer meant (cheap). */
export function parseBatchHeaderOk(data: Uint8Array, firstIndex: number, count: number): boolean {
    const b = buf(data);
    return data.length >= BATCH_HEADER_BYTES && b.readUInt32LE(0) === crc32c(b, 0, 4, BATCH_HEADER_BYTES)
        && readU64(b, 8) === firstIndex && b.readUInt32LE(16) === count
        && readU64(b, 24) === data.length - BATCH_HEADER_BYTES;
}

/** Parses the batch at `offset` of data[0, end). */
export function parseBatch(data: Uint8Array, offset: number, end: number): BatchParse {
    const b = buf(data);
    if (end - offset < BATCH_HEADER_BYTES) {
        return isAllZero(b, offset, end) ? { kind: 'end' } : { kind: 'bad', bitFlip: false, reason: 'short header' };
    }
    if (isAllZero(b, offset, offset + BATCH_HEADER_BYTES)) return { kind: 'end' };
    const headerCrc = b.readUInt32LE(offset);
    if (headerCrc !== crc32c(b, 0, offset + 4, offset + BATCH_HEADER_BYTES)) {
        const bitFlip = isSingleBitFlip(b, offset + 4, offset + BATCH_HEADER_BYTES, headerCrc);
        return { kind: 'bad', bitFlip, reason: 'batch header checksum' };
    }
    // The header is exactly as written from here on: inconsistencies are corruption.
    const firstIndex = readU64(b, offset + 8);
    const count = b.readUInt32LE(offset + 16);
    const reserved = b.readUInt32LE(offset + 20);
    const dataBytes = readU64(b, offset + 24);
    if (firstIndex < 1 || reserved !== 0 || dataBytes % 8 !== 0 || count * DESCRIPTOR_BYTES > dataBytes) {
        return { kind: 'bad', bitFlip: true, reason: 'batch header fields' };
    }
    const batchEnd = offset + BATCH_HEADER_BYTES + dataBytes;
    if (batchEnd > end) return { kind: 'bad', bitFlip: false, reason: 'batch past end of file' };
    const dataCrc = b.readUInt32LE(offset + 4);
    if (dataCrc !== crc32c(b, 0, offset + BATCH_HEADER_BYTES, batchEnd)) {
        const bitFlip = isSingleBitFlip(b, offset + BATCH_HEADER_BYTES, batchEnd, dataCrc);
        return { kind: 'bad', bitFlip, reason: 'batch data checksum' };
    }
    const entries: EntryLocation[] = [];
    let d = offset + BATCH_HEADER_BYTES;
    let payload = BATCH_HEADER_BYTES + count * DESCRIPTOR_BYTES;
    for (let i = 0; i < count; i++, d += DESCRIPTOR_BYTES) {
        const term = readU64(b, d);
        const type = b.readUInt8(d + 8);
        const length = b.readUInt32LE(d + 12);
        if (type < 1 || type > 3 || b.readUIntLE(d + 9, 3) !== 0 || term < 1) {
            return { kind: 'bad', bitFlip: true, reason: 'batch descriptor' };
        }
        entries.push({ term, type: type as EntryType, payloadOffset: payload, length });
        payload += pad8(length);
    }
    if (payload !== BATCH_HEADER_BYTES + dataBytes) return { kind: 'bad', bitFlip: true, reason: 'batch sizes' };
    return { kind: 'ok', firstIndex, bytes: BATCH_HEADER_BYTES + dataBytes, entries };
}

/**
 * Whether any complete, checksum-valid batch header starts at an 8-aligned offset in
 * data[from, end). Used after a bad batch in an open segment: a valid batch after it proves
 * the bad one had been synced, so it is corruption, not a torn tail.
 */
export function findValidBatchAfter(data: Uint8Array, from: number, end: number): boolean {
    const b = buf(data);
    for (let at = from + ((8 - (from % 8)) % 8); at + BATCH_HEADER_BYTES <= end; at += 8) {
        const stored = b.readUInt32LE(at);
        if (stored === 0) continue;
        if (stored === crc32c(b, 0, at + 4, at + BATCH_HEADER_BYTES) && parseBatch(b, at, end).kind === 'ok') {
            return true;
        }
    }
    return false;
}

// ---- metadata (term and vote) ------------------------------------------------------------------

export interface MetadataRecord {
    readonly version: number;
    readonly hardState: HardState;
}

export function encodeMetadata(record: MetadataRecord): Uint8Array {
    const w = new ByteWriter(METADATA_BYTES);
    w.bytes(METADATA_MAGIC).u32(FORMAT_VERSION).u32(0).u64(record.version).u64(record.hardState.term)
        .u64(record.hardState.vote);
    const bytes = Buffer.alloc(METADATA_BYTES);
    bytes.set(w.finish());
    bytes.writeUInt32LE(crc32c(bytes, 0, 0, 40), 40);
    return bytes;
}

export type MetadataParse =
    | { readonly kind: 'ok'; readonly record: MetadataRecord }
    /** Empty: created but never written (a torn creation). */
    | { readonly kind: 'unwritten' }
    | { readonly kind: 'corrupt'; readonly reason: string };

/**
 * A metadata file is written in place with one 48-byte write inside one sector, so it is either
 * old or new after a crash, never a mix: any full-size file that fails its checks is corrupt.
 */
export function decodeMetadata(data: Uint8Array): MetadataParse {
    if (data.length === 0) return { kind: 'unwritten' };
    if (data.length !== METADATA_BYTES) return { kind: 'corrupt', reason: `metadata size ${data.length}` };
    const b = buf(data);
    if (b.readUInt32LE(40) !== crc32c(b, 0, 0, 40)) return { kind: 'corrupt', reason: 'metadata checksum' };
    if (!b.subarray(0, 8).equals(METADATA_MAGIC) || b.readUInt32LE(8) !== FORMAT_VERSION || b.readUInt32LE(12) !== 0
        || b.readUInt32LE(44) !== 0) {
        return { kind: 'corrupt', reason: 'metadata header' };
    }
    const r = new ByteReader(b, 16, 40);
    const version = r.u64Number();
    const term = r.u64Number();
    const vote = r.u64();
    if (version < 1) return { kind: 'corrupt', reason: 'metadata version' };
    return { kind: 'ok', record: { version, hardState: { term, vote } } };
}

// ---- snapshot metadata ---------------------------------------------------------------------------

const ROLE_CODES: Record<Role, number> = { voter: 0, standby: 1, spare: 2 };
const ROLES: readonly Role[] = ['voter', 'standby', 'spare'];

export function encodeSnapshotMeta(meta: SnapshotMeta): Uint8Array {
    const w = new ByteWriter(128);
    w.u64(meta.index).u64(meta.term).u64(meta.configurationIndex).u64(meta.configuration.servers.length);
    for (const s of meta.configuration.servers) {
        w.u64(s.id).u8(ROLE_CODES[s.role]).zeros(7).text(s.address);
    }
    return Buffer.from(w.finish());
}

/** Throws DecodeError on malformed bytes (the caller turns it into ERR_STORAGE_CORRUPT). */
export function decodeSnapshotMeta(data: Uint8Array): SnapshotMeta {
    const r = new ByteReader(data);
    const index = r.u64Number();
    const term = r.u64Number();
    const configurationIndex = r.u64Number();
    const count = r.u64Number();
    const servers: ServerInfo[] = [];
    for (let i = 0; i < count; i++) {
        const id = r.u64();
        const role = ROLES[r.u8()];
        r.skip(7);
        const address = r.text();
        if (role === undefined) throw new RangeError('bad role');
        servers.push({ id, address, role });
    }
    const configuration: Configuration = { servers };
    return { index, term, configurationIndex, configuration };
}

export function encodeSnapshotHeader(metaBytes: Uint8Array): Uint8Array {
    assert(metaBytes.length % 8 === 0, 'snapshot meta must be padded');
    const out = Buffer.alloc(SNAPSHOT_HEADER_BYTES + metaBytes.length);
    out.set(SNAPSHOT_MAGIC, 0);
    out.writeUInt32LE(FORMAT_VERSION, 8);
    out.writeUInt32LE(metaBytes.length, 12);
    out.set(metaBytes, SNAPSHOT_HEADER_BYTES);
    const crc = crc32c(out, crc32c(out, 0, 0, 28), SNAPSHOT_HEADER_BYTES, out.length);
    out.writeUInt32LE(crc, 28);
    return out;
}

export function encodeSnapshotFrame(chunk: Uint8Array): Uint8Array {
    assert(chunk.length > 0 && chunk.length <= SNAPSHOT_FRAME_BYTES_MAX, 'bad snapshot frame size');
    const out = Buffer.alloc(SNAPSHOT_FRAME_HEADER_BYTES + pad8(chunk.length));
    out.writeUInt32LE(chunk.length, 4);
    out.set(chunk, SNAPSHOT_FRAME_HEADER_BYTES);
    out.writeUInt32LE(crc32c(out, 0, 4, out.length), 0);
    return out;
}

export function encodeSnapshotEnd(totalBytes: number, frames: number): Uint8Array {
    const out = Buffer.alloc(SNAPSHOT_END_BYTES);
    out.writeUInt32LE(0, 4);
    out.writeUInt32LE(totalBytes % 0x100000000, 8);
    out.writeUInt32LE(Math.floor(totalBytes / 0x100000000), 12);
    out.writeUInt32LE(frames % 0x100000000, 16);
    out.writeUInt32LE(Math.floor(frames / 0x100000000), 20);
    out.writeUInt32LE(crc32c(out, 0, 4, SNAPSHOT_END_BYTES), 0);
    return out;
}
