// The schema table of every dqlite message (wire-protocol.md §5, §6) and the generic codec that
// reads and writes it. As in dqlite's request.h and go-dqlite's schema.go, each message is one
// line of typed fields; the TypeScript types of Request and Response are derived from the same
// table, so a field cannot be added to the codec without appearing in the type (and vice versa).

import { assert } from '../lib/assert.js';
import { ByteReader, ByteWriter } from '../lib/bytes.js';
import { DecodeError, ProtocolError } from '../lib/errors.js';
import {
    HEADER_BYTES, PARAMS_SCHEMA0_MAX, ROWS_DONE_BYTE, ROWS_PART_BYTE, RequestType, ResponseType, WORD_BYTES,
    WORDS_MAX,
} from './constants.js';
import type { Frame } from './frame.js';
import { readParams, readRow, writeParams, writeRow } from './values.js';
import type { WireValue } from './values.js';

/** One node in a SERVERS response. `role` (§8.2) is present with CLUSTER format 1 only. */
export interface ServerInfo {
    readonly id: bigint;
    readonly address: string;
    readonly role?: number;
}

/** One file of a FILES response (DUMP). */
export interface FileEntry {
    readonly name: string;
    readonly data: Uint8Array;
}

/** The JS type of each field kind. */
interface FieldTypes {
    u32: number;
    zero32: never;
    u64: bigint;
    /** A u64 that is a count, size, code or small enum: a number, ProtocolError beyond 2^53. */
    u64n: number;
    i64: bigint;
    zero64: never;
    text: string;
    params: readonly WireValue[];
    /** ASSIGN's role: present iff a word is left (§5). */
    optionalU64n: number;
    /** STMT's tail offset: present iff the response schema is 1 (§6). */
    tailOffset: number;
    servers: readonly ServerInfo[];
    columns: readonly string[];
    rows: readonly (readonly WireValue[])[];
    marker: boolean;
    files: readonly FileEntry[];
}

type FieldKind = keyof FieldTypes;
type HiddenKind = 'zero32' | 'zero64';
type OptionalKind = 'optionalU64n' | 'tailOffset';
type FieldList = readonly (readonly [string, FieldKind])[];
interface MessageSchema {
    readonly code: number;
    readonly fields: FieldList;
}

/** Requests (§5). Field order is wire order. */
export const REQUEST_SCHEMA = {
    leader: { code: RequestType.leader, fields: [['unused', 'zero64']] },
    client: { code: RequestType.client, fields: [['id', 'u64']] },
    heartbeat: { code: RequestType.heartbeat, fields: [['timestamp', 'u64']] },
    open: { code: RequestType.open, fields: [['name', 'text'], ['flags', 'u64'], ['vfs', 'text']] },
    prepare: { code: RequestType.prepare, fields: [['db', 'u64'], ['sql', 'text']] },
    exec: { code: RequestType.exec, fields: [['db', 'u32'], ['stmt', 'u32'], ['params', 'params']] },
    query: { code: RequestType.query, fields: [['db', 'u32'], ['stmt', 'u32'], ['params', 'params']] },
    finalize: { code: RequestType.finalize, fields: [['db', 'u32'], ['stmt', 'u32']] },
    execSql: { code: RequestType.execSql, fields: [['db', 'u64'], ['sql', 'text'], ['params', 'params']] },
    querySql: { code: RequestType.querySql, fields: [['db', 'u64'], ['sql', 'text'], ['params', 'params']] },
    interrupt: { code: RequestType.interrupt, fields: [['db', 'u64']] },
    connect: { code: RequestType.connect, fields: [['id', 'u64'], ['address', 'text']] },
    add: { code: RequestType.add, fields: [['id', 'u64'], ['address', 'text']] },
    assign: { code: RequestType.assign, fields: [['id', 'u64'], ['role', 'optionalU64n']] },
    remove: { code: RequestType.remove, fields: [['id', 'u64']] },
    dump: { code: RequestType.dump, fields: [['name', 'text']] },
    cluster: { code: RequestType.cluster, fields: [['format', 'u64']] },
    transfer: { code: RequestType.transfer, fields: [['id', 'u64']] },
    describe: { code: RequestType.describe, fields: [['format', 'u64']] },
    weight: { code: RequestType.weight, fields: [['weight', 'u64']] },
} as const satisfies Record<string, MessageSchema>;

