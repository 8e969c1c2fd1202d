// This node's identity on disk: `info.yaml` in go-dqlite's app format ({ID, Address, Role}),
// written once when the node is first created and read back on every start, so a restarted
// node keeps its id. Every new node, the bootstrapping one included, draws its id from its
// address, the time and 8 random bytes (go-dqlite's GenerateID hashes address and time; its
// bootstrap node takes the fixed BootstrapID instead, which tqlite does not: see
// docs/design-deviations.md 1.15). Unique ids are what keeps clusters apart: the peer transport
// refuses a message addressed to another id, so a stale node of an old cluster that reaches an
// address this node now uses is refused — with a shared BootstrapID it would be heard as a peer.

import { createHash, randomBytes } from 'node:crypto';
import { StorageError } from '../lib/errors.js';
import { isNotFound, joinPath, type FileSystem } from '../lib/fs.js';
import type { NodeId } from '../raft/types.js';
import { decodeNodeStore, encodeNodeStore, type NodeInfo } from './node-store.js';

/**
 * go-dqlite's BootstrapID (raft_digest("1", 0)), the id of every go-dqlite cluster's first
 * node: never generated here (data directories made before tqlite stopped using it keep it).
 */
export const BOOTSTRAP_ID: NodeId = 0x2dc171858c3155ben;

/** A new node's id: a hash of its address, the time and 8 random bytes; never 0 or BOOTSTRAP_ID. */
export function generateId(address: string, nowNs: bigint, random: Uint8Array = randomBytes(8)): NodeId {
    const digest = createHash('sha256').update(`${address}\0${nowNs}\0`).update(random).digest();
    const id = digest.readBigUInt64LE(0);
    return id === 0n || id === BOOTSTRAP_ID ? 1n : id;
}

/** Reads info.yaml (one node, written in the node store's list-item layout minus the dash). */
export async function readInfo(fs: FileSystem, dataDir: string): Promise<NodeInfo | undefined> {
    let text: string;
    try {
        text = Buffer.from(await fs.readFile(joinPath(dataDir, 'info.yaml'))).toString('utf8');
    } catch (error) {
        if (isNotFound(error)) return undefined;
        throw error;
    }
    const asList = text.split('\n').filter((l) => l.trim() !== '')
        .map((l, i) => (i === 0 ? `- ${l}` : `  ${l.trimStart()}`)).join('\n');
    const [info] = decodeNodeStore(asList);
    if (info === undefined) throw new StorageError('info.yaml is empty', 'ERR_STORAGE_CORRUPT');
    return info;
}

export async function writeInfo(fs: FileSystem, dataDir: string, info: NodeInfo): Promise<void> {
    const body = encodeNodeStore([info]).split('\n').map((l) => l.replace(/^- |^ {2}/, '')).join('\n');
    const tmp = joinPath(dataDir, '.info.yaml.tmp');
    const file = await fs.open(tmp, 'replace');
    try {
        await file.write(0, Buffer.from(body, 'utf8'));
        await file.datasync();
    } finally {
        await file.close();
    }
    await fs.rename(tmp, joinPath(dataDir, 'info.yaml'));
    await fs.fsyncDir(dataDir);
}
