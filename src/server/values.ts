// Value typing between SQLite and the wire (wire-protocol.md §4.1). Rows: the wire type of each
// value follows SQLite's run-time type, refined by the column's declared type for dqlite's
// DATETIME/DATE/TIMESTAMP and BOOLEAN columns. Unlike dqlite (§12) a value that does not fit the
// declared type falls back to its own type instead of crashing, and a NULL in a BOOLEAN column
// stays NULL instead of becoming false.

import type { Column, SqlValue } from './backend.js';

/** Wire value type codes (§4.1). */
export const ValueType = {
    integer: 1,
    float: 2,
    text: 3,
    blob: 4,
    null: 5,
    unixTime: 9,
    iso8601: 10,
    boolean: 11,
} as const;

/** How a column's declared type affects the wire type of its values. */
export type ColumnKind = 'plain' | 'time' | 'boolean';

export function columnKind(column: Column): ColumnKind {
    const decl = column.declType?.toUpperCase();
    if (decl === 'DATETIME' || decl === 'DATE' || decl === 'TIMESTAMP') return 'time';
    if (decl === 'BOOLEAN') return 'boolean';
    return 'plain';
}

/** A value with its wire type code; `value` is what the codec writes for that code. */
export interface TypedValue {
    readonly type: number;
    readonly value: bigint | number | string | Uint8Array | boolean | null;
}

/** The wire type and value for one row value of a column of kind `kind`. */
export function wireValue(value: SqlValue, kind: ColumnKind): TypedValue {
    if (typeof value === 'bigint') {
        if (kind === 'time') return { type: ValueType.unixTime, value };
        if (kind === 'boolean') return { type: ValueType.boolean, value: value !== 0n };
        return { type: ValueType.integer, value };
    }
    if (typeof value === 'number') return { type: ValueType.float, value };
    if (typeof value === 'string') {
        return { type: kind === 'time' ? ValueType.iso8601 : ValueType.text, value };
    }
    if (value === null) {
        // dqlite sends a NULL in a DATETIME column as ISO8601 "", which go-dqlite reads as nil.
        return kind === 'time' ? { type: ValueType.iso8601, value: '' } : { type: ValueType.null, value: null };
    }
    return { type: ValueType.blob, value };
}

/**
 * A bound parameter from its wire type and decoded value: ISO8601 binds as TEXT and BOOLEAN as
 * the integer 0 or 1 (as dqlite does). Returns undefined for a type that cannot be bound
 * (UNIXTIME and anything unknown): the request then fails with "bind parameters".
 */
export function paramValue(type: number, value: unknown): SqlValue | undefined {
    switch (type) {
        case ValueType.integer:
            return typeof value === 'bigint' ? value : typeof value === 'number' ? BigInt(value) : undefined;
        case ValueType.float:
            return typeof value === 'number' ? value : undefined;
        case ValueType.text:
        case ValueType.iso8601:
            return typeof value === 'string' ? value : undefined;
        case ValueType.blob:
            return value instanceof Uint8Array ? value : undefined;
        case ValueType.null:
            return null;
        case ValueType.boolean:
            if (typeof value === 'boolean') return value ? 1n : 0n;
            if (typeof value === 'bigint') return value !== 0n ? 1n : 0n;
            if (typeof value === 'number') return value !== 0 ? 1n : 0n;
            return undefined;
        default:
            return undefined;
    }
}