/** Responses (§6). `serverLegacy` shares code 1 with `server` (§6.2). */
export const RESPONSE_SCHEMA = {
    failure: { code: ResponseType.failure, fields: [['code', 'u64n'], ['message', 'text']] },
    server: { code: ResponseType.server, fields: [['id', 'u64'], ['address', 'text']] },
    serverLegacy: { code: ResponseType.server, fields: [['address', 'text']] },
    welcome: { code: ResponseType.welcome, fields: [['heartbeatTimeoutMs', 'u64n']] },
    servers: { code: ResponseType.servers, fields: [['servers', 'servers']] },
    db: { code: ResponseType.db, fields: [['id', 'u32'], ['unused', 'zero32']] },
    stmt: {
        code: ResponseType.stmt,
        fields: [['db', 'u32'], ['id', 'u32'], ['params', 'u64n'], ['tailOffset', 'tailOffset']],
    },
    result: { code: ResponseType.result, fields: [['lastInsertId', 'i64'], ['rowsAffected', 'u64']] },
    rows: { code: ResponseType.rows, fields: [['columns', 'columns'], ['rows', 'rows'], ['done', 'marker']] },
    empty: { code: ResponseType.empty, fields: [['unused', 'zero64']] },
    files: { code: ResponseType.files, fields: [['files', 'files']] },
    metadata: { code: ResponseType.metadata, fields: [['failureDomain', 'u64'], ['weight', 'u64']] },
} as const satisfies Record<string, MessageSchema>;

type Simplify<T> = { [P in keyof T]: T[P] } & {};
type RequiredFields<F extends FieldList> = {
    readonly [E in F[number] as E[1] extends HiddenKind | OptionalKind ? never : E[0]]: FieldTypes[E[1]];
};
type OptionalFields<F extends FieldList> = {
    readonly [E in F[number] as E[1] extends OptionalKind ? E[0] : never]?: FieldTypes[E[1]];
};
type MessageOf<K extends string, F extends FieldList> = Simplify<
    { readonly kind: K } & RequiredFields<F> & OptionalFields<F>
>;

type RequestTable = typeof REQUEST_SCHEMA;
type ResponseTable = typeof RESPONSE_SCHEMA;
/** Every request, discriminated by `kind`. */
export type Request = { [K in keyof RequestTable]: MessageOf<K, RequestTable[K]['fields']> }[keyof RequestTable];
/** Every response, discriminated by `kind`. */
export type Response = { [K in keyof ResponseTable]: MessageOf<K, ResponseTable[K]['fields']> }[keyof ResponseTable];
export type RequestKind = Request['kind'];
export type ResponseKind = Response['kind'];
export type RequestOf<K extends RequestKind> = Extract<Request, { kind: K }>;
export type ResponseOf<K extends ResponseKind> = Extract<Response, { kind: K }>;

// ---- field codecs ----

interface WriteContext {
    readonly schema: number;
    readonly message: Readonly<Record<string, unknown>>;
}

interface ReadContext {
    readonly schema: number;
    readonly body: Buffer;
    readonly clusterFormat: number;
    readonly message: Readonly<Record<string, unknown>>;
}

interface FieldCodec {
    write(writer: ByteWriter, value: unknown, context: WriteContext): void;
    read(reader: ByteReader, context: ReadContext): unknown;
}

/** Bodies start at offset 0 of the frame body, so alignment is relative to 0. */
const BASE = 0;

function u64n(reader: ByteReader): number {
    return reader.u64Number();
}

function writeU64n(writer: ByteWriter, value: unknown): void {
    assert(typeof value === 'number' && Number.isSafeInteger(value) && value >= 0, `bad u64 field ${String(value)}`);
    writer.u64(value);
}

function writeText(writer: ByteWriter, value: unknown): void {
    assert(typeof value === 'string', 'text field must be a string');
    writer.text(value);
}

/** Writes the column count and names of a ROWS body. */
export function writeColumns(writer: ByteWriter, columns: readonly string[]): void {
    writer.u64(columns.length);
    for (const name of columns) writer.text(name);
}

