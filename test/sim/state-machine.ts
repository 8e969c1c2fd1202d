// The simulated state machine: a tiny key/value register map whose state hash is the rolling
// hash chain of every entry it applied. Equal hashes at equal applied indexes mean the same
// entries were applied in the same order (state-machine safety); the map gives reads a value.
// A snapshot is the whole state, so installing one is exact and cheap.

import { assert } from '../../src/lib/assert.js';
import { EntryType } from '../../src/raft/types.js';
import type { Configuration, Entry } from '../../src/raft/types.js';
import { chainHash, entryHash } from './hash.js';

export interface SmSnapshot {
    readonly index: number;
    readonly term: number;
    /** The chain hash after applying `index`; equals the log's prefix hash there. */
    readonly stateHash: number;
    readonly kv: readonly (readonly [number, number])[];
    readonly configuration: Configuration;
    readonly configurationIndex: number;
}

/** A client command: the operation id (unique in a run) and the key it writes. */
export function encodeCommand(opId: number, key: number, length: number): Uint8Array {
    assert(length >= 8, 'a command has at least 8 bytes');
    const data = new Uint8Array(length);
    const view = new DataView(data.buffer);
    view.setUint32(0, opId, true);
    view.setUint32(4, key, true);
    for (let i = 8; i < length; i++) data[i] = (opId * 31 + i) & 0xff;
    return data;
}

export function decodeCommand(data: Uint8Array): { opId: number; key: number } {
    assert(data.length >= 8, `command of ${data.length} bytes`);
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return { opId: view.getUint32(0, true), key: view.getUint32(4, true) };
}

export const EMPTY_CONFIGURATION: Configuration = { servers: [] };

export class KvStateMachine {
    appliedIndex = 0;
    appliedTerm = 0;
    stateHash = 0;
    configuration: Configuration = EMPTY_CONFIGURATION;
    configurationIndex = 0;
    private kv = new Map<number, number>();

    apply(entry: Entry, decodeConfiguration: (data: Uint8Array) => Configuration): void {
        assert(entry.index === this.appliedIndex + 1, `apply ${entry.index} after ${this.appliedIndex}`);
        if (entry.type === EntryType.command) {
            const { opId, key } = decodeCommand(entry.data);
            this.kv.set(key, opId);
        } else if (entry.type === EntryType.change) {
            this.configuration = decodeConfiguration(entry.data);
            this.configurationIndex = entry.index;
        }
        this.stateHash = chainHash(this.stateHash, entryHash(entry.index, entry.term, entry.type, entry.data));
        this.appliedIndex = entry.index;
        this.appliedTerm = entry.term;
    }

    read(key: number): number {
        return this.kv.get(key) ?? 0;
    }

    take(): SmSnapshot {
        const kv = [...this.kv.entries()].sort((a, b) => a[0] - b[0]);
        return {
            index: this.appliedIndex,
            term: this.appliedTerm,
            stateHash: this.stateHash,
            kv,
            configuration: this.configuration,
            configurationIndex: this.configurationIndex,
        };
    }

    restore(snapshot: SmSnapshot): void {
        this.appliedIndex = snapshot.index;
        this.appliedTerm = snapshot.term;
        this.stateHash = snapshot.stateHash;
        this.kv = new Map(snapshot.kv);
        this.configuration = snapshot.configuration;
        this.configurationIndex = snapshot.configurationIndex;
    }
}
