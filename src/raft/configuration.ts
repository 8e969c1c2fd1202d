// Cluster configurations: the codec used for CHANGE entries (and snapshots), lookups, and the
// single-server transitions of dissertation §4.1.
//
// ENCODING (the one C-Raft/dqlite write, so a data directory stays readable by both):
//
//     u8   format            = 1
//     u64  n                 number of servers, little-endian (the field is unaligned)
//     n × {
//         u64  id            little-endian, all 64 bits used
//         text address       UTF-8 bytes followed by one NUL, no padding
//         u8   role          C-Raft's codes: standby 0, voter 1, spare 2
//     }
//     zero bytes up to the next multiple of 8
//
// The decoder is a gateway (STYLE.md §1): it rejects an unknown format, a truncated server,
// an unknown role, an empty address, duplicate ids or addresses, and non-zero padding, with a
// DecodeError. Everything inside the core trusts a decoded configuration.

import { assert } from '../lib/assert.js';
import { ByteWriter } from '../lib/bytes.js';
import { DecodeError, MembershipError } from '../lib/errors.js';
import type { MembershipChange } from './api.js';
import type { Configuration, NodeId, Role, ServerInfo } from './types.js';

export const CONFIGURATION_FORMAT = 1;

const ROLE_CODES: Readonly<Record<Role, number>> = { standby: 0, voter: 1, spare: 2 };
const ROLES_BY_CODE: readonly Role[] = ['standby', 'voter', 'spare'];

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

export const emptyConfiguration: Configuration = { servers: [] };

export function encodeConfiguration(configuration: Configuration): Uint8Array {
    validateConfiguration(configuration);
    const writer = new ByteWriter(64);
    writer.u8(CONFIGURATION_FORMAT);
    writer.u64(configuration.servers.length);
    for (const server of configuration.servers) {
        const address = utf8Encoder.encode(server.address);
        assert(!address.includes(0), 'address must not contain NUL');
        writer.u64(server.id);
        writer.bytes(address);
        writer.u8(0);
        writer.u8(ROLE_CODES[server.role]);
    }
    writer.pad8();
    return new Uint8Array(writer.finish());
}

export function decodeConfiguration(data: Uint8Array): Configuration {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    let offset = 0;
    const need = (count: number, what: string): void => {
        if (offset + count > data.length) throw new DecodeError(`configuration truncated in ${what}`);
    };
    need(1, 'format');
    const format = data[offset++];
    if (format !== CONFIGURATION_FORMAT) throw new DecodeError(`unknown configuration format ${format}`);
    need(8, 'count');
    const count = view.getBigUint64(offset, true);
    offset += 8;
    // Each server takes at least 11 bytes, which bounds the count before any allocation.
    if (count > BigInt(Math.floor((data.length - offset) / 11))) {
        throw new DecodeError(`configuration claims ${count} servers in ${data.length} bytes`);
    }
    const servers: ServerInfo[] = [];
    for (let i = 0; i < Number(count); i++) {
        need(8, 'id');
        const id = view.getBigUint64(offset, true);
        offset += 8;
        const nul = data.indexOf(0, offset);
        if (nul < 0) throw new DecodeError('configuration address without NUL');
        let address: string;
        try {
            address = utf8Decoder.decode(data.subarray(offset, nul));
        } catch (cause) {
            throw new DecodeError('configuration address is not UTF-8', { cause });
        }
        offset = nul + 1;
        need(1, 'role');
        const code = data[offset++] as number;
        const role = ROLES_BY_CODE[code];
        if (role === undefined) throw new DecodeError(`unknown role code ${code}`);
        servers.push({ id, address, role });
    }
    const padded = (offset + 7) & ~7;
    if (data.length !== padded) throw new DecodeError(`configuration has ${data.length - offset} trailing bytes`);
    for (let i = offset; i < data.length; i++) {
        if (data[i] !== 0) throw new DecodeError('configuration padding is not zero');
    }
    const configuration = { servers };
    const problem = configurationProblem(configuration);
    if (problem !== undefined) throw new DecodeError(problem);
    return configuration;
}