/** Writes an end-of-batch marker: PART (more batches follow) or DONE. */
export function writeMarker(writer: ByteWriter, done: boolean): void {
    const byte = done ? ROWS_DONE_BYTE : ROWS_PART_BYTE;
    for (let i = 0; i < 8; i++) writer.u8(byte);
}

function readServers(reader: ByteReader, context: ReadContext): ServerInfo[] {
    const count = reader.u64Number();
    const withRole = context.clusterFormat !== 0;
    // Each entry is at least an id word and a text word (plus a role word): bound before allocating.
    if (count * (withRole ? 24 : 16) > reader.remaining) {
        throw new DecodeError(`server count ${count} exceeds the body`);
    }
    const servers: ServerInfo[] = [];
    for (let i = 0; i < count; i++) {
        const id = reader.u64();
        const address = reader.text(BASE);
        servers.push(withRole ? { id, address, role: reader.u64Number() } : { id, address });
    }
    return servers;
}

function writeServers(writer: ByteWriter, value: unknown): void {
    const servers = value as readonly ServerInfo[];
    assert(Array.isArray(servers), 'servers must be an array');
    const withRole = servers.length > 0 && servers[0]?.role !== undefined;
    writer.u64(servers.length);
    for (const server of servers) {
        assert((server.role !== undefined) === withRole, 'either every server has a role or none has');
        writer.u64(server.id);
        writer.text(server.address);
        if (withRole) writeU64n(writer, server.role);
    }
}

function readColumns(reader: ByteReader): string[] {
    const count = reader.u64Number();
    if (count * 8 > reader.remaining) throw new DecodeError(`column count ${count} exceeds the body`);
    const columns: string[] = [];
    for (let i = 0; i < count; i++) columns.push(reader.text(BASE));
    return columns;
}

/** Reads rows until an end marker (which is left for the marker field). */
function readRows(reader: ByteReader, context: ReadContext): WireValue[][] {
    const columns = context.message['columns'] as readonly string[];
    const rows: WireValue[][] = [];
    for (;;) {
        if (reader.remaining < 8) throw new DecodeError('ROWS without an end marker');
        const first = context.body[reader.position] as number;
        if (first === ROWS_PART_BYTE || first === ROWS_DONE_BYTE) return rows;
        // A zero-column row would take no bytes: only a marker may follow zero columns.
        if (columns.length === 0) throw new DecodeError('ROWS with zero columns must end with a marker');
        rows.push(readRow(reader, columns.length, BASE));
    }
}

function readMarker(reader: ByteReader): boolean {
    const bytes = reader.bytes(8);
    const first = bytes[0] as number;
    if (first !== ROWS_PART_BYTE && first !== ROWS_DONE_BYTE) throw new DecodeError('bad ROWS end marker');
    for (const byte of bytes) if (byte !== first) throw new DecodeError('bad ROWS end marker');
    return first === ROWS_DONE_BYTE;
}

function readFiles(reader: ByteReader): FileEntry[] {
    const count = reader.u64Number();
    if (count * 16 > reader.remaining) throw new DecodeError(`file count ${count} exceeds the body`);
    const files: FileEntry[] = [];
    for (let i = 0; i < count; i++) {
        const name = reader.text(BASE);
        const data = Buffer.from(reader.blob(BASE));
        files.push({ name, data });
    }
    return files;
}

function writeFiles(writer: ByteWriter, value: unknown): void {
    const files = value as readonly FileEntry[];
    assert(Array.isArray(files), 'files must be an array');
    writer.u64(files.length);
    for (const file of files) {
        writer.text(file.name);
        writer.blob(file.data);
    }
}

