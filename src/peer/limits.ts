// The peer transport's limits (STYLE.md §7.7.4), with defaults and validate().

import { ConfigError } from '../lib/errors.js';

export interface PeerLimits {
    /** Largest frame body accepted; checked before any buffer is sized for it. */
    readonly frameBytesMax: number;
    /** Frames queued per peer while it is unreachable or not draining; the oldest are dropped. */
    readonly queueMessagesMax: number;
    readonly queueBytesMax: number;
    /** A dial that has not connected by then is abandoned (and retried with backoff). */
    readonly dialTimeoutMs: number;
    /** A connection whose peer does not drain a pending write for this long is cut. */
    readonly writeStallMs: number;
    /** Reconnect backoff: starts here, doubles per failed dial, capped at backoffMaxMs. */
    readonly backoffInitialMs: number;
    readonly backoffMaxMs: number;
    /** An inbound connection nothing arrived on for this long is closed (0: never). */
    readonly inboundIdleMs: number;
    /** Inbound (accepted) connections held at once; more are refused. */
    readonly inboundConnectionsMax: number;
    /** Snapshot data per chunk frame. */
    readonly snapshotChunkBytes: number;
    /** A snapshot transfer that makes no progress (no frame received, no drain) for this long fails. */
    readonly snapshotIdleTimeoutMs: number;
    /** The sender waits this long after the last chunk for the receiver's acknowledgement. */
    readonly snapshotAckTimeoutMs: number;
    /** Snapshots received at once; more are refused (the sender sees the refusal). */
    readonly snapshotsInboundMax: number;
}

export const DEFAULT_PEER_LIMITS: PeerLimits = {
    // One AppendEntries must fit: a write transaction's pages travel in a single entry.
    frameBytesMax: 256 * 1024 * 1024,
    queueMessagesMax: 4096,
    queueBytesMax: 64 * 1024 * 1024,
    dialTimeoutMs: 5000,
    writeStallMs: 10_000,
    backoffInitialMs: 100,
    backoffMaxMs: 1000,
    inboundIdleMs: 60_000,
    inboundConnectionsMax: 256,
    snapshotChunkBytes: 256 * 1024,
    snapshotIdleTimeoutMs: 30_000,
    snapshotAckTimeoutMs: 120_000,
    snapshotsInboundMax: 4,
};

/** Fills defaults and checks how the limits relate; throws ConfigError. */
export function resolvePeerLimits(partial: Partial<PeerLimits> = {}): PeerLimits {
    const limits: PeerLimits = { ...DEFAULT_PEER_LIMITS, ...partial };
    for (const [name, value] of Object.entries(limits)) {
        if (!Number.isSafeInteger(value) || value < 0) throw new ConfigError(`${name} must be a non-negative integer`);
    }
    const positive: (keyof PeerLimits)[] = ['frameBytesMax', 'queueMessagesMax', 'queueBytesMax', 'dialTimeoutMs',
        'backoffInitialMs', 'inboundConnectionsMax', 'snapshotChunkBytes', 'snapshotIdleTimeoutMs',
        'snapshotAckTimeoutMs'];
    for (const name of positive) {
        if (limits[name] === 0) throw new ConfigError(`${name} must be positive`);
    }
    if (limits.frameBytesMax > 0xffffffff) throw new ConfigError('frameBytesMax must fit in a u32');
    if (limits.backoffMaxMs < limits.backoffInitialMs) throw new ConfigError('backoffMaxMs < backoffInitialMs');
    if (limits.snapshotChunkBytes + 64 > limits.frameBytesMax) {
        throw new ConfigError('snapshotChunkBytes must leave room for the chunk header within frameBytesMax');
    }
    return limits;
}
