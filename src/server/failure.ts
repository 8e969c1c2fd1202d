// The one table that turns errors into FAILURE responses (STYLE.md §7.4; codes from
// wire-protocol.md §7). The client has the inverse table.

import {
    BusyError, ClosedError, IndeterminateError, MembershipError, NotLeaderError, SqliteError, StorageError,
    TimeoutError, UnavailableError,
} from '../lib/errors.js';
import { FailureCode } from '../wire/index.js';

const SQLITE_IOERR = 10;

export interface Failure {
    readonly code: number;
    readonly message: string;
}

/** Maps an error from the backend to a FAILURE; `internal` is true for errors that are bugs. */
export function failureOf(error: unknown): Failure & { internal: boolean } {
    if (error instanceof SqliteError) return { code: error.sqliteCode, message: error.message, internal: false };
    if (error instanceof NotLeaderError) return { code: FailureCode.notLeader, message: 'not leader', internal: false };
    if (error instanceof IndeterminateError) {
        return { code: FailureCode.leadershipLost, message: 'leadership lost', internal: false };
    }
    if (error instanceof BusyError) return { code: FailureCode.busy, message: error.message, internal: false };
    if (error instanceof MembershipError) return { code: FailureCode.error, message: error.message, internal: false };
    if (error instanceof ClosedError || error instanceof UnavailableError || error instanceof TimeoutError) {
        return { code: FailureCode.notLeader, message: 'not leader', internal: false };
    }
    // A disk failure stops the node; the client sees SQLite's I/O error, and it is logged.
    if (error instanceof StorageError) return { code: SQLITE_IOERR, message: 'disk I/O error', internal: true };
    return { code: FailureCode.error, message: 'internal error', internal: true };
}
