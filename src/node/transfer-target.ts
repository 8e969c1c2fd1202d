// Whom a leader hands leadership to, when it closes (src/app.ts RoleManager.handover) or when
// its disk is full (disk-full.ts). Pure.

import type { NodeId, Role } from '../raft/types.js';

/**
 * Whom a leader hands leadership to: a voter other than itself that is `online` (for the
 * handover: it answers DESCRIBE; for the disk-full check: the same set as `contacted`) and that it
 * heard from recently (`contacted`: id → index its log is known to match up to), the most
 * up-to-date of them (the shortest catch-up before TimeoutNow; what dqlite's transfer to id 0
 * picks, among voters that can take it). Ties: configuration order.
 */
export function chooseTransferTarget(members: readonly { id: NodeId; role: Role }[], self: NodeId,
    online: { has(id: NodeId): boolean }, contacted: ReadonlyMap<NodeId, number>): NodeId | undefined {
    let best: { id: NodeId; match: number } | undefined;
    for (const m of members) {
        const match = contacted.get(m.id);
        if (m.id === self || m.role !== 'voter' || !online.has(m.id) || match === undefined) continue;
        if (best === undefined || match > best.match) best = { id: m.id, match };
    }
    return best?.id;
}
