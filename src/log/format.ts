// The on-disk encodings of the raft log (docs/disk-format.md is the byte-by-byte description;
// keep the two in step). Pure functions: bytes in, bytes or parsed values out. All integers are
// little-endian; every structure is a multiple of 8 bytes; every byte that is data is covered by
// a CRC-32C (src/lib/crc32c.ts).

import { assert } from '../lib/assert.js';
import { ByteReader, ByteWriter, pad8 } from '../lib/bytes.js';
import { crc32c, crc32cXorKey } from '../lib/crc32c.js';
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
 * Where a CRC mismatch over data[start, end) is explained by exactly one flipped bit: the byte
 * offset of that bit in `data`, -1 when the flipped bit is in the stored checksum, undefined
 * when no single bit explains it. CRC-32C is affine in the data, so for equal lengths
 * crc(a) ^ crc(b) depends only on a ^ b; for a single flipped bit that syndrome is unique per
 * position (messages up to 2^31 bits), and we compare it with every position's. Cost: 8 table
 * steps per byte, paid only when a checksum already failed.
 */
export function singleBitFlipAt(data: Uint8Array, start: number, end: number, storedCrc: number): number | undefined {
    const syndrome = (crc32c(data, 0, start, end) ^ storedCrc) >>> 0;
    if (syndrome === 0) return undefined;
    if ((syndrome & (syndrome - 1)) === 0) return -1;
    const regs = new Uint32Array(8);
    for (let j = 0; j < 8; j++) regs[j] = TABLE[1 << j] as number;
    for (let pos = end - 1; pos >= start; pos--) {
        for (let j = 0; j < 8; j++) {
            const r = regs[j] as number;
            if (r === syndrome) return pos;
            regs[j] = ((TABLE[r & 0xff] as number) ^ (r >>> 8)) >>> 0;
        }
    }
    return undefined;
}

/** Whether a CRC mismatch over data[start, end) is explained by exactly one flipped bit. */
export function isSingleBitFlip(data: Uint8Array, start: number, end: number, storedCrc: number): boolean {
    return singleBitFlipAt(data, start, end, storedCrc) !== undefined;
}

/** The sector size torn writes are assumed to respect (the smallest in use; 4 KiB disks tear coarser). */
export const SECTOR_BYTES = 512;

/**
 * Tells a flipped bit (corruption of synced data) from a torn write (sectors of a never-synced
 * write that kept their old content, zeros in a preallocated open segment). A mismatch is a
 * flip only if one bit explains it and that bit's sector, within [lo, hi), is not all zeros:
 * an all-zero sector is what a torn write leaves. Batches are whitened (below), so a written
 * sector part is never all zeros except by a 2^-64 chance.
 */
function classifyMismatch(data: Uint8Array, start: number, end: number, storedCrc: number, lo: number,
    hi: number): boolean {
    const at = singleBitFlipAt(data, start, end, storedCrc);
    if (at === undefined) return false;
    if (at < 0) return true;
    const sector = at - (at % SECTOR_BYTES);
    return !isAllZero(data, Math.max(lo, sector), Math.min(hi, sector + SECTOR_BYTES));
}

// ---- whitening ----------------------------------------------------------------------------------

/**
 * Batches are stored whitened: bytes 8 .. end of every batch are XORed with a fixed
 * pseudo-random key stream (period 64 KiB, indexed by the offset from the batch start), the
 * way SSDs scramble data. Raft payloads are often mostly zeros (SQLite pages), and a sector of
 * zeros with one set bit that a torn write left unwritten would be indistinguishable from a
 * flipped bit; whitened, every written sector looks random. The key is splitmix32 of the word
 * number, little-endian.
 */
const KEY_BYTES = 65536;
/** The key stream as 32-bit values (word i is bytes 4i .. 4i + 3, little-endian). */
const KEY_VALUES = (() => {
    const words = new Uint32Array(KEY_BYTES / 4);
    let state = 0x7f4a7c15;
    for (let i = 0; i < words.length; i++) {
        state = (state + 0x9e3779b9) | 0;
        let z = state;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
        words[i] = (z ^ (z >>> 16)) >>> 0;
    }
    return words;
})();
const KEY = (() => {
    const key = new Uint8Array(KEY_BYTES);
    const view = new DataView(key.buffer);
    KEY_VALUES.forEach((w, i) => view.setUint32(i * 4, w, true));
    return key;
})();

/** The key as the host's 32-bit words (XORed with a host-order Uint32Array view of the data). */
const KEY_WORDS = new Uint32Array(KEY.buffer, 0, KEY_BYTES / 4);

/** XORs data[start, end) with the key stream, positions counted from `batchStart`. An involution. */
export function whiten(data: Uint8Array, start: number, end: number, batchStart: number): void {
    if ((data.byteOffset + start) % 4 === 0 && (start - batchStart) % 4 === 0 && (end - start) % 4 === 0) {
        // Word at a time (the encoder's case: a fresh buffer, 8-aligned ranges).
        const words = new Uint32Array(data.buffer, data.byteOffset + start, (end - start) / 4);
        const first = (start - batchStart) / 4;
        const wordMask = KEY_BYTES / 4 - 1;
        for (let i = 0; i < words.length; i++) {
            words[i] = (words[i] as number) ^ (KEY_WORDS[(first + i) & wordMask] as number);
        }
        return;
    }
    const mask = KEY_BYTES - 1;
    for (let i = start; i < end; i++) data[i] = (data[i] as number) ^ (KEY[(i - batchStart) & mask] as number);
}

