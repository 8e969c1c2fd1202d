// The messages raft nodes exchange (Raft paper §5, dissertation §3–§6). The peer transport
// encodes exactly these; the simulator delivers them. A heartbeat is an AppendEntries with no
// entries. Snapshot data never travels inside a message: InstallSnapshot carries only the
// metadata, and the driver streams the data in chunks (DESIGN.md §3.4) before stepping it.

import type { Entry, LogIndex, NodeId, SnapshotMeta, Term } from './types.js';

interface Envelope {
    /** The sender's current term. */
    readonly term: Term;
    readonly from: NodeId;
    readonly to: NodeId;
}

export interface AppendEntries extends Envelope {
    readonly type: 'appendEntries';
    readonly prevIndex: LogIndex;
    readonly prevTerm: Term;
    readonly entries: readonly Entry[];
    /** The leader's commit index. */
    readonly commit: LogIndex;
    /**
     * Read-confirmation round this message belongs to (0 = none). The follower echoes it; the
     * leader releases ReadIndex requests once a quorum echoed a round ≥ theirs (§6.4).
     */
    readonly readRound: number;
}

export interface AppendEntriesResponse extends Envelope {
    readonly type: 'appendEntriesResponse';
    /** False when the follower's log does not contain prevIndex/prevTerm. */
    readonly success: boolean;
    /**
     * On success: the index of the last entry known to match the leader's (and durable on the
     * follower, since the response is sent only after the append is persisted).
     * On rejection: the rejected prevIndex.
     */
    readonly index: LogIndex;
    /**
     * Fast back-off hint on rejection (etcd's scheme): hintIndex is the largest index j ≤
     * min(prevIndex, follower's last index) whose term is ≤ the rejected prevTerm, and hintTerm
     * is that term (0 if none is known). The leader then probes from its own largest index
     * ≤ hintIndex with term ≤ hintTerm, skipping a whole conflicting term at once.
     */
    readonly hintIndex: LogIndex;
    readonly hintTerm: Term;
    readonly readRound: number;
}

export interface RequestVote extends Envelope {
    readonly type: 'requestVote';
    readonly lastIndex: LogIndex;
    readonly lastTerm: Term;
    /** A pre-vote (§9.6): `term` is the term the candidate would use; nobody changes state. */
    readonly preVote: boolean;
    /** Sent because of a leadership transfer (TimeoutNow): overrides leader stickiness. */
    readonly transfer: boolean;
}

export interface RequestVoteResponse extends Envelope {
    readonly type: 'requestVoteResponse';
    readonly granted: boolean;
    readonly preVote: boolean;
}

/** Leadership transfer (§3.10): the target starts an election at once, ignoring stickiness. */
export interface TimeoutNow extends Envelope {
    readonly type: 'timeoutNow';
}

/**
 * Sent by the leader's driver after it streamed the snapshot's data to the follower; stepped
 * into the follower's core only once the data was received and verified. The follower answers
 * with an AppendEntriesResponse (success, index = the snapshot's index, or its commit index if
 * that is already past it), released after the snapshot is installed (messagesAfterPersist).
 */
export interface InstallSnapshot extends Envelope {
    readonly type: 'installSnapshot';
    readonly meta: SnapshotMeta;
}

export type Message =
    | AppendEntries
    | AppendEntriesResponse
    | RequestVote
    | RequestVoteResponse
    | TimeoutNow
    | InstallSnapshot;

export type MessageType = Message['type'];
