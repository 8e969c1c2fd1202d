// Little-endian byte reader and writer. Used by the wire codec, the log format and the raft
// message codec. The reader never reads past its end: every shortfall is a DecodeError, which
// the caller at the edge translates (the wire turns it into a ProtocolError).

import { assert } from './assert.js';
import { DecodeError } from './errors.js';

const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

export function pad8(length: number): number {
    return (length + 7) & ~7;
}

export function utf8Bytes(text: string): Uint8Array {
    return utf8Encoder.encode(text);
}

/** A growable buffer. Grows by about 1.5x; `finish()` returns a view of the bytes written. */
export class ByteWriter {
    private buffer: Buffer;
    private offset = 0;

    constructor(initialBytes = 256) {
        assert(initialBytes > 0);
        this.buffer = Buffer.allocUnsafe(initialBytes);
    }

    get length(): number {
        return this.offset;
    }

    private ensure(extra: number): void {
        const needed = this.offset + extra;
        if (needed <= this.buffer.length) return;
        let size = this.buffer.length;
        while (size < needed) size = Math.ceil(size * 1.5) + 8;
        const next = Buffer.allocUnsafe(size);
        this.buffer.copy(next, 0, 0, this.offset);
        this.buffer = next;
    }

    u8(value: number): this {
        this.ensure(1);
        this.buffer.writeUInt8(value, this.offset);
        this.offset += 1;
        return this;
    }

    u16(value: number): this {
        this.ensure(2);
        this.buffer.writeUInt16LE(value, this.offset);
        this.offset += 2;
        return this;
    }

    u32(value: number): this {
        this.ensure(4);
        this.buffer.writeUInt32LE(value, this.offset);
        this.offset += 4;
        return this;
    }

    /** A u64 from a number (must be a safe non-negative integer) or a bigint. */
    u64(value: number | bigint): this {
        this.ensure(8);
        if (typeof value === 'number') {
            assert(Number.isSafeInteger(value) && value >= 0, `bad u64 ${value}`);
            this.buffer.writeUInt32LE(value % 0x100000000, this.offset);
            this.buffer.writeUInt32LE(Math.floor(value / 0x100000000), this.offset + 4);
        } else {
            this.buffer.writeBigUInt64LE(BigInt.asUintN(64, value), this.offset);
        }
        this.offset += 8;
        return this;
    }

    i64(value: number | bigint): this {
        this.ensure(8);
        this.buffer.writeBigInt64LE(BigInt.asIntN(64, BigInt(value)), this.offset);
        this.offset += 8;
        return this;
    }

    f64(value: number): this {
        this.ensure(8);
        this.buffer.writeDoubleLE(value, this.offset);
        this.offset += 8;
        return this;
    }

    bytes(data: Uint8Array): this {
        this.ensure(data.length);
        this.buffer.set(data, this.offset);
        this.offset += data.length;
        return this;
    }

    /** Zero bytes up to the next multiple of 8. */
    pad8(): this {
        const target = pad8(this.offset);
        this.ensure(target - this.offset);
        this.buffer.fill(0, this.offset, target);
        this.offset = target;
        return this;
    }

    zeros(count: number): this {
        this.ensure(count);
        this.buffer.fill(0, this.offset, this.offset + count);
        this.offset += count;
        return this;
    }

    /** dqlite `text`: UTF-8, one NUL, zero padding to a multiple of 8. */
    text(value: string): this {
        const encoded = utf8Encoder.encode(value);
        assert(!encoded.includes(0), 'text must not contain NUL');
        this.bytes(encoded);
        this.u8(0);
        return this.pad8();
    }

    /** dqlite `blob`: u64 length, bytes, zero padding to a multiple of 8. */
    blob(data: Uint8Array): this {
        this.u64(data.length);
        this.bytes(data);
        return this.pad8();
    }

    /** Overwrites 4 bytes at `at` (for lengths known only after the body is written). */
    patchU32(at: number, value: number): void {
        assert(at + 4 <= this.offset);
        this.buffer.writeUInt32LE(value, at);
    }

    /** A view of the bytes written so far (shares memory with the writer). */
    finish(): Buffer {
        return this.buffer.subarray(0, this.offset);
    }
}

/** Reads fields from a byte range; every read is bounds-checked. */
export class ByteReader {
    private offset: number;
    private readonly buffer: Buffer;
    private readonly end: number;

    constructor(data: Uint8Array, start = 0, end = data.length) {
        assert(start >= 0 && start <= end && end <= data.length, 'bad reader range');
        this.buffer = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        this.offset = start;
        this.end = end;
    }

    get position(): number {
        return this.offset;
    }

    get remaining(): number {
        return this.end - this.offset;
    }

    private need(count: number, what: string): void {
        if (count < 0 || this.offset + count > this.end) {
            throw new DecodeError(`truncated ${what}: need ${count} bytes, have ${this.end - this.offset}`);
        }
    }

    u8(): number {
        this.need(1, 'u8');
        return this.buffer.readUInt8(this.offset++);
    }

    u16(): number {
        this.need(2, 'u16');
        const v = this.buffer.readUInt16LE(this.offset);
        this.offset += 2;
        return v;
    }

    u32(): number {
        this.need(4, 'u32');
        const v = this.buffer.readUInt32LE(this.offset);
        this.offset += 4;
        return v;
    }

    u64(): bigint {
        this.need(8, 'u64');
        const v = this.buffer.readBigUInt64LE(this.offset);
        this.offset += 8;
        return v;
    }

    /** A u64 that must fit in a safe integer (lengths, indexes); larger is a DecodeError. */
    u64Number(): number {
        this.need(8, 'u64');
        const lo = this.buffer.readUInt32LE(this.offset);
        const hi = this.buffer.readUInt32LE(this.offset + 4);
        if (hi > 0x1fffff) throw new DecodeError('u64 value too large');
        this.offset += 8;
        return hi * 0x100000000 + lo;
    }

    i64(): bigint {
        this.need(8, 'i64');
        const v = this.buffer.readBigInt64LE(this.offset);
        this.offset += 8;
        return v;
    }

    f64(): number {
        this.need(8, 'f64');
        const v = this.buffer.readDoubleLE(this.offset);
        this.offset += 8;
        return v;
    }

    /** `count` bytes as a view (no copy). */
    bytes(count: number): Buffer {
        this.need(count, 'bytes');
        const v = this.buffer.subarray(this.offset, this.offset + count);
        this.offset += count;
        return v;
    }

    skip(count: number): void {
        this.need(count, 'skip');
        this.offset += count;
    }

    /** Skips to the next multiple of 8 relative to `base` (the start of the body). */
    align8(base = 0): void {
        const rel = this.offset - base;
        const skip = pad8(rel) - rel;
        this.need(skip, 'padding');
        this.offset += skip;
    }

    /** dqlite `text`: bytes up to the first NUL, which must be inside the range; valid UTF-8. */
    text(base = 0): string {
        const nul = this.buffer.indexOf(0, this.offset);
        if (nul < 0 || nul >= this.end) throw new DecodeError('text without NUL terminator');
        let value: string;
        try {
            value = utf8Decoder.decode(this.buffer.subarray(this.offset, nul));
        } catch (cause) {
            throw new DecodeError('text is not valid UTF-8', { cause });
        }
        this.offset = nul + 1;
        this.align8(base);
        return value;
    }

    blob(base = 0): Buffer {
        const length = this.u64Number();
        const data = this.bytes(length);
        this.align8(base);
        return data;
    }
}
