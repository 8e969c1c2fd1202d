// The cluster admin client (go-dqlite's client package): membership and node calls.
//
//   on the leader (found as in §8.1; retried on a new leader after "not leader", which means the
//   change was not made):  leader, cluster, add, assign, remove, transfer
//   on one given node (handshake only, a fresh connection per call, as the dqlite shell does):
//                          describe, weight, dump
//
// Calls on the leader share one connection, one at a time. Lifecycle as Database: close() is
// idempotent, rejects calls in progress with ClosedError, and leaves no socket or timer behind.

import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls';
import { systemClock, TimerSet } from '../lib/clock.js';
import type { Clock } from '../lib/clock.js';
import { ClosedError, ConfigError, InvalidArgumentError, NotLeaderError, UnavailableError } from '../lib/errors.js';
import { Lifecycle } from '../lib/lifecycle.js';
import { silentLogger } from '../lib/logger.js';
import type { Logger } from '../lib/logger.js';
import { DEFAULT_BODY_BYTES_MAX, RoleCode } from '../wire/index.js';
import type { FileEntry, Request, ResponseKind, ResponseOf } from '../wire/index.js';
import type { Connection } from './connection.js';
import { Connector } from './connector.js';
import { ScopeOwner, sleep } from './scope.js';
import type { CallOptions, CallScope } from './scope.js';

export type NodeRole = 'voter' | 'standby' | 'spare';

export interface NodeInfo {
    readonly id: bigint;
    readonly address: string;
    readonly role: NodeRole;
}

export interface NodeMetadata {
    readonly failureDomain: bigint;
    readonly weight: bigint;
}

export interface AdminOptions {
    readonly servers: readonly string[];
    /** Default deadline of every call, leader discovery included. Default 30 s. */
    readonly timeoutMs?: number;
    readonly dialTimeoutMs?: number;
    readonly probeTimeoutMs?: number;
    readonly bodyBytesMax?: number;
    readonly logger?: Logger;
    readonly clock?: Clock;
    /** Dial the nodes over TLS with these options (see ConnectOptions.tls). */
    readonly tls?: TlsConnectionOptions;
}

const ROLE_NAMES: readonly NodeRole[] = ['voter', 'standby', 'spare'];

function roleName(code: number | undefined): NodeRole {
    return ROLE_NAMES[code ?? -1] ?? 'spare';
}

function roleCode(role: NodeRole): number {
    const code = RoleCode[role];
    if (code === undefined) throw new InvalidArgumentError(`unknown role ${String(role)}`);
    return code;
}

function nodeId(id: bigint | number): bigint {
    const value = typeof id === 'number' ? BigInt(id) : id;
    if (typeof value !== 'bigint' || value < 0n || value >= 2n ** 64n) {
        throw new InvalidArgumentError(`bad node id ${String(id)}`);
    }
    return value;
}

export function createAdminClient(options: AdminOptions): AdminClient {
    return new AdminClient(options);
}

export class AdminClient {
    private readonly lifecycle = new Lifecycle('AdminClient');
    private readonly owner: ScopeOwner;
    private readonly connector: Connector;
    private leaderConnection: Connection | undefined;
    private chain: Promise<unknown> = Promise.resolve();

    constructor(options: AdminOptions) {
        if (!Array.isArray(options.servers) || options.servers.length === 0) {
            throw new ConfigError('servers must list at least one node address');
        }
        const timers = new TimerSet(options.clock ?? systemClock, true);
        this.owner = new ScopeOwner(timers, options.timeoutMs ?? 30_000);
        this.connector = new Connector({
            servers: options.servers,
            timers,
            logger: options.logger ?? silentLogger,
            bodyBytesMax: options.bodyBytesMax ?? DEFAULT_BODY_BYTES_MAX,
            dialTimeoutMs: options.dialTimeoutMs ?? 5_000,
            probeTimeoutMs: options.probeTimeoutMs ?? 10_000,
            tls: options.tls,
        });
        this.lifecycle.moveTo('open');
    }

    /** The leader as the leader itself reports it, or undefined if it knows none. */
    async leader(options?: CallOptions): Promise<{ id: bigint; address: string } | undefined> {
        const server = await this.onLeader({ kind: 'leader' }, 'server', options);
        return server.address === '' ? undefined : { id: server.id, address: server.address };
    }

