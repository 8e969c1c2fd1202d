// Value typing between SQLite and the wire (wire-protocol.md §4.1). Rows: the wire type of each
// value follows SQLite's run-time type, refined by the column's declared type for dqlite's
// DATETIME/DATE/TIMESTAMP and BOOLEAN columns. Unlike dqlite (§12) a value that does not fit the
// declared type falls back to its own type instead of crashing, and a NULL in a BOOLEAN column
// stays NULL instead of becoming false.

import { ValueType } from '../wire/index.js';
import type { WireValue } from '../wire/index.js';
import type { Column, SqlValue } from './backend.js';

/** How a column's declared type affects the wire type of its values. */
export type ColumnKind = 'plain' | 'time' | 'boolean';

export function columnKind(column: Column): ColumnKind {
    const decl = column.declType?.toUpperCase();
    if (decl === 'DATETIME' || decl === 'DATE' || decl === 'TIMESTAMP') return 'time';
    if (decl === 'BOOLEAN') return 'boolean';
    return 'plain';
}

/** The wire type and value for one row value of a column of kind `kind`. */
export function wireValue(value: SqlValue, kind: ColumnKind): WireValue {
    if (typeof value === 'bigint') {
        if (kind === 'time') return { type: ValueType.unixTime, value };
        if (kind === 'boolean') return { type: ValueType.boolean, value: value !== 0n };
        return { type: ValueType.integer, value };
    }
    if (typeof value === 'number') return { type: ValueType.float, value };
    if (typeof value === 'string') {
        // The wire's text ends at a NUL: a value with one inside is cut there, as dqlite does (it
        // sends SQLite's text as a C string). It used to fail the whole query, "internal error".
        const nul = value.indexOf('\0');
        const text = nul < 0 ? value : value.slice(0, nul);
        return { type: kind === 'time' ? ValueType.iso8601 : ValueType.text, value: text };
    }
    if (value === null) {
        // dqlite sends a NULL in a DATETIME column as ISO8601 "", which go-dqlite reads as nil.
        return kind === 'time' ? { type: ValueType.iso8601, value: '' } : { type: ValueType.null, value: null };
    }
    return { type: ValueType.blob, value };
}

/**
 * A bound parameter from its decoded wire value: ISO8601 binds as TEXT and BOOLEAN as
 * the integer 0 or 1 (as dqlite does). Returns undefined for a type that cannot be bound
 * (UNIXTIME and anything unknown): the request then fails with "bind parameters".
 */
export function paramValue(param: WireValue): SqlValue | undefined {
    switch (param.type) {
        case ValueType.integer:
        case ValueType.float:
        case ValueType.text:
        case ValueType.iso8601:
        case ValueType.blob:
        case ValueType.null:
            return param.value;
        case ValueType.boolean:
            return param.value ? 1n : 0n;
        default:
            return undefined;
    }
}
