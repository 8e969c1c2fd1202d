// The byte format raft nodes speak to each other after the dqlite hand-off (DESIGN.md §1), and
// the dqlite preamble (handshake + CONNECT) that starts every peer connection. Pure: no I/O.
//
// PREAMBLE (dqlite's own framing, wire-protocol.md §1–§2, request type 11):
//
//     u64  protocol version = 1
//     u32  words (body length / 8)   u8 type = 11   u8 schema = 0   u16 extra = 0
//     u64  node id                   text address (UTF-8, one NUL, zero padding to 8)
//
// FRAMES (ours; every byte after the preamble, in both directions):
//
//     0   u32  bodyBytes          length of the body that follows the 12-byte header
//     4   u8   version            PEER_FRAME_VERSION (1); anything else is a ProtocolError
//     5   u8   kind               FrameKind below
//     6   u16  reserved           0
//     8   u32  crc                CRC-32C over header bytes 0..8, then the body
//     12  body
//
// bodyBytes is checked against the receiver's frameBytesMax before any buffer is sized for it,
// and the CRC is checked before the body is parsed. All integers are little-endian; terms,
// indexes and counters are u64 on the wire and must be safe integers; node ids use all 64 bits.
//
// BODIES (kinds 1–6 carry one raft Message; `from`/`to`/`term` lead every one of them):
//
//   1 appendEntries          term from to prevIndex prevTerm commit readRound (u64 each),
//                            u32 n, n × { term u64, index u64, type u8, u32 length, data }
//   2 appendEntriesResponse  term from to, u8 success, index hintIndex hintTerm readRound (u64)
//   3 requestVote            term from to lastIndex lastTerm (u64), u8 preVote, u8 transfer
//   4 requestVoteResponse    term from to (u64), u8 granted, u8 preVote
//   5 timeoutNow             term from to (u64)
//   6 installSnapshot        term from to, meta: index term configurationIndex (u64),
//                            u32 n, n × { id u64, u8 role (voter 0, standby 1, spare 2),
//                            u16 length, address UTF-8 }
//   16 snapshotBegin         transferId u64, then an installSnapshot body (kind 6 layout)
//   17 snapshotChunk         transferId u64, offset u64, data (the rest of the body)
//   18 snapshotEnd           transferId u64, totalBytes u64, u32 checksum (CRC-32C of all data)
//   19 snapshotAck           transferId u64, u8 ok, u16 length, reason UTF-8 (receiver → sender)
//
// The decoder is a gateway (STYLE.md §1): booleans must be 0 or 1, enums known, ids non-zero,
// entries consecutive from prevIndex + 1 with non-decreasing terms no newer than the message's
// term, no duplicate servers, no trailing bytes. Anything else is a ProtocolError, never a crash.

import { assert } from '../lib/assert.js';
import { ByteReader, ByteWriter, utf8Bytes } from '../lib/bytes.js';
import { crc32c } from '../lib/crc32c.js';
import { DecodeError, ProtocolError } from '../lib/errors.js';
import type { InstallSnapshot, Message } from '../raft/messages.js';
import type { Configuration, Entry, EntryType, NodeId, Role, ServerInfo, SnapshotMeta } from '../raft/types.js';

export const PEER_FRAME_VERSION = 1;
export const FRAME_HEADER_BYTES = 12;
export const DQLITE_PROTOCOL_VERSION = 1n;
export const DQLITE_REQUEST_CONNECT = 11;
/** Longest reason text a snapshotAck carries. */
export const ACK_REASON_BYTES_MAX = 1024;

export const FrameKind = {
    appendEntries: 1,
    appendEntriesResponse: 2,
    requestVote: 3,
    requestVoteResponse: 4,
    timeoutNow: 5,
    installSnapshot: 6,
    snapshotBegin: 16,
    snapshotChunk: 17,
    snapshotEnd: 18,
    snapshotAck: 19,
} as const;

export type PeerFrame =
    | { readonly kind: 'message'; readonly message: Message }
    | { readonly kind: 'snapshotBegin'; readonly transferId: number; readonly message: InstallSnapshot }
    | {
        readonly kind: 'snapshotChunk';
        readonly transferId: number;
        readonly offset: number;
        readonly data: Uint8Array;
    }
    | {
        readonly kind: 'snapshotEnd';
        readonly transferId: number;
        readonly totalBytes: number;
        readonly checksum: number;
    }
    | { readonly kind: 'snapshotAck'; readonly transferId: number; readonly ok: boolean; readonly reason: string };

