// Values and tuples (wire-protocol.md §4). A value is a type code plus its encoding; parameter
// tuples (§4.2) carry a count and one type byte per value, row tuples (§4.3) carry one 4-bit
// type code per column. INTEGER and UNIXTIME values are bigints, so every i64 is exact.

import { assert, unreachable } from '../lib/assert.js';
import type { ByteReader, ByteWriter } from '../lib/bytes.js';
import { DecodeError } from '../lib/errors.js';
import { PARAMS_SCHEMA0_MAX, ValueType } from './constants.js';

/** One typed value, as in parameter and row tuples. The `type` literal selects the value's JS type. */
export type WireValue =
    | { readonly type: typeof ValueType.integer; readonly value: bigint }
    | { readonly type: typeof ValueType.float; readonly value: number }
    | { readonly type: typeof ValueType.text; readonly value: string }
    | { readonly type: typeof ValueType.blob; readonly value: Uint8Array }
    | { readonly type: typeof ValueType.null; readonly value: null }
    /** Seconds since the epoch (rows only; servers refuse it as a parameter). */
    | { readonly type: typeof ValueType.unixTime; readonly value: bigint }
    /** A time as text; in rows "" means NULL to go-dqlite. */
    | { readonly type: typeof ValueType.iso8601; readonly value: string }
    /** Written as u64 1 or 0; any non-zero u64 reads as true. */
    | { readonly type: typeof ValueType.boolean; readonly value: boolean };

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(ValueType));

export function isValueType(code: number): code is WireValue['type'] {
    return KNOWN_TYPES.has(code);
}

/** Writes a value's encoding (not its type code). */
export function writeValue(writer: ByteWriter, value: WireValue): void {
    switch (value.type) {
        case ValueType.integer:
        case ValueType.unixTime:
            assert(typeof value.value === 'bigint', 'INTEGER/UNIXTIME values are bigints');
            writer.i64(value.value);
            return;
        case ValueType.float:
            assert(typeof value.value === 'number', 'FLOAT values are numbers');
            writer.f64(value.value);
            return;
        case ValueType.text:
        case ValueType.iso8601:
            assert(typeof value.value === 'string', 'TEXT/ISO8601 values are strings');
            writer.text(value.value);
            return;
        case ValueType.blob:
            assert(value.value instanceof Uint8Array, 'BLOB values are Uint8Arrays');
            writer.blob(value.value);
            return;
        case ValueType.null:
            writer.u64(0n);
            return;
        case ValueType.boolean:
            assert(typeof value.value === 'boolean', 'BOOLEAN values are booleans');
            writer.u64(value.value ? 1n : 0n);
            return;
        default:
            unreachable(value, 'unknown value type');
    }
}

/** Reads the encoding of a value of type `type`; `base` is the body start (for alignment). */
export function readValue(reader: ByteReader, type: number, base: number): WireValue {
    switch (type) {
        case ValueType.integer:
            return { type, value: reader.i64() };
        case ValueType.unixTime:
            return { type, value: reader.i64() };
        case ValueType.float:
            return { type, value: reader.f64() };
        case ValueType.text:
            return { type, value: reader.text(base) };
        case ValueType.iso8601:
            return { type, value: reader.text(base) };
        case ValueType.blob:
            // A copy: the body may be a view of a socket chunk the caller does not own.
            return { type, value: Buffer.from(reader.blob(base)) };
        case ValueType.null:
            reader.skip(8);
            return { type, value: null };
        case ValueType.boolean:
            return { type, value: reader.u64() !== 0n };
        default:
            throw new DecodeError(`unknown value type ${type}`);
    }
}

/**
 * Parameter tuple (§4.2). Schema 0: u8 count; schema 1: u32 count; then one type byte per
 * value, zero padding to a word, then the values. An empty list writes nothing at all, as
 * go-dqlite does.
 */
export function writeParams(writer: ByteWriter, params: readonly WireValue[], schema: number): void {
    assert(schema === 0 || schema === 1, `no parameter tuple for schema ${schema}`);
    if (params.length === 0) return;
    if (schema === 0) {
        assert(params.length <= PARAMS_SCHEMA0_MAX, 'schema 0 carries at most 255 parameters');
        writer.u8(params.length);
    } else {
        assert(params.length <= 0xffffffff, 'too many parameters');
        writer.u32(params.length);
    }
    for (const p of params) writer.u8(p.type);
    writer.pad8();
    for (const p of params) writeValue(writer, p);
}

/** Reads a parameter tuple; no bytes left means no parameters. Padding contents are ignored. */
export function readParams(reader: ByteReader, schema: number, base: number): WireValue[] {
    if (reader.remaining === 0) return [];
    if (schema !== 0 && schema !== 1) throw new DecodeError(`unrecognized schema version ${schema}`);
    const count = schema === 0 ? reader.u8() : reader.u32();
    // Each parameter takes one type byte and at least one word: bound the count before allocating.
    if (count * 9 > reader.remaining) throw new DecodeError(`parameter count ${count} exceeds the body`);
    const types: number[] = [];
    for (let i = 0; i < count; i++) types.push(reader.u8());
    reader.align8(base);
    const params: WireValue[] = [];
    for (const type of types) {
        if (!isValueType(type)) throw new DecodeError(`unknown parameter type ${type}`);
        params.push(readValue(reader, type, base));
    }
    return params;
}

/** Row tuple (§4.3): 4-bit type codes, two per byte (low nibble first), padded to a word. */
export function writeRow(writer: ByteWriter, row: readonly WireValue[], columnCount: number): void {
    assert(row.length === columnCount, `row has ${row.length} values for ${columnCount} columns`);
    assert(columnCount > 0, 'a row needs at least one column');
    for (let i = 0; i < columnCount; i += 2) {
        const low = (row[i] as WireValue).type;
        const high = i + 1 < columnCount ? (row[i + 1] as WireValue).type : 0;
        assert(low <= 15 && high <= 15, 'row type codes are 4 bits');
        writer.u8(low | (high << 4));
    }
    writer.pad8();
    for (const value of row) writeValue(writer, value);
}

/** Reads one row of `columnCount` values; the caller has checked that no end marker is here. */
export function readRow(reader: ByteReader, columnCount: number, base: number): WireValue[] {
    assert(columnCount > 0, 'rows of zero columns are not read');
    const headerBytes = Math.ceil(columnCount / 2);
    const header = reader.bytes(headerBytes);
    reader.align8(base);
    const row: WireValue[] = [];
    for (let i = 0; i < columnCount; i++) {
        const byte = header[i >> 1] as number;
        const type = (i & 1) === 0 ? byte & 0x0f : byte >> 4;
        if (!isValueType(type)) throw new DecodeError(`unknown row value type ${type} in column ${i}`);
        row.push(readValue(reader, type, base));
    }
    return row;
}
