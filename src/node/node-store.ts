// The node's store of known cluster members, in go-dqlite's YAML node store format, so that
// `dqlite -s file://<dataDir>/cluster.yaml` works against a tqlite node's data directory.
// go-dqlite marshals []NodeInfo{ID uint64, Address string, Role int} with yaml.v2:
//
//     - ID: 3297041220608546238
//       Address: 127.0.0.1:9001
//       Role: 0
//
// Role uses the wire codes (0 voter, 1 standby, 2 spare). An empty store is `[]`. The file is
// replaced atomically: temporary file → datasync → rename → fsync the directory.

import { assert } from '../lib/assert.js';
import { StorageError } from '../lib/errors.js';
import { isNotFound, joinPath, parentPath, type FileSystem } from '../lib/fs.js';
import type { NodeId, Role } from '../raft/types.js';

export interface NodeInfo {
    readonly id: NodeId;
    readonly address: string;
    readonly role: Role;
}

const ROLE_CODES: Readonly<Record<Role, number>> = { voter: 0, standby: 1, spare: 2 };
const ROLES: readonly Role[] = ['voter', 'standby', 'spare'];

function quoteIfNeeded(text: string): string {
    // yaml.v2 leaves host:port plain; quote anything that could be read back differently.
    if (/^[A-Za-z0-9@._\-[\]:/]+$/.test(text) && !/^[-?:[\]]/.test(text) && !/: /.test(text)) return text;
    return JSON.stringify(text);
}

export function encodeNodeStore(nodes: readonly NodeInfo[]): string {
    if (nodes.length === 0) return '[]\n';
    let out = '';
    for (const node of nodes) {
        assert(node.id > 0n && node.id < 2n ** 64n, 'node id must be a non-zero u64');
        out += `- ID: ${node.id}\n  Address: ${quoteIfNeeded(node.address)}\n  Role: ${ROLE_CODES[node.role]}\n`;
    }
    return out;
}

function unquote(value: string): string {
    const v = value.trim();
    if (v.startsWith('"')) return JSON.parse(v) as string;
    if (v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1).replace(/''/g, "'");
    return v;
}

/** Parses the subset of YAML go-dqlite writes (a list of ID/Address/Role maps). */
export function decodeNodeStore(text: string): NodeInfo[] {
    const trimmed = text.trim();
    if (trimmed === '' || trimmed === '[]') return [];
    const nodes: NodeInfo[] = [];
    let current: { id?: NodeId; address?: string; role?: Role } | undefined;
    const flush = (): void => {
        if (current === undefined) return;
        if (current.id === undefined || current.address === undefined) {
            throw new StorageError('cluster.yaml: an entry lacks ID or Address', 'ERR_STORAGE_CORRUPT');
        }
        nodes.push({ id: current.id, address: current.address, role: current.role ?? 'voter' });
    };
    for (const raw of text.split('\n')) {
        const line = raw.replace(/\s+#.*$/, '');
        if (line.trim() === '') continue;
        const item = /^-\s+(.*)$/.exec(line);
        const body = item !== null ? (item[1] as string) : line.trim();
        if (item !== null) {
            flush();
            current = {};
        }
        const field = /^([A-Za-z]+):\s*(.*)$/.exec(body);
        if (field === null || current === undefined) {
            throw new StorageError(`cluster.yaml: cannot parse line ${JSON.stringify(raw)}`, 'ERR_STORAGE_CORRUPT');
        }
        const [, key, value] = field as unknown as [string, string, string];
        if (key === 'ID') current.id = BigInt(unquote(value));
        else if (key === 'Address') current.address = unquote(value);
        else if (key === 'Role') {
            const role = ROLES[Number(unquote(value))];
            if (role === undefined) throw new StorageError(`cluster.yaml: bad role ${value}`, 'ERR_STORAGE_CORRUPT');
            current.role = role;
        }
    }
    flush();
    return nodes;
}

/** Reads the store; a missing file is an empty store. */
export async function readNodeStore(fs: FileSystem, path: string): Promise<NodeInfo[]> {
    try {
        return decodeNodeStore(Buffer.from(await fs.readFile(path)).toString('utf8'));
    } catch (error) {
        if (isNotFound(error)) return [];
        throw error;
    }
}

/** Replaces the store atomically and durably. */
export async function writeNodeStore(fs: FileSystem, path: string, nodes: readonly NodeInfo[]): Promise<void> {
    const dir = parentPath(path);
    const tmp = joinPath(dir, `.${path.slice(dir.length + 1)}.tmp`);
    const file = await fs.open(tmp, 'replace');
    try {
        await file.write(0, Buffer.from(encodeNodeStore(nodes), 'utf8'));
        await file.datasync();
    } finally {
        await file.close();
    }
    await fs.rename(tmp, path);
    await fs.fsyncDir(dir);
}