const FIELD_CODECS: Record<FieldKind, FieldCodec> = {
    u32: {
        write: (w, v) => {
            assert(typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff, 'bad u32 field');
            w.u32(v);
        },
        read: (r) => r.u32(),
    },
    zero32: { write: (w) => void w.u32(0), read: (r) => void r.u32() },
    u64: {
        write: (w, v) => {
            assert(typeof v === 'bigint' && v >= 0n && v < 2n ** 64n, `bad u64 field ${String(v)}`);
            w.u64(v);
        },
        read: (r) => r.u64(),
    },
    u64n: { write: writeU64n, read: u64n },
    i64: {
        write: (w, v) => {
            assert(typeof v === 'bigint' && v >= -(2n ** 63n) && v < 2n ** 63n, `bad i64 field ${String(v)}`);
            w.i64(v);
        },
        read: (r) => r.i64(),
    },
    zero64: { write: (w) => void w.u64(0n), read: (r) => void r.skip(8) },
    text: { write: writeText, read: (r) => r.text(BASE) },
    params: {
        write: (w, v, c) => {
            assert(Array.isArray(v), 'params must be an array');
            writeParams(w, v as readonly WireValue[], c.schema);
        },
        read: (r, c) => readParams(r, c.schema, BASE),
    },
    optionalU64n: {
        write: (w, v) => {
            if (v !== undefined) writeU64n(w, v);
        },
        read: (r) => (r.remaining >= 8 ? r.u64Number() : undefined),
    },
    tailOffset: {
        write: (w, v, c) => {
            assert((v !== undefined) === (c.schema === 1), 'a tail offset goes with schema 1 only');
            if (v !== undefined) writeU64n(w, v);
        },
        read: (r, c) => (c.schema === 1 ? r.u64Number() : undefined),
    },
    servers: { write: writeServers, read: readServers },
    columns: {
        write: (w, v) => {
            assert(Array.isArray(v), 'columns must be an array');
            writeColumns(w, v as readonly string[]);
        },
        read: readColumns,
    },
    rows: {
        write: (w, v, c) => {
            assert(Array.isArray(v), 'rows must be an array');
            const columns = c.message['columns'] as readonly string[];
            for (const row of v as readonly (readonly WireValue[])[]) writeRow(w, row, columns.length);
        },
        read: readRows,
    },
    marker: {
        write: (w, v) => {
            assert(typeof v === 'boolean', 'done must be a boolean');
            writeMarker(w, v);
        },
        read: readMarker,
    },
    files: { write: writeFiles, read: readFiles },
};

// ---- message codec ----

/** Starts a message: the header with a zero word count, patched by finishMessage(). */
export function startMessage(writer: ByteWriter, type: number, schema: number): void {
    assert(writer.length === 0, 'a message starts an empty writer');
    assert(Number.isInteger(type) && type >= 0 && type <= 255, `bad message type ${type}`);
    assert(Number.isInteger(schema) && schema >= 0 && schema <= 255, `bad schema ${schema}`);
    writer.u32(0).u8(type).u8(schema).u16(0);
}

/** Writes the word count into the header and returns the whole message. */
export function finishMessage(writer: ByteWriter): Buffer {
    const bodyBytes = writer.length - HEADER_BYTES;
    assert(bodyBytes % WORD_BYTES === 0, 'a body is a whole number of words');
    const words = bodyBytes / WORD_BYTES;
    assert(words >= 1, 'a body is never empty');
    assert(words <= WORDS_MAX, 'body too large for the header');
    writer.patchU32(0, words);
    return writer.finish();
}

function encodeFields(type: number, schema: number, fields: FieldList, message: object): Buffer {
    const record = message as Readonly<Record<string, unknown>>;
    const writer = new ByteWriter(64);
    startMessage(writer, type, schema);
    const context: WriteContext = { schema, message: record };
    for (const [name, kind] of fields) FIELD_CODECS[kind].write(writer, record[name], context);
    return finishMessage(writer);
}

function decodeFields(frame: Frame, kind: string, fields: FieldList, clusterFormat: number): object {
    const message: Record<string, unknown> = { kind };
    const reader = new ByteReader(frame.body);
    const context: ReadContext = { schema: frame.schema, body: frame.body, clusterFormat, message };
    try {
        for (const [name, fieldKind] of fields) {
            const value = FIELD_CODECS[fieldKind].read(reader, context);
            if (value !== undefined) message[name] = value;
        }
    } catch (error) {
        if (error instanceof DecodeError) {
            throw new ProtocolError(`malformed ${kind} message: ${error.message}`, 'ERR_PROTOCOL', { cause: error });
        }
        throw error;
    }
    // Words left over are ignored, as dqlite and go-dqlite do (§2).
    return message;
}

export interface EncodeRequestOptions {
    /**
     * The header's schema byte. Default: 1 for EXEC/QUERY/EXEC_SQL/QUERY_SQL with more than 255
     * parameters (dqlite ≥ 1.12 only), else 0. PREPARE with schema 1 asks for the tail offset.
     */
    readonly schema?: number;
}