const ROLE_CODES: Readonly<Record<Role, number>> = { voter: 0, standby: 1, spare: 2 };
const ROLES: readonly Role[] = ['voter', 'standby', 'spare'];
const ENTRY_TYPES: readonly number[] = [1, 2, 3];
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

// ---- encoding ----

/** The bytes a dialling node sends first: dqlite handshake (version 1), then CONNECT {id, address}. */
export function encodeConnectPreamble(id: NodeId, address: string): Buffer {
    const w = new ByteWriter(64);
    w.u64(DQLITE_PROTOCOL_VERSION);
    const headerAt = w.length;
    w.u32(0).u8(DQLITE_REQUEST_CONNECT).u8(0).u16(0);
    const bodyAt = w.length;
    w.u64(id).text(address);
    w.patchU32(headerAt, (w.length - bodyAt) / 8);
    return Buffer.from(w.finish());
}

/** One frame: header, CRC and body. The returned buffer is the caller's. */
export function encodeFrame(frame: PeerFrame): Buffer {
    const w = new ByteWriter(frameSizeHint(frame));
    w.zeros(FRAME_HEADER_BYTES);
    let kind: number;
    switch (frame.kind) {
        case 'message':
            kind = FrameKind[frame.message.type];
            writeMessageBody(w, frame.message);
            break;
        case 'snapshotBegin':
            kind = FrameKind.snapshotBegin;
            w.u64(frame.transferId);
            writeMessageBody(w, frame.message);
            break;
        case 'snapshotChunk':
            kind = FrameKind.snapshotChunk;
            w.u64(frame.transferId).u64(frame.offset).bytes(frame.data);
            break;
        case 'snapshotEnd':
            kind = FrameKind.snapshotEnd;
            w.u64(frame.transferId).u64(frame.totalBytes).u32(frame.checksum);
            break;
        case 'snapshotAck': {
            kind = FrameKind.snapshotAck;
            let reason = utf8Bytes(frame.reason);
            if (reason.length > ACK_REASON_BYTES_MAX) reason = utf8Bytes(truncateText(frame.reason));
            w.u64(frame.transferId).u8(frame.ok ? 1 : 0).u16(reason.length).bytes(reason);
            break;
        }
    }
    const bytes = w.finish();
    const bodyBytes = bytes.length - FRAME_HEADER_BYTES;
    bytes.writeUInt32LE(bodyBytes, 0);
    bytes.writeUInt8(PEER_FRAME_VERSION, 4);
    bytes.writeUInt8(kind, 5);
    bytes.writeUInt16LE(0, 6);
    bytes.writeUInt32LE(frameCrc(bytes, 0, bytes, FRAME_HEADER_BYTES, bytes.length), 8);
    return bytes;
}

/** Bytes the encoded frame will take (exact for the large kinds), so the writer never grows. */
function frameSizeHint(frame: PeerFrame): number {
    if (frame.kind === 'snapshotChunk') return FRAME_HEADER_BYTES + 16 + frame.data.length;
    if (frame.kind === 'message' && frame.message.type === 'appendEntries') {
        let bytes = FRAME_HEADER_BYTES + 7 * 8 + 4;
        for (const e of frame.message.entries) bytes += 21 + e.data.length;
        return bytes;
    }
    return 256;
}

export function encodeMessage(message: Message): Buffer {
    return encodeFrame({ kind: 'message', message });
}

function truncateText(text: string): string {
    let out = text.slice(0, ACK_REASON_BYTES_MAX);
    while (utf8Bytes(out).length > ACK_REASON_BYTES_MAX) out = out.slice(0, -1);
    return out;
}

function frameCrc(header: Uint8Array, headerAt: number, body: Uint8Array, start: number, end: number): number {
    return crc32c(body, crc32c(header, 0, headerAt, headerAt + 8), start, end);
}

function writeEnvelope(w: ByteWriter, m: Message): void {
    w.u64(m.term).u64(m.from).u64(m.to);
}

