// `tqlite cluster -s SERVERS status|add|assign|remove|transfer`: membership administration
// of any dqlite-protocol cluster.

import { parseArgs } from 'node:util';
import { createAdminClient, type NodeRole } from '../client/index.js';
import { ConfigError } from '../lib/errors.js';
import { jsonReplacer, parseU64, splitServers, tlsArgOptions, tlsFromArgs, tlsUsage } from './args.js';

export const clusterUsage = `tqlite cluster -s SERVERS [--json] status
tqlite cluster -s SERVERS add ID ADDRESS [--role voter|standby|spare]
tqlite cluster -s SERVERS assign ID voter|standby|spare
tqlite cluster -s SERVERS remove ID
tqlite cluster -s SERVERS transfer [ID]
(each also takes ${tlsUsage} for go-dqlite's cluster TLS)`;

function role(value: string | undefined): NodeRole {
    if (value === 'voter' || value === 'standby' || value === 'spare') return value;
    throw new ConfigError(`role must be voter, standby or spare, not ${value ?? 'nothing'}`);
}

function id(value: string | undefined): bigint {
    const parsed = parseU64(value?.startsWith('0x') === true ? BigInt(value).toString() : value, 'ID');
    if (parsed === undefined) throw new ConfigError('an ID is needed');
    return parsed;
}

export async function clusterCommand(argv: string[]): Promise<number> {
    const { values, positionals } = parseArgs({
        args: argv,
        options: {
            servers: { type: 'string', short: 's' }, role: { type: 'string' }, json: { type: 'boolean' },
            ...tlsArgOptions,
        },
        allowPositionals: true,
    });
    const [action, ...rest] = positionals;
    if (values.servers === undefined || action === undefined) {
        process.stderr.write(`usage:\n${clusterUsage}\n`);
        return 2;
    }
    const tls = tlsFromArgs(values);
    const admin = createAdminClient({ servers: splitServers(values.servers), timeoutMs: 30_000, tls });
    try {
        switch (action) {
            case 'status': {
                const [members, leader] = await Promise.all([admin.cluster(), admin.leader()]);
                const rows = await Promise.all(members.map(async (m) => {
                    const meta = await admin.describe(m.address, { timeoutMs: 2_000 }).catch(() => undefined);
                    return { ...m, leader: m.id === leader?.id, online: meta !== undefined,
                        failureDomain: meta?.failureDomain, weight: meta?.weight };
                }));
                if (values.json === true) {
                    process.stdout.write(`${JSON.stringify(rows, jsonReplacer)}\n`);
                } else {
                    for (const r of rows) {
                        const flags = `${r.leader ? 'leader' : '      '}  ${r.online ? 'online' : 'OFFLINE'}`;
                        const idText = r.id.toString(16).padStart(16, '0');
                        process.stdout.write(`${idText}  ${r.address.padEnd(21)}  ${r.role.padEnd(7)}  ${flags}\n`);
                    }
                }
                return 0;
            }
            case 'add':
                await admin.add(id(rest[0]), rest[1] ?? '',
                    { role: values.role === undefined ? 'spare' : role(values.role) });
                return 0;
            case 'assign':
                await admin.assign(id(rest[0]), role(rest[1]));
                return 0;
            case 'remove':
                await admin.remove(id(rest[0]));
                return 0;
            case 'transfer':
                await admin.transfer(rest[0] === undefined ? 0n : id(rest[0]));
                return 0;
            default:
                process.stderr.write(`unknown action ${action}\nusage:\n${clusterUsage}\n`);
                return 2;
        }
    } finally {
        await admin.close();
    }
}