function defaultRequestSchema(request: Request): number {
    if ('params' in request && request.params.length > PARAMS_SCHEMA0_MAX) return 1;
    return 0;
}

/** Encodes a request as a whole message (header and body). */
export function encodeRequest(request: Request, options: EncodeRequestOptions = {}): Buffer {
    const schema = REQUEST_SCHEMA[request.kind];
    assert(schema !== undefined, `unknown request kind ${String(request.kind)}`);
    return encodeFields(schema.code, options.schema ?? defaultRequestSchema(request), schema.fields, request);
}

/** Encodes a response as a whole message. STMT with a tail offset is sent with schema 1 (§6). */
export function encodeResponse(response: Response): Buffer {
    const schema = RESPONSE_SCHEMA[response.kind];
    assert(schema !== undefined, `unknown response kind ${String(response.kind)}`);
    const bodySchema = response.kind === 'stmt' && response.tailOffset !== undefined ? 1 : 0;
    return encodeFields(schema.code, bodySchema, schema.fields, response);
}

const REQUEST_BY_CODE = new Map<number, RequestKind>(
    Object.entries(REQUEST_SCHEMA).map(([kind, s]) => [s.code, kind as RequestKind]),
);

/**
 * Decodes a request frame. Unknown types and malformed bodies are ProtocolErrors (a server
 * answers FAILURE 1005, §8.7). The schema byte is not checked here except where it changes the
 * layout (parameter tuples); servers check it per type (§5).
 */
export function decodeRequest(frame: Frame): Request {
    const kind = REQUEST_BY_CODE.get(frame.type);
    if (kind === undefined) throw new ProtocolError(`unrecognized request type ${frame.type}`);
    return decodeFields(frame, kind, REQUEST_SCHEMA[kind].fields, 0) as Request;
}

export interface DecodeResponseOptions {
    /** The connection used the legacy handshake: SERVER is the address-only form (§6.2). */
    readonly legacy?: boolean;
    /** The CLUSTER format the request used: 1 (default) reads a role per server, 0 does not. */
    readonly clusterFormat?: 0 | 1;
}

const RESPONSE_BY_CODE = new Map<number, ResponseKind>(
    Object.entries(RESPONSE_SCHEMA)
        .filter(([kind]) => kind !== 'serverLegacy')
        .map(([kind, s]) => [s.code, kind as ResponseKind]),
);

/** Decodes a response frame. Check for `kind === 'failure'` before using the result. */
export function decodeResponse(frame: Frame, options: DecodeResponseOptions = {}): Response {
    let kind = RESPONSE_BY_CODE.get(frame.type);
    if (kind === undefined) throw new ProtocolError(`unrecognized response type ${frame.type}`);
    if (kind === 'server' && options.legacy === true) kind = 'serverLegacy';
    return decodeFields(frame, kind, RESPONSE_SCHEMA[kind].fields, options.clusterFormat ?? 1) as Response;
}

/**
 * Builds one ROWS message incrementally (for servers): the column header, then rows, then
 * finish() with PART or DONE. `bytes` is the message size so far (header included, marker not),
 * which is what dqlite compares with its batch size.
 */
export class RowsWriter {
    private readonly writer = new ByteWriter(4096 + 256);
    private rowCount = 0;
    private finished = false;

    constructor(readonly columns: readonly string[]) {
        startMessage(this.writer, ResponseType.rows, 0);
        writeColumns(this.writer, columns);
    }

    get rows(): number {
        return this.rowCount;
    }

    get bytes(): number {
        return this.writer.length;
    }

    add(row: readonly WireValue[]): void {
        assert(!this.finished, 'RowsWriter already finished');
        assert(this.columns.length > 0, 'rows need at least one column');
        writeRow(this.writer, row, this.columns.length);
        this.rowCount++;
    }

    /** Ends the message with DONE (`done`) or PART and returns it; the writer is then spent. */
    finish(done: boolean): Buffer {
        assert(!this.finished, 'RowsWriter already finished');
        this.finished = true;
        writeMarker(this.writer, done);
        return finishMessage(this.writer);
    }
}
