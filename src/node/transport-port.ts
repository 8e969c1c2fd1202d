// The TransportPort over the PeerTransport (src/peer). Snapshot data is read from the node's
// snapshot store through `snapshotSource`, pulled only as fast as the network drains.

import type { PeerTransport } from '../peer/index.js';
import type { InstallSnapshot, Message } from '../raft/messages.js';
import type { Configuration, NodeId, SnapshotMeta } from '../raft/types.js';
import type { TransportPort } from './ports.js';

export class PeerTransportPort implements TransportPort {
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
        if (this.transport.state !== 'open') return;
        this.transport.setPeers(configuration.servers.map((s) => ({ id: s.id, address: s.address })));
    }
}