function writeMessageBody(w: ByteWriter, m: Message): void {
    writeEnvelope(w, m);
    switch (m.type) {
        case 'appendEntries':
            w.u64(m.prevIndex).u64(m.prevTerm).u64(m.commit).u64(m.readRound).u32(m.entries.length);
            for (const e of m.entries) {
                w.u64(e.term).u64(e.index).u8(e.type).u32(e.data.length).bytes(e.data);
            }
            return;
        case 'appendEntriesResponse':
            w.u8(m.success ? 1 : 0).u64(m.index).u64(m.hintIndex).u64(m.hintTerm).u64(m.readRound);
            return;
        case 'requestVote':
            w.u64(m.lastIndex).u64(m.lastTerm).u8(m.preVote ? 1 : 0).u8(m.transfer ? 1 : 0);
            return;
        case 'requestVoteResponse':
            w.u8(m.granted ? 1 : 0).u8(m.preVote ? 1 : 0);
            return;
        case 'timeoutNow':
            return;
        case 'installSnapshot':
            writeSnapshotMeta(w, m.meta);
            return;
    }
}

function writeSnapshotMeta(w: ByteWriter, meta: SnapshotMeta): void {
    w.u64(meta.index).u64(meta.term).u64(meta.configurationIndex);
    w.u32(meta.configuration.servers.length);
    for (const s of meta.configuration.servers) {
        const address = utf8Bytes(s.address);
        assert(address.length > 0 && address.length <= 0xffff, 'bad server address length');
        w.u64(s.id).u8(ROLE_CODES[s.role]).u16(address.length).bytes(address);
    }
}

// ---- decoding ----

/**
 * Splits a byte stream into frames. push() the bytes as they arrive, then call next() until it
 * returns undefined. Throws ProtocolError (and is then unusable) on a bad header, an oversized
 * frame, a CRC mismatch or a body that does not decode. Buffers hold at most one frame plus the
 * last pushed chunk.
 */
export class FrameDecoder {
    private readonly chunks: Buffer[] = [];
    private buffered = 0;
    private failed = false;

    constructor(private readonly frameBytesMax: number) {
        assert(Number.isSafeInteger(frameBytesMax) && frameBytesMax > 0, 'bad frameBytesMax');
    }

    get bufferedBytes(): number {
        return this.buffered;
    }

    push(chunk: Uint8Array): void {
        assert(!this.failed, 'FrameDecoder used after a protocol error');
        if (chunk.length === 0) return;
        this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
        this.buffered += chunk.length;
    }

    next(): PeerFrame | undefined {
        assert(!this.failed, 'FrameDecoder used after a protocol error');
        try {
            return this.nextFrame();
        } catch (error) {
            this.failed = true;
            throw error;
        }
    }

    private nextFrame(): PeerFrame | undefined {
        if (this.buffered < FRAME_HEADER_BYTES) return undefined;
        const header = this.peek(FRAME_HEADER_BYTES);
        const bodyBytes = header.readUInt32LE(0);
        const version = header.readUInt8(4);
        if (version !== PEER_FRAME_VERSION) throw new ProtocolError(`unknown peer frame version ${version}`);
        if (bodyBytes > this.frameBytesMax) {
            throw new ProtocolError(`frame of ${bodyBytes} bytes exceeds ${this.frameBytesMax}`,
                'ERR_PROTOCOL_FRAME_TOO_LARGE');
        }
        const total = FRAME_HEADER_BYTES + bodyBytes;
        if (this.buffered < total) return undefined;
        const bytes = this.take(total);
        if (bytes.readUInt16LE(6) !== 0) throw new ProtocolError('reserved header bits set');
        const expected = bytes.readUInt32LE(8);
        if (frameCrc(bytes, 0, bytes, FRAME_HEADER_BYTES, total) !== expected) {
            throw new ProtocolError('frame checksum mismatch');
        }
        return decodeFrameBody(bytes.readUInt8(5), bytes.subarray(FRAME_HEADER_BYTES));
    }

    /** The first `count` buffered bytes, copied only when they span chunks. */
    private peek(count: number): Buffer {
        const first = this.chunks[0] as Buffer;
        if (first.length >= count) return first.subarray(0, count);
        const out = Buffer.allocUnsafe(count);
        let at = 0;
        for (const c of this.chunks) {
            const n = Math.min(c.length, count - at);
            c.copy(out, at, 0, n);
            at += n;
            if (at === count) break;
        }
        return out;
    }