    /** Every node of the configuration, in raft's order, with its role. */
    async cluster(options?: CallOptions): Promise<NodeInfo[]> {
        const servers = await this.onLeader({ kind: 'cluster', format: 1n }, 'servers', options);
        return servers.servers.map((s) => ({ id: s.id, address: s.address, role: roleName(s.role) }));
    }

    /** Adds a node (as a spare, dqlite's rule), then gives it `role` if that is not spare. */
    async add(id: bigint | number, address: string, options?: CallOptions & { role?: NodeRole }): Promise<void> {
        const node = nodeId(id);
        await this.onLeader({ kind: 'add', id: node, address }, 'empty', options);
        if (options?.role !== undefined && options.role !== 'spare') await this.assign(node, options.role, options);
    }

    async assign(id: bigint | number, role: NodeRole, options?: CallOptions): Promise<void> {
        await this.onLeader({ kind: 'assign', id: nodeId(id), role: roleCode(role) }, 'empty', options);
    }

    async remove(id: bigint | number, options?: CallOptions): Promise<void> {
        await this.onLeader({ kind: 'remove', id: nodeId(id) }, 'empty', options);
    }

    /** Moves leadership to node `id` (0 lets raft pick one). */
    async transfer(id: bigint | number, options?: CallOptions): Promise<void> {
        await this.onLeader({ kind: 'transfer', id: nodeId(id) }, 'empty', options);
    }

    /** The failure domain and weight of the node at `address`. */
    async describe(address: string, options?: CallOptions): Promise<NodeMetadata> {
        const metadata = await this.onNode(address, { kind: 'describe', format: 0n }, 'metadata', options);
        return { failureDomain: metadata.failureDomain, weight: metadata.weight };
    }

    /** Sets the weight of the node at `address` (kept in memory by the node). */
    async weight(address: string, weight: bigint | number, options?: CallOptions): Promise<void> {
        await this.onNode(address, { kind: 'weight', weight: nodeId(weight) }, 'empty', options);
    }

    /** The files of `database` on the node at `address`: the database image and its WAL. */
    async dump(address: string, database: string, options?: CallOptions): Promise<FileEntry[]> {
        const files = await this.onNode(address, { kind: 'dump', name: database }, 'files', options);
        return [...files.files];
    }

    close(): Promise<void> {
        return this.lifecycle.close(async () => {
            this.owner.close(new ClosedError('admin client is closed'));
            const connection = this.leaderConnection;
            this.leaderConnection = undefined;
            await connection?.close();
        });
    }

    async [Symbol.asyncDispose](): Promise<void> {
        await this.close();
    }

    private onNode<K extends ResponseKind>(
        address: string, request: Request, expect: K, options: CallOptions | undefined,
    ): Promise<ResponseOf<K>> {
        this.lifecycle.assertOpen();
        return this.owner.run(options, async (scope) => {
            const connection = await this.connector.connectDirect(address, scope.signal);
            try {
                return await connection.request(request, expect, scope.signal);
            } finally {
                await connection.close();
            }
        });
    }

    /** One call at a time on the leader connection, retried on a new leader where safe. */
    private onLeader<K extends ResponseKind>(
        request: Request, expect: K, options: CallOptions | undefined,
    ): Promise<ResponseOf<K>> {
        this.lifecycle.assertOpen();
        const run = this.chain.then(() => this.owner.run(options, (scope) => this.leaderCall(request, expect, scope)));
        this.chain = run.catch(() => undefined);
        return run;
    }

    private async leaderCall<K extends ResponseKind>(
        request: Request, expect: K, scope: CallScope,
    ): Promise<ResponseOf<K>> {
        for (let attempt = 0; ; attempt++) {
            let connection = this.leaderConnection;
            if (connection === undefined || !connection.isOpen) {
                connection = await this.connector.connectLeader(scope.signal);
                if (this.lifecycle.isStopping) {
                    await connection.close();
                    throw new ClosedError('admin client is closed');
                }
                this.leaderConnection = connection;
            }
            try {
                return await connection.request(request, expect, scope.signal);
            } catch (error) {
                const retry = error instanceof NotLeaderError || error instanceof UnavailableError;
                if (error instanceof NotLeaderError || !connection.isOpen) {
                    this.connector.forgetLeader(connection.address);
                    this.leaderConnection = undefined;
                    await connection.close();
                }
                if (!retry || scope.signal.aborted) throw error;
                await sleep(this.owner.timers, Math.min(100 * 2 ** attempt, 1000), scope.signal);
            }
        }
    }
}
