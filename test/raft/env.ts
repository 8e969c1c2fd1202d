// A tiny hand-driven cluster of RaftCores for the paper tests and the datadriven interaction
// tests (etcd's rafttest.InteractionEnv): in-memory durable storage per node, one FIFO queue of
// messages in flight, and nothing happens unless a command says so. Persisting a Ready can be
// split from taking it (`ready` then `persist`) to reproduce asynchronous disk writes.

import { SeededRandom } from '../../src/lib/random.js';
import type { Logger } from '../../src/lib/logger.js';
import type { InitialState, RaftConfig } from '../../src/raft/api.js';
import { bootstrap } from '../../src/raft/bootstrap.js';
import { decodeConfiguration } from '../../src/raft/configuration.js';
import { RaftCore } from '../../src/raft/core.js';
import { describeEntry, describeMessage, describeReady } from '../../src/raft/describe.js';
import type { Message } from '../../src/raft/messages.js';
import type { Ready } from '../../src/raft/ready.js';
import { EntryType } from '../../src/raft/types.js';
import type { Configuration, Entry, HardState, NodeId, Role, SnapshotMeta } from '../../src/raft/types.js';

export interface Storage {
    hardState: HardState;
    snapshot: SnapshotMeta | undefined;
    /** Entries after the snapshot, contiguous. */
    entries: Entry[];
}

export interface EnvNode {
    readonly id: NodeId;
    core: RaftCore;
    storage: Storage;
    /** Readies taken but not yet durable, oldest first. */
    unpersisted: Ready[];
    /** The applied state machine: every applied entry, in order (restored snapshots included). */
    applied: Entry[];
    appliedConfiguration: { index: number; configuration: Configuration };
    config: Partial<RaftConfig>;
    random: SeededRandom;
}

export interface AddOptions {
    readonly count: number;
    /** Roles of the bootstrap configuration by id; default every new node a voter. */
    readonly roles?: ReadonlyMap<NodeId, Role>;
    /** Start with empty storage (a node that will be added later). */
    readonly empty?: boolean;
    readonly config?: Partial<RaftConfig>;
}

export const address = (id: NodeId): string => `n${id}`;

export class Env {
    readonly nodes = new Map<NodeId, EnvNode>();
    queue: Message[] = [];
    output: string[] = [];
    /** Pairs "from,to" whose messages are dropped at delivery. */
    readonly cut = new Set<string>();
    private nextRequestId = 1;

    log(line: string): void {
        this.output.push(line);
    }

    takeOutput(): string {
        const text = this.output.join('\n');
        this.output = [];
        return text;
    }

    node(id: NodeId): EnvNode {
        const n = this.nodes.get(id);
        if (n === undefined) throw new Error(`no node ${id}`);
        return n;
    }

    core(id: NodeId): RaftCore {
        return this.node(id).core;
    }

    requestId(): number {
        return this.nextRequestId++;
    }

    addNodes(options: AddOptions): NodeId[] {
        const first = BigInt(this.nodes.size + 1);
        const ids: NodeId[] = [];
        for (let i = 0; i < options.count; i++) ids.push(first + BigInt(i));
        const configuration: Configuration = {
            servers: ids.map((id) => ({ id, address: address(id), role: options.roles?.get(id) ?? 'voter' })),
        };
        for (const id of ids) {
            const storage: Storage = options.empty === true
                ? { hardState: { term: 0, vote: 0n }, snapshot: undefined, entries: [] }
                : (() => {
                    const b = bootstrap(configuration);
                    return { hardState: b.hardState, snapshot: undefined, entries: [...b.entries] };
                })();
            const node: EnvNode = {
                id, storage, unpersisted: [], applied: [],
                appliedConfiguration: { index: 0, configuration: { servers: [] } },
                config: options.config ?? {}, random: new SeededRandom(Number(id)),
                core: undefined as unknown as RaftCore,
            };
            node.core = this.makeCore(node);
            this.nodes.set(id, node);
        }
        return ids;
    }

    private makeCore(node: EnvNode): RaftCore {
        const initial: InitialState = {
            hardState: node.storage.hardState,
            snapshot: node.storage.snapshot,
            entries: [...node.storage.entries],
            appliedIndex: node.storage.snapshot?.index ?? 0,
        };
        node.applied = node.applied.filter((e) => e.index <= initial.appliedIndex);
        const config = { id: node.id, random: node.random, logger: this.loggerFor(node.id), ...node.config };
        return new RaftCore(config, initial);
    }

    /** Crash and restart: everything not durable is lost, the state machine restarts from the snapshot. */
    restart(id: NodeId): void {
        const node = this.node(id);
        node.unpersisted = [];
        node.core = this.makeCore(node);
        this.log(`${id} restarted: term=${node.storage.hardState.term} vote=${node.storage.hardState.vote} `
            + `last=${node.storage.entries.at(-1)?.index ?? node.storage.snapshot?.index ?? 0}`);
    }

    private loggerFor(id: NodeId): Logger {
        const logger: Logger = {
            trace: () => undefined,
            debug: () => undefined,
            info: (fields, message) => {
                const rest = Object.entries(fields).filter(([k]) => k !== 'id')
                    .map(([k, v]) => `${k}=${String(v)}`).join(' ');
                this.log(`INFO ${id}: ${message ?? ''}${rest === '' ? '' : ` (${rest})`}`);
            },
            warn: () => undefined,
            error: () => undefined,
            child: () => logger,
        };
        return logger;
    }

