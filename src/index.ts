// tqlite: a distributed, highly available SQLite for Node.js that speaks dqlite's protocol.
//
//     import { createNode } from 'tqlite';
//     const node = await createNode({ address: '127.0.0.1:9001', dataDir: './data' });
//     const other = await createNode({ address: '127.0.0.1:9002', dataDir: './data2',
//                                      join: ['127.0.0.1:9001'] });
//     ...
//     await node.close();      // hands over (role, leadership), then stops
//
// createNode() composes a Node (raft, log, SQLite worker, peer transport; src/node) with the
// client gateway (src/server) on the node's one address, and the role manager (src/app.ts:
// go-dqlite's join / roles / handover). The client library is `tqlite/client`.

import { RoleManager, validateRoleOptions, type RoleOptions } from './app.js';
import { Node, type ClusterTls, type NodeOptions, type NodeStatus } from './node/node.js';
import { Server } from './server/server.js';
import type { Backend } from './server/backend.js';
import { AbortError } from './lib/errors.js';

export type { ClusterTls, NodeOptions, NodeStatus, RoleOptions };

export interface CreateNodeOptions extends NodeOptions {
    /** Role management (voters, standbys, adjustment interval, handover bound). */
    readonly roles?: RoleOptions;
    /** Skip the handover on close (tests of abrupt stops). Default false. */
    readonly handover?: boolean;
    /**
     * Where the client gateway listens, when it differs from `address` (the address the cluster
     * knows this node by). Test-only: the fault tests put a proxy at `address`. Default: address.
     */
    readonly listenAddress?: string;
}

export interface TqliteNode {
    readonly id: bigint;
    readonly address: string;
    status(): NodeStatus;
    /** Digests and integrity of every database on this node. */
    inspect(): ReturnType<Node['inspect']>;
    /** Hands over (unless disabled), stops serving clients, then stops the node. Idempotent. */
    close(): Promise<void>;
    [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a node, its client gateway on `options.address`, and its role manager. */
export async function createNode(options: CreateNodeOptions): Promise<TqliteNode> {
    validateRoleOptions(options.roles); // before anything is opened
    const node = await Node.open(options);
    const backend: Backend = node;
    let server: Server | undefined;
    try {
        // Inside the try: a bad listen address throws from the constructor.
        // go-dqlite's cluster TLS is mutual: clients and peers present the cluster certificate.
        const t = options.tls;
        const tls = t === undefined ? undefined
            : { cert: t.cert, key: t.key, ca: t.ca, requestCert: true, rejectUnauthorized: true };
        const address = options.listenAddress ?? options.address;
        server = new Server({ backend, address, logger: options.logger, tls });
        await server.start();
        if (options.signal?.aborted === true) {
            throw new AbortError('node start aborted while the gateway started', { cause: options.signal.reason });
        }
    } catch (error) {
        await server?.close();
        await node.close();
        throw error;
    }
    const gateway = server;
    const roles = new RoleManager(node, options.join ?? [], options.roles, options.logger, options.tls);
    roles.start();
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
        closing ??= (async () => {
            if (options.handover !== false && node.state === 'open') await roles.handover();
            await roles.close();
            await gateway.close();
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