/** A copy of whitened bytes data[start, end) of the batch at `batchStart`, in the clear. */
export function unwhitened(data: Uint8Array, start: number, end: number, batchStart: number): Buffer {
    const out = Buffer.from(data.subarray(start, end));
    const mask = KEY_BYTES - 1;
    const shift = start - batchStart;
    for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) ^ (KEY[(shift + i) & mask] as number);
    return out;
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
 * `scratch`: when given and large enough, the batch is encoded into its start and the result
 * is a view of it, valid until the next use (the store's writer reuses one buffer: a fresh
 * 64 KiB+ buffer per batch costs page faults, zeroing and garbage collection comparable to the
 * CRC itself).
 */
export function encodeBatch(firstIndex: number, entries: readonly Entry[], scratch?: Buffer): Uint8Array {
    assert(Number.isSafeInteger(firstIndex) && firstIndex >= 1, 'bad batch firstIndex');
    const total = batchBytes(entries);
    // Zeroed first, as a fresh buffer would be.
    const out = scratch !== undefined && scratch.length >= total ? scratch.subarray(0, total).fill(0)
        : Buffer.alloc(total);
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
    // Whitening and the data CRC in one pass over the data section (the header part is small).
    whiten(out, 8, BATCH_HEADER_BYTES, 0);
    out.writeUInt32LE(crc32cXorKey(out, KEY_VALUES, BATCH_HEADER_BYTES / 4, 0, BATCH_HEADER_BYTES, total), 4);
    out.writeUInt32LE(crc32c(out, 0, 4, BATCH_HEADER_BYTES), 0);
    // A view of the scratch buffer goes out as a plain Uint8Array: a file system that keeps the
    // bytes (SimFs's pending writes, BufferedFs) copies them with slice(), which for a Buffer
    // would be another view of the scratch buffer, overwritten by the next batch.
    return out.buffer === scratch?.buffer ? new Uint8Array(out.buffer, out.byteOffset, out.length) : out;
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
    if (data.length < BATCH_HEADER_BYTES || b.readUInt32LE(0) !== crc32c(b, 0, 4, BATCH_HEADER_BYTES)) return false;
    const h = unwhitened(b, 8, BATCH_HEADER_BYTES, 0);
    return readU64(h, 0) === firstIndex && h.readUInt32LE(8) === count
        && readU64(h, 16) === data.length - BATCH_HEADER_BYTES;
}

/** Parses the batch at `offset` of data[0, end) (`data` is the whole segment file). */
export function parseBatch(data: Uint8Array, offset: number, end: number): BatchParse {
    const b = buf(data);
    if (end - offset < BATCH_HEADER_BYTES) {
        return isAllZero(b, offset, end) ? { kind: 'end' } : { kind: 'bad', bitFlip: false, reason: 'short header' };
    }
    if (isAllZero(b, offset, offset + BATCH_HEADER_BYTES)) return { kind: 'end' };
    const headerCrc = b.readUInt32LE(offset);
    if (headerCrc !== crc32c(b, 0, offset + 4, offset + BATCH_HEADER_BYTES)) {
        const bitFlip = classifyMismatch(b, offset + 4, offset + BATCH_HEADER_BYTES, headerCrc, offset,
            offset + BATCH_HEADER_BYTES);
        return { kind: 'bad', bitFlip, reason: 'batch header checksum' };
    }
    // The header is exactly as written from here on: inconsistencies are corruption.
    const h = unwhitened(b, offset + 8, offset + BATCH_HEADER_BYTES, offset);
    const firstIndex = readU64(h, 0);
    const count = h.readUInt32LE(8);
    const reserved = h.readUInt32LE(12);
    const dataBytes = readU64(h, 16);
    if (firstIndex < 1 || reserved !== 0 || dataBytes % 8 !== 0 || count * DESCRIPTOR_BYTES > dataBytes) {
        return { kind: 'bad', bitFlip: true, reason: 'batch header fields' };
    }
    const batchEnd = offset + BATCH_HEADER_BYTES + dataBytes;
    if (batchEnd > end) return { kind: 'bad', bitFlip: false, reason: 'batch past end of file' };
    const dataCrc = b.readUInt32LE(offset + 4);
    if (dataCrc !== crc32c(b, 0, offset + BATCH_HEADER_BYTES, batchEnd)) {
        const bitFlip = classifyMismatch(b, offset + BATCH_HEADER_BYTES, batchEnd, dataCrc, offset, batchEnd);
        return { kind: 'bad', bitFlip, reason: 'batch data checksum' };
    }
    const descriptors = unwhitened(b, offset + BATCH_HEADER_BYTES,
        offset + BATCH_HEADER_BYTES + count * DESCRIPTOR_BYTES, offset);
    const entries: EntryLocation[] = [];
    let payload = BATCH_HEADER_BYTES + count * DESCRIPTOR_BYTES;
    for (let i = 0, d = 0; i < count; i++, d += DESCRIPTOR_BYTES) {
        const term = readU64(descriptors, d);
        const type = descriptors.readUInt8(d + 8);
        const length = descriptors.readUInt32LE(d + 12);
        if (type < 1 || type > 3 || descriptors.readUIntLE(d + 9, 3) !== 0 || term < 1) {
            return { kind: 'bad', bitFlip: true, reason: 'batch descriptor' };
        }
        entries.push({ term, type: type as EntryType, payloadOffset: payload, length });
        payload += pad8(length);
    }
    if (payload !== BATCH_HEADER_BYTES + dataBytes) return { kind: 'bad', bitFlip: true, reason: 'batch sizes' };
    return { kind: 'ok', firstIndex, bytes: BATCH_HEADER_BYTES + dataBytes, entries };
}

/** An entry's payload, in the clear, from the batch at `batchOffset` of `data`. */
export function payloadOf(data: Uint8Array, batchOffset: number, location: { payloadOffset: number; length: number }):
    Uint8Array {
    const start = batchOffset + location.payloadOffset;
    return unwhitened(data, start, start + location.length, batchOffset);
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
