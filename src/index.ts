// tqlite: a distributed, highly available SQLite for Node.js that speaks dqlite's protocol.
//
//     import { createNode } from 'tqlite';
//     const node = await createNode({ address: '127.0.0.1:9001', dataDir: './data' });
//     ...
//     await node.close();
//
// createNode() composes a Node (raft, log, SQLite worker, peer transport; src/node) with the
// client gateway (src/server) on the node's one address. The client library is `tqlite/client`.

import { Node, type NodeOptions, type NodeStatus } from './node/node.js';
import { Server } from './server/server.js';
import type { Backend } from './server/backend.js';

export type { NodeOptions, NodeStatus };

export interface TqliteNode {
    readonly id: bigint;
    readonly address: string;
    status(): NodeStatus;
    /** Digests and integrity of every database on this node. */
    inspect(): ReturnType<Node['inspect']>;
    /** Stops serving clients, then the node. Idempotent. */
    close(): Promise<void>;
    [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a node and its client gateway on `options.address`. */
export async function createNode(options: NodeOptions): Promise<TqliteNode> {
    const node = await Node.open(options);
    const backend: Backend = node;
    const server = new Server({ backend, address: options.address, logger: options.logger });
    try {
        await server.start();
    } catch (error) {
        await node.close();
        throw error;
    }
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
        closing ??= (async () => {
            await server.close();
            await node.close();
        })();
        return closing;
    };
    return {
        id: node.id,
        address: node.address,
        status: () => node.status(),
        inspect: () => node.inspect(),
        close,
        [Symbol.asyncDispose]: close,
    };
}
