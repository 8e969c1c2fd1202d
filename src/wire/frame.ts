// Message framing (wire-protocol.md §1, §2): the 8-byte handshake word, then messages of an
// 8-byte header (u32 words, u8 type, u8 schema, u16 extra) and words*8 body bytes. The
// FrameSplitter is sans-I/O in the pg-protocol style: push() bytes in, next() whole frames out.
// Sizes are checked from the header alone, before any body byte is buffered or allocated.

import { assert } from '../lib/assert.js';
import { ProtocolError } from '../lib/errors.js';
import { DEFAULT_BODY_BYTES_MAX, HEADER_BYTES, PROTOCOL_VERSION, WORD_BYTES } from './constants.js';

/** One message: its header's type and schema bytes and its body (words*8 bytes, never empty). */
export interface Frame {
    readonly type: number;
    readonly schema: number;
    /** The header's unused u16; senders write 0 and receivers ignore it (§2). */
    readonly extra: number;
    readonly body: Buffer;
}

export interface FrameSplitterOptions {
    /** Largest accepted body in bytes (header excluded). A larger declared size is a ProtocolError. */
    readonly bodyBytesMax?: number;
    /** Server side: the stream starts with the 8-byte protocol version; read it with handshake(). */
    readonly handshake?: boolean;
}

/** The 8 bytes a client sends first (§1). */
export function encodeHandshake(version: bigint = PROTOCOL_VERSION): Buffer {
    const bytes = Buffer.alloc(8);
    bytes.writeBigUInt64LE(BigInt.asUintN(64, version));
    return bytes;
}

/** A whole message from its parts; `body` must be a non-empty whole number of words. */
export function encodeFrame(frame: Omit<Frame, 'extra'> & { readonly extra?: number }): Buffer {
    assert(frame.body.length > 0, 'a body is never empty');
    assert(frame.body.length % WORD_BYTES === 0, 'a body is a whole number of words');
    const message = Buffer.allocUnsafe(HEADER_BYTES + frame.body.length);
    message.writeUInt32LE(frame.body.length / WORD_BYTES, 0);
    message.writeUInt8(frame.type, 4);
    message.writeUInt8(frame.schema, 5);
    message.writeUInt16LE(frame.extra ?? 0, 6);
    message.set(frame.body, HEADER_BYTES);
    return message;
}

/**
 * Splits a byte stream into frames. push() takes ownership of each chunk (do not modify it
 * afterwards); a frame that lies inside one chunk is a view of it, one that spans chunks is
 * copied once into a buffer of exactly its size.
 *
 * Errors: next() throws ProtocolError for `words = 0` (code ERR_PROTOCOL) and for a body over
 * bodyBytesMax (ERR_PROTOCOL_FRAME_TOO_LARGE). Both mean the stream cannot be delimited any
 * more: the splitter is then broken and every later next() throws the same error.
 */
export class FrameSplitter {
    readonly bodyBytesMax: number;
    private readonly chunks: Buffer[] = [];
    private buffered = 0;
    private awaitingHandshake: boolean;
    private broken: ProtocolError | undefined;

    constructor(options: FrameSplitterOptions = {}) {
        this.bodyBytesMax = options.bodyBytesMax ?? DEFAULT_BODY_BYTES_MAX;
        assert(Number.isSafeInteger(this.bodyBytesMax) && this.bodyBytesMax >= WORD_BYTES, 'bad bodyBytesMax');
        this.awaitingHandshake = options.handshake === true;
    }

    /** Bytes pushed but not yet returned as frames. */
    get bufferedBytes(): number {
        return this.buffered;
    }

    push(chunk: Uint8Array): void {
        if (chunk.length === 0) return;
        const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        this.chunks.push(buffer);
        this.buffered += buffer.length;
    }

    /**
     * Server side: the protocol version once its 8 bytes arrived (consuming them), else
     * undefined. Call it until it returns a value before calling next().
     */
    handshake(): bigint | undefined {
        assert(this.awaitingHandshake, 'no handshake expected');
        if (this.buffered < 8) return undefined;
        const version = this.take(8).readBigUInt64LE(0);
        this.awaitingHandshake = false;
        return version;
    }

    /** The next whole frame, or undefined if more bytes are needed. */
    next(): Frame | undefined {
        assert(!this.awaitingHandshake, 'read the handshake first');
        if (this.broken !== undefined) throw this.broken;
        if (this.buffered < HEADER_BYTES) return undefined;
        const header = this.peekHeader();
        const words = header.readUInt32LE(0);
        if (words === 0) return this.fail(new ProtocolError('message with an empty body (words = 0)'));
        // words*8 is at most 2^35: exact in a double. Checked before anything is allocated.
        const bodyBytes = words * WORD_BYTES;
        if (bodyBytes > this.bodyBytesMax) {
            return this.fail(new ProtocolError(
                `message body of ${bodyBytes} bytes exceeds the limit of ${this.bodyBytesMax}`,
                'ERR_PROTOCOL_FRAME_TOO_LARGE',
            ));
        }
        if (this.buffered < HEADER_BYTES + bodyBytes) return undefined;
        const message = this.take(HEADER_BYTES + bodyBytes);
        return {
            type: message.readUInt8(4),
            schema: message.readUInt8(5),
            extra: message.readUInt16LE(6),
            body: message.subarray(HEADER_BYTES),
        };
    }

    /** Removes and returns everything buffered (e.g. raft bytes after CONNECT). */
    takeBuffered(): Buffer {
        const all = this.buffered === 0 ? Buffer.alloc(0) : this.take(this.buffered);
        assert(this.buffered === 0 && this.chunks.length === 0);
        return all;
    }

    private fail(error: ProtocolError): never {
        this.broken = error;
        throw error;
    }

    private peekHeader(): Buffer {
        const first = this.chunks[0] as Buffer;
        if (first.length >= HEADER_BYTES) return first;
        const header = Buffer.allocUnsafe(HEADER_BYTES);
        let filled = 0;
        for (const chunk of this.chunks) {
            const count = Math.min(chunk.length, HEADER_BYTES - filled);
            chunk.copy(header, filled, 0, count);
            filled += count;
            if (filled === HEADER_BYTES) break;
        }
        assert(filled === HEADER_BYTES);
        return header;
    }

    /** Removes `count` bytes from the front: a view when they lie in one chunk, else one copy. */
    private take(count: number): Buffer {
        assert(count > 0 && count <= this.buffered, 'take beyond buffered bytes');
        this.buffered -= count;
        const first = this.chunks[0] as Buffer;
        if (first.length >= count) {
            if (first.length === count) this.chunks.shift();
            else this.chunks[0] = first.subarray(count);
            return first.subarray(0, count);
        }
        const out = Buffer.allocUnsafe(count);
        let filled = 0;
        while (filled < count) {
            const chunk = this.chunks[0] as Buffer;
            const used = Math.min(chunk.length, count - filled);
            chunk.copy(out, filled, 0, used);
            filled += used;
            if (used === chunk.length) this.chunks.shift();
            else this.chunks[0] = chunk.subarray(used);
        }
        return out;
    }
}
