// The core's output, and the one place where the driver contract is written down.
//
// THE DRIVER CONTRACT. After any input (tick, step, propose, ...) the driver calls
// `core.ready()`, which hands over everything the core produced since the last call and marks
// it as taken (there is no separate advance()). For each Ready, in this order:
//
//  1. Send `messages` now. They never depend on local durability (the leader may replicate its
//     entries in parallel with its own append, dissertation §10.2.1).
//  2. Persist, in one ordered write: `hardState` (if any), then `snapshot` (if any: install it,
//     i.e. replace the state machine and reset the log to it), then `truncateFrom` (if any: drop
//     every stored entry with index ≥ truncateFrom), then `entries` (append). The hard state goes
//     first so that a crash never leaves a stored log (or snapshot) of a term above the stored
//     term, which the core refuses at construction (sim seeds 5000804, 7001248: a new server's
//     first message, an InstallSnapshot, crashed between the two). Readies are persisted in the
//     order they were produced. When a Ready's writes are durable:
//       a. call `core.persisted(r.lastEntry)` when `lastEntry` is set (the index and term of the
//          last entry of `entries`), `core.snapshotInstalled(r.snapshot.index)` if it had a
//          snapshot — the core checks that the log still holds that entry before counting it —
//          and `core.hardStatePersisted(r.hardState)` if it had a hard state (a one-voter
//          cluster elects no leader without this call);
//       b. then send `messagesAfterPersist`: every response (votes, append acknowledgements,
//          which promise that what they acknowledge is durable) and every real (non-pre)
//          RequestVote, which must not leave before the candidate's new term and self-vote are
//          durable (otherwise a crash could let it vote twice in that term).
//  3. Apply `committedEntries` to the state machine in order. They are committed by a quorum
//     and durable locally; they are handed out exactly once, in index order.
//  4. Release `readStates` once the state machine has applied up to their index.
//  5. Settle `outcomes` (membership changes, transfers, failed reads) as they say.
//  6. Stream a snapshot to each peer listed in `snapshotsToSend`, then send the
//     InstallSnapshot message given there (`message`); report the end of the transfer with
//     `core.reportSnapshot(to, ok)`.
//
// Construction: `new RaftCore(config, initialState)` (core.ts); a brand-new cluster's first
// node writes `bootstrap(configuration)` (bootstrap.ts) to its empty storage before that.
//
// A Ready with `isEmpty` true needs no work. `softState` is present when the role, the leader,
// the term or the configuration changed; the driver uses it to fail pending proposals on
// leadership loss.

import type { InstallSnapshot, Message } from './messages.js';
import type { Configuration, Entry, HardState, LogIndex, NodeId, SnapshotMeta, Term } from './types.js';

export type RaftRole = 'follower' | 'preCandidate' | 'candidate' | 'leader';

export interface SoftState {
    readonly role: RaftRole;
    readonly term: Term;
    /** 0n when unknown. */
    readonly leader: NodeId;
    /** The configuration in effect (the last appended configuration entry, §4.1). */
    readonly configuration: Configuration;
}

export interface ReadState {
    readonly requestId: number;
    /** The read may be served once the state machine applied up to this index. */
    readonly index: LogIndex;
}

export type Outcome =
    | { readonly kind: 'change'; readonly requestId: number; readonly ok: true; readonly index: LogIndex }
    | { readonly kind: 'change'; readonly requestId: number; readonly ok: false; readonly error: Error }
    | { readonly kind: 'transfer'; readonly requestId: number; readonly ok: boolean; readonly error?: Error }
    | { readonly kind: 'read'; readonly requestId: number; readonly ok: false; readonly error: Error };

export interface SnapshotToSend {
    readonly to: NodeId;
    readonly meta: SnapshotMeta;
    /** Added: the message to send once the data was streamed (to === `to`, meta === `meta`). */
    readonly message: InstallSnapshot;
}

export interface Ready {
    readonly isEmpty: boolean;
    readonly softState: SoftState | undefined;
    readonly hardState: HardState | undefined;
    readonly snapshot: SnapshotMeta | undefined;
    readonly truncateFrom: LogIndex | undefined;
    readonly entries: readonly Entry[];
    readonly lastEntry: { readonly index: LogIndex; readonly term: Term } | undefined;
    readonly messages: readonly Message[];
    readonly messagesAfterPersist: readonly Message[];
    readonly committedEntries: readonly Entry[];
    readonly readStates: readonly ReadState[];
    readonly outcomes: readonly Outcome[];
    readonly snapshotsToSend: readonly SnapshotToSend[];
}