/** Why a configuration is malformed, or undefined when it is fine. */
export function configurationProblem(configuration: Configuration): string | undefined {
    const ids = new Set<NodeId>();
    const addresses = new Set<string>();
    for (const server of configuration.servers) {
        if (server.id <= 0n || server.id >= 1n << 64n) return `bad server id ${server.id}`;
        if (server.address.length === 0) return `server ${server.id} has an empty address`;
        if (ids.has(server.id)) return `duplicate server id ${server.id}`;
        if (addresses.has(server.address)) return `duplicate address ${server.address}`;
        if (!(server.role in ROLE_CODES)) return `bad role ${String(server.role)}`;
        ids.add(server.id);
        addresses.add(server.address);
    }
    return undefined;
}

export function validateConfiguration(configuration: Configuration): void {
    const problem = configurationProblem(configuration);
    assert(problem === undefined, `invalid configuration: ${problem}`);
}

export function findServer(configuration: Configuration, id: NodeId): ServerInfo | undefined {
    return configuration.servers.find((s) => s.id === id);
}

export function roleOf(configuration: Configuration, id: NodeId): Role | undefined {
    return findServer(configuration, id)?.role;
}

export function isVoter(configuration: Configuration, id: NodeId): boolean {
    return roleOf(configuration, id) === 'voter';
}

export function voterIds(configuration: Configuration): NodeId[] {
    return configuration.servers.filter((s) => s.role === 'voter').map((s) => s.id);
}

export function sameConfiguration(a: Configuration, b: Configuration): boolean {
    if (a.servers.length !== b.servers.length) return false;
    return a.servers.every((s, i) => {
        const t = b.servers[i];
        return t !== undefined && t.id === s.id && t.address === s.address && t.role === s.role;
    });
}

/**
 * The configuration after one single-server change (§4.1). Throws MembershipError when the
 * change is not allowed: adding an id or address that exists, touching an unknown id,
 * assigning the role a server already has, or leaving no voter.
 */
export function applyMembershipChange(configuration: Configuration, change: MembershipChange): Configuration {
    const current = findServer(configuration, change.id);
    let servers: ServerInfo[];
    switch (change.kind) {
        case 'add': {
            if (change.id <= 0n || change.id >= 1n << 64n) throw new MembershipError(`bad server id ${change.id}`);
            if (change.address.length === 0 || change.address.includes('\0')) {
                throw new MembershipError('bad address');
            }
            if (current !== undefined) throw new MembershipError(`server ${change.id} is already a member`);
            if (configuration.servers.some((s) => s.address === change.address)) {
                throw new MembershipError(`address ${change.address} is already in use`);
            }
            servers = [...configuration.servers, { id: change.id, address: change.address, role: 'spare' }];
            break;
        }
        case 'assign': {
            if (current === undefined) throw new MembershipError(`server ${change.id} is not a member`);
            if (current.role === change.role) {
                throw new MembershipError(`server ${change.id} is already a ${change.role}`);
            }
            servers = configuration.servers.map((s) => (s.id === change.id ? { ...s, role: change.role } : s));
            break;
        }
        case 'remove': {
            if (current === undefined) throw new MembershipError(`server ${change.id} is not a member`);
            servers = configuration.servers.filter((s) => s.id !== change.id);
            break;
        }
    }
    if (!servers.some((s) => s.role === 'voter')) throw new MembershipError('the change would leave no voter');
    return { servers };
}

/** `[1 voter a1, 2 spare a2]`: the canonical text of a configuration. */
export function describeConfiguration(configuration: Configuration): string {
    return `[${configuration.servers.map((s) => `${s.id} ${s.role} ${s.address}`).join(', ')}]`;
}