    /** Takes a Ready: messages go on the wire at once, the write is queued. */
    takeReady(id: NodeId, quiet = false): Ready | undefined {
        const node = this.node(id);
        if (!node.core.hasReady()) return undefined;
        const ready = node.core.ready();
        if (!quiet) this.log(`> ${id} ${describeReady(ready).replace(/\n/g, `\n  `)}`);
        this.queue.push(...ready.messages);
        for (const s of ready.snapshotsToSend) {
            this.queue.push(s.message);
            node.core.reportSnapshot(s.to, true);
        }
        node.unpersisted.push(ready);
        return ready;
    }

    /** Completes the oldest `count` pending writes of `id` (all by default). */
    persist(id: NodeId, count = Infinity): void {
        const node = this.node(id);
        for (let i = 0; i < count && node.unpersisted.length > 0; i++) {
            const ready = node.unpersisted.shift() as Ready;
            this.write(node, ready);
            if (ready.lastEntry !== undefined) node.core.persisted(ready.lastEntry);
            if (ready.hardState !== undefined) node.core.hardStatePersisted(ready.hardState);
            if (ready.snapshot !== undefined) node.core.snapshotInstalled(ready.snapshot.index);
            this.queue.push(...ready.messagesAfterPersist);
            this.apply(node, ready);
        }
    }

    private write(node: EnvNode, ready: Ready): void {
        const s = node.storage;
        if (ready.snapshot !== undefined) {
            s.snapshot = ready.snapshot;
            s.entries = [];
            // The "state machine data" of a snapshot: the leader's applied prefix.
            const source = [...this.nodes.values()].find((n) => n.applied.some((e) => e.index === ready.snapshot?.index)
                || n.storage.snapshot?.index === ready.snapshot?.index);
            const upTo = ready.snapshot.index;
            node.applied = source === undefined ? [] : source.applied.filter((e) => e.index <= upTo);
            node.appliedConfiguration = {
                index: ready.snapshot.configurationIndex, configuration: ready.snapshot.configuration,
            };
        }
        if (ready.hardState !== undefined) s.hardState = ready.hardState;
        if (ready.truncateFrom !== undefined) {
            s.entries = s.entries.filter((e) => e.index < (ready.truncateFrom as number));
        }
        for (const e of ready.entries) {
            const last = s.entries.at(-1)?.index ?? s.snapshot?.index ?? 0;
            if (e.index !== last + 1) throw new Error(`storage gap: ${e.index} after ${last}`);
            s.entries.push(e);
        }
    }

    private apply(node: EnvNode, ready: Ready): void {
        for (const e of ready.committedEntries) {
            const last = node.applied.at(-1)?.index ?? node.storage.snapshot?.index ?? 0;
            if (e.index <= last) throw new Error(`node ${node.id} applied ${e.index} twice`);
            node.applied.push(e);
            if (e.type === EntryType.change) {
                node.appliedConfiguration = { index: e.index, configuration: decodeConfiguration(e.data) };
            }
        }
    }

    processReady(id: NodeId, quiet = false): boolean {
        const ready = this.takeReady(id, quiet);
        this.persist(id);
        return ready !== undefined;
    }

    /** Delivers every queued message addressed to one of `ids` (all when empty). */
    deliver(ids: readonly NodeId[] = [], quiet = false): number {
        const batch = this.queue;
        this.queue = [];
        let count = 0;
        for (const m of batch) {
            if (ids.length > 0 && !ids.includes(m.to)) {
                this.queue.push(m);
                continue;
            }
            const dropped = this.cut.has(`${m.from},${m.to}`) || !this.nodes.has(m.to);
            if (!quiet) this.log(`${dropped ? 'dropped' : 'deliver'} ${describeMessage(m)}`);
            if (dropped) continue;
            this.node(m.to).core.step(m);
            count++;
        }
        return count;
    }

    dropTo(ids: readonly NodeId[]): void {
        const keep: Message[] = [];
        for (const m of this.queue) {
            if (ids.length === 0 || ids.includes(m.to)) this.log(`dropped ${describeMessage(m)}`);
            else keep.push(m);
        }
        this.queue = keep;
    }

    /** Processes Readies and delivers messages until nothing moves. */
    stabilize(ids: readonly NodeId[] = [], quiet = false): void {
        const all = ids.length > 0 ? ids : [...this.nodes.keys()];
        for (let round = 0; round < 1000; round++) {
            let busy = false;
            for (const id of all) {
                if (this.node(id).unpersisted.length > 0) {
                    this.persist(id);
                    busy = true;
                }
                if (this.processReady(id, quiet)) busy = true;
            }
            const pending = this.queue.some((m) => all.includes(m.to));
            if (pending) {
                this.deliver(all, quiet);
                busy = true;
            }
            if (!busy) return;
        }
        throw new Error('stabilize did not converge');
    }

    partition(groups: readonly (readonly NodeId[])[]): void {
        this.cut.clear();
        for (const a of groups) {
            for (const b of groups) {
                if (a === b) continue;
                for (const x of a) for (const y of b) this.cut.add(`${x},${y}`);
            }
        }
    }

    /** Ticks `id` once per count, processing nothing. */
    tick(id: NodeId, count = 1): void {
        for (let i = 0; i < count; i++) this.core(id).tick();
    }

    describeLog(id: NodeId): string {
        const s = this.node(id).storage;
        const status = this.core(id).status();
        const parts = s.entries.map(describeEntry);
        if (s.snapshot !== undefined) parts.unshift(`snapshot ${s.snapshot.index}@${s.snapshot.term}`);
        return `${parts.join(', ')}`
            + ` (commit=${status.commitIndex} applied=${this.node(id).applied.at(-1)?.index ?? 0})`;
    }

    /** The first leader found, or undefined. */
    leader(): NodeId | undefined {
        for (const [id, n] of this.nodes) if (n.core.status().soft.role === 'leader') return id;
        return undefined;
    }
}