    /** Removes and returns the first `count` bytes (a view when they lie in one chunk). */
    private take(count: number): Buffer {
        const first = this.chunks[0] as Buffer;
        let out: Buffer;
        if (first.length >= count) {
            out = first.subarray(0, count);
            if (first.length === count) this.chunks.shift();
            else this.chunks[0] = first.subarray(count);
        } else {
            out = Buffer.allocUnsafe(count);
            let at = 0;
            while (at < count) {
                const c = this.chunks[0] as Buffer;
                const n = Math.min(c.length, count - at);
                c.copy(out, at, 0, n);
                at += n;
                if (n === c.length) this.chunks.shift();
                else this.chunks[0] = c.subarray(n);
            }
        }
        this.buffered -= count;
        return out;
    }
}

/** Decodes one frame body of the given kind. Throws ProtocolError on any malformed input. */
export function decodeFrameBody(kind: number, body: Uint8Array): PeerFrame {
    const r = new ByteReader(body);
    let frame: PeerFrame;
    try {
        frame = readFrame(kind, r);
    } catch (error) {
        if (error instanceof DecodeError) {
            throw new ProtocolError(`bad frame body: ${error.message}`, 'ERR_PROTOCOL', { cause: error });
        }
        throw error;
    }
    if (r.remaining !== 0) throw new ProtocolError(`${r.remaining} trailing bytes in frame of kind ${kind}`);
    return frame;
}

function readFrame(kind: number, r: ByteReader): PeerFrame {
    switch (kind) {
        case FrameKind.appendEntries:
        case FrameKind.appendEntriesResponse:
        case FrameKind.requestVote:
        case FrameKind.requestVoteResponse:
        case FrameKind.timeoutNow:
        case FrameKind.installSnapshot:
            return { kind: 'message', message: readMessage(kind, r) };
        case FrameKind.snapshotBegin: {
            const transferId = r.u64Number();
            const message = readMessage(FrameKind.installSnapshot, r);
            assert(message.type === 'installSnapshot');
            return { kind: 'snapshotBegin', transferId, message };
        }
        case FrameKind.snapshotChunk: {
            const transferId = r.u64Number();
            const offset = r.u64Number();
            const data = r.bytes(r.remaining);
            return { kind: 'snapshotChunk', transferId, offset, data: plain(data) };
        }
        case FrameKind.snapshotEnd:
            return { kind: 'snapshotEnd', transferId: r.u64Number(), totalBytes: r.u64Number(), checksum: r.u32() };
        case FrameKind.snapshotAck: {
            const transferId = r.u64Number();
            const ok = readBool(r);
            const length = r.u16();
            if (length > ACK_REASON_BYTES_MAX) throw new DecodeError('ack reason too long');
            return { kind: 'snapshotAck', transferId, ok, reason: readUtf8(r, length) };
        }
        default:
            throw new ProtocolError(`unknown frame kind ${kind}`);
    }
}

/** A plain Uint8Array view (tests compare with deepEqual; Buffer is a different prototype). */
function plain(data: Buffer): Uint8Array {
    return new Uint8Array(data.buffer, data.byteOffset, data.length);
}

function readBool(r: ByteReader): boolean {
    const v = r.u8();
    if (v > 1) throw new DecodeError(`boolean byte ${v}`);
    return v === 1;
}

function readId(r: ByteReader, what: string): NodeId {
    const id = r.u64();
    if (id === 0n) throw new DecodeError(`${what} is node id 0`);
    return id;
}

function readUtf8(r: ByteReader, length: number): string {
    const bytes = r.bytes(length);
    try {
        return utf8Decoder.decode(bytes);
    } catch (cause) {
        throw new DecodeError('text is not valid UTF-8', { cause });
    }
}

/**
 * Terms and indexes are refused past 2^52: far beyond any real log, and they leave room for the
 * arithmetic raft does on them (term + 1) within safe integers. A peer that sent 2^53 - 1 made the
 * next election's term unrepresentable (the log store's assertion: no leader could be elected).
 */
const LOG_NUMBER_MAX = 2 ** 52;

function readLogNumber(r: ByteReader, what: string): number {
    const value = r.u64Number();
    if (value > LOG_NUMBER_MAX) throw new DecodeError(`${what} ${value} is past 2^52`);
    return value;
}

