// The single registry of operating errors (STYLE.md §7.4). Codes are permanent; messages may
// change. Classes are chosen by what the caller should do. Every code is listed in
// docs/errors.md. Programmer errors use assert() instead.

export type ErrorCode =
    | 'ERR_NOT_LEADER'
    | 'ERR_LEADERSHIP_LOST'
    | 'ERR_CLOSED'
    | 'ERR_ABORTED'
    | 'ERR_TIMEOUT'
    | 'ERR_PROTOCOL'
    | 'ERR_PROTOCOL_FRAME_TOO_LARGE'
    | 'ERR_SQLITE'
    | 'ERR_STORAGE'
    | 'ERR_STORAGE_CORRUPT'
    | 'ERR_CONFIG'
    | 'ERR_BUSY'
    | 'ERR_DECODE'
    | 'ERR_MEMBERSHIP'
    | 'ERR_UNAVAILABLE'
    | 'ERR_INVALID_ARGUMENT';

const BRAND = Symbol.for('tqlite.error');

export interface ErrorOptions {
    cause?: unknown;
}

/** Base of every operating error tqlite raises. `code` is stable; test it, not the message. */
export class TqliteError extends Error {
    readonly code: ErrorCode;
    readonly [BRAND] = true;

    constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
        super(message, options?.cause === undefined ? undefined : { cause: options.cause });
        this.code = code;
        this.name = new.target.name;
    }

    // instanceof works across duplicate copies of the package (undici's trick).
    static override [Symbol.hasInstance](value: unknown): boolean {
        if (this !== TqliteError) return Function.prototype[Symbol.hasInstance].call(this, value);
        return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
    }
}

export interface LeaderHint {
    id: bigint;
    address: string;
}

/** The request reached a node that is not the leader; nothing was done. Retry elsewhere. */
export class NotLeaderError extends TqliteError {
    readonly leader: LeaderHint | undefined;
    constructor(message = 'not leader', leader?: LeaderHint, options?: ErrorOptions) {
        super('ERR_NOT_LEADER', message, options);
        this.leader = leader;
    }
}

/**
 * The request was appended to the log but leadership was lost before it committed: the outcome
 * is unknown (it may still commit under the next leader). Check, or retry idempotently.
 */
export class IndeterminateError extends TqliteError {
    constructor(message = 'leadership lost', options?: ErrorOptions) {
        super('ERR_LEADERSHIP_LOST', message, options);
    }
}

export class ClosedError extends TqliteError {
    constructor(message = 'closed', options?: ErrorOptions) {
        super('ERR_CLOSED', message, options);
    }
}

export class AbortError extends TqliteError {
    constructor(message = 'aborted', options?: ErrorOptions) {
        super('ERR_ABORTED', message, options);
    }
}

export class TimeoutError extends TqliteError {
    constructor(message = 'timed out', options?: ErrorOptions) {
        super('ERR_TIMEOUT', message, options);
    }
}

/** Malformed or oversized input on a connection; the connection is destroyed or answered FAILURE. */
export class ProtocolError extends TqliteError {
    constructor(message: string, code: 'ERR_PROTOCOL' | 'ERR_PROTOCOL_FRAME_TOO_LARGE' = 'ERR_PROTOCOL',
        options?: ErrorOptions) {
        super(code, message, options);
    }
}

/** An SQLite (or dqlite) result code with the server's message. */
export class SqliteError extends TqliteError {
    readonly sqliteCode: number;
    constructor(sqliteCode: number, message: string, options?: ErrorOptions) {
        super('ERR_SQLITE', message, options);
        this.sqliteCode = sqliteCode;
    }
}

/** Disk I/O failure or corruption of synced data: the node stops. */
export class StorageError extends TqliteError {
    constructor(message: string, code: 'ERR_STORAGE' | 'ERR_STORAGE_CORRUPT' = 'ERR_STORAGE',
        options?: ErrorOptions) {
        super(code, message, options);
    }
}

export class ConfigError extends TqliteError {
    constructor(message: string, options?: ErrorOptions) {
        super('ERR_CONFIG', message, options);
    }
}

export class BusyError extends TqliteError {
    constructor(message = 'busy', options?: ErrorOptions) {
        super('ERR_BUSY', message, options);
    }
}

/** Bytes that do not decode (truncated field, bad length). Callers at an edge translate it. */
export class DecodeError extends TqliteError {
    constructor(message: string, options?: ErrorOptions) {
        super('ERR_DECODE', message, options);
    }
}

export class MembershipError extends TqliteError {
    constructor(message: string, options?: ErrorOptions) {
        super('ERR_MEMBERSHIP', message, options);
    }
}

export class UnavailableError extends TqliteError {
    constructor(message = 'unavailable', options?: ErrorOptions) {
        super('ERR_UNAVAILABLE', message, options);
    }
}

/** A caller passed a value the API cannot take (e.g. a parameter type the wire cannot carry). */
export class InvalidArgumentError extends TqliteError {
    constructor(message: string, options?: ErrorOptions) {
        super('ERR_INVALID_ARGUMENT', message, options);
    }
}
