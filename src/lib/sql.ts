// The shapes of SQL values, results and row streams, shared by the SQLite state machine
// (src/fsm), which produces them, and the client gateway (src/server), which sends them. They
// live here because neither of those two folders may import the other.

/**
 * A value as SQLite stores it, and as parameters are bound. INTEGER is always a bigint (64-bit
 * exact), REAL a number, TEXT a string, BLOB a Uint8Array, NULL null. Rows use the same types:
 * the worker must run with safe integers on, so that 1 (INTEGER) and 1.0 (REAL) differ.
 */
export type SqlValue = bigint | number | string | Uint8Array | null;

/** One row: values in column order. */
export type SqlRow = readonly SqlValue[];

export interface Column {
    /** SQLite's column name (sqlite3_column_name), e.g. "id" or "1.0 + 0.5". */
    readonly name: string;
    /**
     * The declared type (sqlite3_column_decltype), e.g. "DATETIME", or null for an expression.
     * The gateway uses it for dqlite's DATETIME/DATE/TIMESTAMP (UNIXTIME, ISO8601) and BOOLEAN
     * row types.
     */
    readonly declType: string | null;
}

/** RESULT: the connection's state after the last statement. */
export interface ExecResult {
    /**
     * sqlite3_last_insert_rowid() of this session's connection (kept across statements); signed,
     * the wire carries a negative rowid as its two's complement.
     */
    readonly lastInsertId: bigint;
    /** sqlite3_changes() of the most recent INSERT, UPDATE or DELETE on the connection. */
    readonly rowsAffected: bigint;
}

/**
 * The rows of a query, pulled batch by batch. The gateway calls next() only after it has sent
 * the previous rows to the client and the socket has drained, so a slow client slows the worker
 * down instead of filling memory. A batch may have any size ≥ 1 (a few KiB of rows is a good
 * size); the gateway re-cuts batches into ~4 KiB ROWS messages. return() ends the query early
 * (client gone, INTERRUPT, server closing): it must release the statement (reset it) and resolve.
 * next() after the end, and return() after the end, twice, or after the session's close(), are
 * harmless.
 * A failure while stepping is a rejection of next() with the error classes above.
 */
export interface RowBatches {
    next(): Promise<IteratorResult<readonly SqlRow[], undefined>>;
    return(): Promise<IteratorResult<readonly SqlRow[], undefined>>;
}

export interface QueryResult {
    /** Column names and declared types; [] for a statement that returns no rows. */
    readonly columns: readonly Column[];
    readonly batches: RowBatches;
}

/** A prepared statement as the backend knows it. */
export interface Prepared {
    /**
     * The backend's own handle for the statement. The gateway keeps a separate per-connection
     * table of wire statement ids (lowest free slot first) that map to these handles.
     */
    readonly id: number;
    /** sqlite3_bind_parameter_count(). */
    readonly paramCount: number;
    /**
     * Byte offset (UTF-8) into the SQL where the unparsed tail starts, i.e. just past the first
     * statement and its `;`. The gateway uses it for the "nonempty statement tail" check and for
     * the schema-1 STMT reply.
     */
    readonly tailOffset: number;
}
