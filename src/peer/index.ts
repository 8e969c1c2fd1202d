// The peer transport's public surface (src/node composes it; STYLE.md §7.2).

export { PeerTransport } from './transport.js';
export type { AcceptInfo, PeerAddress, PeerTransportOptions, PeerTransportStats } from './transport.js';
export type { SnapshotOffer, SnapshotSink } from './snapshot.js';
export type { PeerLimits } from './limits.js';
export { DEFAULT_PEER_LIMITS } from './limits.js';
export type { LinkStats } from './link.js';