function readMessage(kind: number, r: ByteReader): Message {
    const term = readLogNumber(r, 'term');
    const from = readId(r, 'from');
    const to = readId(r, 'to');
    if (from === to) throw new DecodeError('message from a node to itself');
    switch (kind) {
        case FrameKind.appendEntries: {
            const prevIndex = readLogNumber(r, 'prevIndex');
            const prevTerm = readLogNumber(r, 'prevTerm');
            const commit = readLogNumber(r, 'commit');
            const readRound = r.u64Number();
            const entries = readEntries(r, { term, prevIndex, prevTerm });
            return { type: 'appendEntries', term, from, to, prevIndex, prevTerm, entries, commit, readRound };
        }
        case FrameKind.appendEntriesResponse: {
            const success = readBool(r);
            const index = readLogNumber(r, 'index');
            const hintIndex = readLogNumber(r, 'hintIndex');
            const hintTerm = readLogNumber(r, 'hintTerm');
            const readRound = r.u64Number();
            return { type: 'appendEntriesResponse', term, from, to, success, index, hintIndex, hintTerm, readRound };
        }
        case FrameKind.requestVote: {
            const lastIndex = readLogNumber(r, 'lastIndex');
            const lastTerm = readLogNumber(r, 'lastTerm');
            const preVote = readBool(r);
            const transfer = readBool(r);
            return { type: 'requestVote', term, from, to, lastIndex, lastTerm, preVote, transfer };
        }
        case FrameKind.requestVoteResponse: {
            const granted = readBool(r);
            const preVote = readBool(r);
            return { type: 'requestVoteResponse', term, from, to, granted, preVote };
        }
        case FrameKind.timeoutNow:
            return { type: 'timeoutNow', term, from, to };
        default:
            assert(kind === FrameKind.installSnapshot);
            const meta = readSnapshotMeta(r);
            if (meta.term > term) throw new DecodeError(`snapshot term ${meta.term} past the message's term ${term}`);
            return { type: 'installSnapshot', term, from, to, meta };
    }
}

function readEntries(r: ByteReader, at: { term: number; prevIndex: number; prevTerm: number }): Entry[] {
    const count = r.u32();
    // Each entry takes at least 21 bytes: refuse a count the body cannot hold before looping.
    if (count * 21 > r.remaining) throw new DecodeError(`${count} entries cannot fit in the frame`);
    const entries: Entry[] = [];
    let lastTerm = at.prevTerm;
    for (let i = 0; i < count; i++) {
        const term = readLogNumber(r, 'term');
        const index = readLogNumber(r, 'index');
        const type = r.u8();
        const length = r.u32();
        const data = r.bytes(length);
        if (!ENTRY_TYPES.includes(type)) throw new DecodeError(`unknown entry type ${type}`);
        if (index !== at.prevIndex + 1 + i) throw new DecodeError(`entry index ${index} out of sequence`);
        if (term < lastTerm || term > at.term) throw new DecodeError(`entry term ${term} out of order`);
        lastTerm = term;
        // The log may keep entries long after the frame is gone, so a small entry is copied out
        // of the frame (or socket chunk) it lies in; a large one that fills most of its buffer
        // (a big frame is assembled into a buffer of its own) keeps a view: retaining that buffer
        // costs at most as much again, and it saves allocating and copying each large entry
        // twice on every follower.
        const owned = data.length * 2 >= data.buffer.byteLength;
        const view = owned ? new Uint8Array(data.buffer, data.byteOffset, data.length) : new Uint8Array(data);
        entries.push({ term, index, type: type as EntryType, data: view });
    }
    return entries;
}

function readSnapshotMeta(r: ByteReader): SnapshotMeta {
    const index = readLogNumber(r, 'index');
    const term = readLogNumber(r, 'term');
    const configurationIndex = readLogNumber(r, 'configurationIndex');
    if (configurationIndex > index) throw new DecodeError('configuration index past the snapshot index');
    const count = r.u32();
    if (count * 12 > r.remaining) throw new DecodeError(`${count} servers cannot fit in the frame`);
    const servers: ServerInfo[] = [];
    const ids = new Set<bigint>();
    for (let i = 0; i < count; i++) {
        const id = readId(r, 'server id');
        const roleCode = r.u8();
        const length = r.u16();
        const address = readUtf8(r, length);
        const role = ROLES[roleCode];
        if (role === undefined) throw new DecodeError(`unknown role ${roleCode}`);
        if (address.length === 0 || address.includes('\0')) throw new DecodeError('bad server address');
        if (ids.has(id)) throw new DecodeError(`duplicate server ${id}`);
        ids.add(id);
        servers.push({ id, address, role });
    }
    const configuration: Configuration = { servers };
    return { index, term, configuration, configurationIndex };
}
