// What the raft driver needs from the pieces it drives. Each port is implemented by an adapter
// over the real module (src/log, src/peer, src/fsm) and by an in-memory fake in tests. Ports
// keep the driver free of file, socket and worker details, and keep the node's composition in
// one place (node.ts).

import type { Message, InstallSnapshot } from '../raft/messages.js';
import type { Configuration, Entry, HardState, LogIndex, NodeId, SnapshotMeta } from '../raft/types.js';

/** One Ready's writes, persisted in this order as one unit (see src/raft/ready.ts). */
export interface LogWrite {
    readonly snapshot: SnapshotMeta | undefined;
    readonly hardState: HardState | undefined;
    readonly truncateFrom: LogIndex | undefined;
    readonly entries: readonly Entry[];
}

export interface LogPort {
    /**
     * Makes `write` durable. Calls are issued in order and must complete in order; an
     * implementation may batch concurrent calls into one fsync (group commit). A rejection means
     * the disk failed: the node stops (never retried).
     */
    persist(write: LogWrite): Promise<void>;
    /** Drops stored entries up to and including `upTo` (after a snapshot at or past it). */
    compact(upTo: LogIndex): Promise<void>;
}

export interface TransportPort {
    /** Sends without blocking; a peer that cannot be reached is reported through onUnreachable. */
    send(message: Message): void;
    /**
     * Streams the state machine's snapshot `meta` to `to`, then sends `message`. Resolves true
     * when the data and the message were handed to the peer, false on failure.
     */
    sendSnapshot(to: NodeId, meta: SnapshotMeta, message: InstallSnapshot): Promise<boolean>;
    /** The current configuration's members (others than this node are dialed on demand). */
    setPeers(configuration: Configuration): void;
}

export interface StateMachinePort {
    /** Applies one committed COMMAND entry. Entries arrive once each, in index order. */
    apply(entry: Entry): Promise<void>;
    /** A committed entry that is not a command (barrier, configuration change) at `index`. */
    advance(index: LogIndex): Promise<void>;
    /**
     * Installs the snapshot `meta` received from the leader (its data already staged by the
     * transport). Resolves when the state machine holds exactly the snapshot's state.
     */
    installSnapshot(meta: SnapshotMeta): Promise<void>;
}
