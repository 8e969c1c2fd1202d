// Conversion between JavaScript values and wire values (wire-protocol.md §4.1), in both
// directions, following go-dqlite where it has a rule:
//
//   parameter (JS)            → wire type
//   number, integer-valued    → INTEGER (1); other numbers (1.5, NaN, ±Infinity) → FLOAT (2)
//   bigint (−2^63 … 2^63−1)   → INTEGER (1)
//   string (no NUL)           → TEXT (3)
//   Buffer / Uint8Array       → BLOB (4)
//   null / undefined          → NULL (5)
//   boolean                   → BOOLEAN (11); the server binds it as 0 or 1
//   Date                      → ISO8601 (10) text "2024-01-02 03:04:05.123+00:00" (UTC; go-dqlite's
//                               layout "2006-01-02 15:04:05.999999999-07:00")
//
//   row value (wire)          → JS
//   INTEGER                   → number when it is a safe integer, else bigint; always bigint with
//                               the safeIntegers option. Never rounded.
//   FLOAT → number, TEXT → string, BLOB → Buffer, NULL → null, BOOLEAN → boolean
//   UNIXTIME                  → Date (seconds since the epoch)
//   ISO8601                   → Date; "" → null (as go-dqlite); text no layout matches → the string

import { InvalidArgumentError } from '../lib/errors.js';
import { ValueType } from '../wire/index.js';
import type { WireValue } from '../wire/index.js';

/** A value that can be bound as a parameter. */
export type SqlParameter = number | bigint | string | Uint8Array | null | undefined | boolean | Date;

/** A value as it comes out of a row. */
export type SqlValue = number | bigint | string | Buffer | null | boolean | Date;

const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

function pad(value: number, width: number): string {
    return String(value).padStart(width, '0');
}

/** go-dqlite's parameter layout for times, in UTC, with trailing zeros of the fraction removed. */
export function formatDate(date: Date): string {
    const time = date.getTime();
    if (Number.isNaN(time)) throw new InvalidArgumentError('cannot bind an invalid Date');
    const ms = date.getUTCMilliseconds();
    const fraction = ms === 0 ? '' : `.${pad(ms, 3)}`.replace(/0+$/, '');
    return `${pad(date.getUTCFullYear(), 4)}-${pad(date.getUTCMonth() + 1, 2)}-${pad(date.getUTCDate(), 2)} `
        + `${pad(date.getUTCHours(), 2)}:${pad(date.getUTCMinutes(), 2)}:${pad(date.getUTCSeconds(), 2)}`
        + `${fraction}+00:00`;
}

const TIME_PATTERN =
    /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(?:([+-])(\d{2}):(\d{2}))?$/;

/**
 * Parses ISO8601 row text the way go-dqlite does: a trailing "Z" is dropped, then
 * "YYYY-MM-DD[ |T]HH:MM[:SS[.fffffffff]][±HH:MM]" or "YYYY-MM-DD", in UTC unless a zone is
 * given. Returns undefined when nothing matches.
 */
export function parseTime(text: string): Date | undefined {
    const match = TIME_PATTERN.exec(text.endsWith('Z') ? text.slice(0, -1) : text);
    if (match === null) return undefined;
    const [, y, mo, d, h, mi, s, frac, sign, zh, zm] = match;
    const ms = frac === undefined ? 0 : Number((frac + '00').slice(0, 3));
    let time = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0), ms);
    if (sign !== undefined) {
        const offsetMinutes = Number(zh) * 60 + Number(zm);
        time -= (sign === '+' ? 1 : -1) * offsetMinutes * 60_000;
    }
    return Number.isNaN(time) ? undefined : new Date(time);
}

/** One JS parameter as a wire value; InvalidArgumentError for what the wire cannot carry. */
export function toWireValue(value: SqlParameter, index: number): WireValue {
    if (value === null || value === undefined) return { type: ValueType.null, value: null };
    switch (typeof value) {
        case 'number':
            return Number.isSafeInteger(value) ? { type: ValueType.integer, value: BigInt(value) }
                : { type: ValueType.float, value };
        case 'bigint':
            if (value < I64_MIN || value > I64_MAX) {
                throw new InvalidArgumentError(`parameter ${index + 1}: ${value} does not fit a 64-bit integer`);
            }
            return { type: ValueType.integer, value };
        case 'string':
            if (value.includes('\0')) throw new InvalidArgumentError(`parameter ${index + 1}: text contains NUL`);
            return { type: ValueType.text, value };
        case 'boolean':
            return { type: ValueType.boolean, value };
        default:
            break;
    }
    if (value instanceof Uint8Array) return { type: ValueType.blob, value };
    if (value instanceof Date) return { type: ValueType.iso8601, value: formatDate(value) };
    throw new InvalidArgumentError(`parameter ${index + 1}: cannot bind a value of type ${typeof value}`);
}

export function toWireParams(params: readonly SqlParameter[] | undefined): WireValue[] {
    if (params === undefined) return [];
    if (!Array.isArray(params)) throw new InvalidArgumentError('parameters must be an array');
    return params.map(toWireValue);
}

/** An i64 as a number when that is exact, else as a bigint (or always a bigint). */
export function integerValue(value: bigint, safeIntegers: boolean): number | bigint {
    if (safeIntegers) return value;
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

export function fromWireValue(value: WireValue, safeIntegers: boolean): SqlValue {
    switch (value.type) {
        case ValueType.integer: return integerValue(value.value, safeIntegers);
        case ValueType.float: return value.value;
        case ValueType.text: return value.value;
        case ValueType.blob:
            return Buffer.isBuffer(value.value) ? value.value : Buffer.from(value.value);
        case ValueType.null: return null;
        case ValueType.unixTime: return new Date(Number(value.value) * 1000);
        case ValueType.iso8601:
            if (value.value === '') return null;
            return parseTime(value.value) ?? value.value;
        case ValueType.boolean: return value.value;
    }
}

/** SQL text for the wire: it cannot carry NUL. */
export function checkSql(sql: unknown): string {
    if (typeof sql !== 'string') throw new InvalidArgumentError('SQL must be a string');
    if (sql.includes('\0')) throw new InvalidArgumentError('SQL text contains NUL');
    return sql;
}
