// The TransportPort over the PeerTransport (src/peer). Snapshot data is read from the node's
// snapshot store through `snapshotSource`, pulled only as fast as the network drains.
//
// The address book is the configuration plus peers learned from their CONNECT: a node that
// was just added (or is being caught up) does not yet know the configuration it belongs to,
// but it must answer the leader, and messages travel on outbound connections only. A learned
// address is forgotten once the configuration names that node.

import type { PeerTransport } from '../peer/index.js';
import type { InstallSnapshot, Message } from '../raft/messages.js';
import type { Configuration, NodeId, SnapshotMeta } from '../raft/types.js';
import type { TransportPort } from './ports.js';

/** Peers outside the configuration whose addresses are kept (see learn()). */
export const LEARNED_MAX = 64;

export class PeerTransportPort implements TransportPort {
    private configuration: Configuration = { servers: [] };
    private readonly learned = new Map<NodeId, string>();

    constructor(
        private readonly transport: PeerTransport,
        private readonly snapshotSource: (meta: SnapshotMeta) => AsyncIterable<Uint8Array>,
    ) {}

    send(message: Message): void {
        this.transport.send(message);
    }

    async sendSnapshot(_to: NodeId, meta: SnapshotMeta, message: InstallSnapshot): Promise<boolean> {
        try {
            await this.transport.sendSnapshot(message, this.snapshotSource(meta));
            return true;
        } catch {
            return false;
        }
    }

    setPeers(configuration: Configuration): void {
        this.configuration = configuration;
        for (const s of configuration.servers) this.learned.delete(s.id);
        this.update();
    }

    /**
     * A peer introduced itself (CONNECT): keep its address until the configuration knows it (a
     * leader that adds this node must hear its answers first). At most LEARNED_MAX, the oldest
     * forgotten first: every CONNECT with a new id used to add one for good.
     */
    learn(id: NodeId, address: string): void {
        if (this.configuration.servers.some((s) => s.id === id)) return;
        if (this.learned.get(id) === address) return;
        this.learned.delete(id);
        this.learned.set(id, address);
        while (this.learned.size > LEARNED_MAX) this.learned.delete(this.learned.keys().next().value as NodeId);
        this.update();
    }

    private update(): void {
        if (this.transport.state !== 'open') return;
        const peers = this.configuration.servers.map((s) => ({ id: s.id, address: s.address }));
        for (const [id, address] of this.learned) peers.push({ id, address });
        this.transport.setPeers(peers);
    }
}
