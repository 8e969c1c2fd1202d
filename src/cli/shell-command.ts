// `tqlite shell`: SQL and the dqlite shell's dot-commands against any dqlite-protocol cluster.
//
//     tqlite shell -s 127.0.0.1:9001[,...] [--format tabular|json] DB [COMMAND]
//
// With COMMAND, it is split on ';' and each piece runs in turn (as the dqlite shell does);
// without, the shell is interactive, with history in ~/.tqlite_history. Every SQL line goes
// through QUERY_SQL (rows or none), on one connection, so BEGIN ... COMMIT spans lines.

import { writeFileSync, readFileSync, appendFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { connect, createAdminClient, type AdminClient, type Database } from '../client/index.js';
import { TqliteError } from '../lib/errors.js';
import { formatTable, formatValue, jsonReplacer, splitServers, tlsArgOptions, tlsFromArgs, tlsUsage } from './args.js';

export const shellUsage = `tqlite shell -s SERVERS [--format tabular|json] [--timeout MS] ${tlsUsage} DB [COMMAND]`;

const HELP = `.cluster                 members of the cluster (id|address|role)
.leader                  the leader's address
.remove ADDRESS          remove the member at ADDRESS
.describe ADDRESS        failure domain and weight of a node
.weight ADDRESS N        set a node's weight
.dump ADDRESS [DB]       write DB and DB-wal of that node to the current directory
.tables                  the tables of the database
.schema [TABLE]          CREATE statements
.timer on|off            print how long each command took
.help                    this text`;

interface ShellState {
    readonly servers: string[];
    readonly database: string;
    readonly format: 'tabular' | 'json';
    readonly db: Database;
    readonly admin: AdminClient;
    timer: boolean;
    readonly out: (text: string) => void;
}

async function runSql(state: ShellState, sql: string): Promise<void> {
    const rows = state.db.query(sql);
    const all = await rows.all();
    const columns = rows.columns ?? (all[0] === undefined ? [] : Object.keys(all[0]));
    if (columns.length === 0) return;
    if (state.format === 'json') {
        state.out(JSON.stringify(all, jsonReplacer));
        return;
    }
    state.out(formatTable(columns, all.map((r) => columns.map((c) => (r as Record<string, unknown>)[c]))));
}

async function runDot(state: ShellState, line: string): Promise<void> {
    const [command, ...args] = line.trim().split(/\s+/);
    const json = state.format === 'json';
    switch (command) {
        case '.help':
            state.out(HELP);
            return;
        case '.cluster': {
            const members = await state.admin.cluster();
            state.out(json ? JSON.stringify(members, jsonReplacer)
                : members.map((m) => `${m.id.toString(16)}|${m.address}|${m.role}`).join('\n'));
            return;
        }
        case '.leader': {
            const leader = await state.admin.leader();
            state.out(json ? JSON.stringify(leader ?? null, jsonReplacer) : leader?.address ?? '');
            return;
        }
        case '.remove': {
            const members = await state.admin.cluster();
            const member = members.find((m) => m.address === args[0]);
            if (member === undefined) throw new Error(`no node has address ${args[0] ?? ''}`);
            await state.admin.remove(member.id);
            return;
        }
        case '.describe': {
            const address = args[0] ?? '';
            const m = await state.admin.describe(address);
            state.out(json ? JSON.stringify({ address, ...m }, jsonReplacer)
                : `${address}|${m.failureDomain}|${m.weight}`);
            return;
        }
        case '.weight':
            await state.admin.weight(args[0] ?? '', BigInt(args[1] ?? '0'));
            return;
        case '.dump': {
            const files = await state.admin.dump(args[0] ?? '', args[1] ?? state.database);
            for (const file of files) writeFileSync(file.name, file.data);
            state.out('OK');
            return;
        }
        case '.tables':
            await runSql(state,
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name");
            return;
        case '.schema':
            await runSql(state, args[0] === undefined ? 'SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL'
                : `SELECT sql FROM sqlite_schema WHERE tbl_name = '${args[0].replace(/'/g, "''")}'`);
            return;
        case '.timer':
            state.timer = args[0] === 'on';
            return;
        default:
            throw new Error(`unknown command ${command ?? ''} (try .help)`);
    }
}

async function runLine(state: ShellState, line: string): Promise<boolean> {
    const text = line.trim();
    if (text === '') return true;
    const started = performance.now();
    try {
        if (text.startsWith('.')) await runDot(state, text);
        else await runSql(state, text);
        if (state.timer) state.out(`Run Time: ${((performance.now() - started) / 1000).toFixed(3)} s`);
        return true;
    } catch (error) {
        const code = error instanceof TqliteError ? ` (${error.code})` : '';
        process.stderr.write(`Error: ${error instanceof Error ? error.message : formatValue(error)}${code}\n`);
        return false;
    }
}

async function interactive(state: ShellState): Promise<void> {
    const historyPath = join(homedir(), '.tqlite_history');
    let history: string[] = [];
    try {
        history = readFileSync(historyPath, 'utf8').split('\n').filter((l) => l !== '').reverse().slice(0, 1000);
    } catch {
        // no history yet
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout, history, historySize: 1000,
        prompt: `${state.database}> ` });
    rl.prompt();
    for await (const line of rl) {
        if (line.trim() === '.quit' || line.trim() === '.exit') break;
        if (line.trim() !== '') {
            try {
                appendFileSync(historyPath, `${line}\n`);
            } catch {
                // history is best effort
            }
        }
        await runLine(state, line);
        rl.prompt();
    }
    rl.close();
}

export async function shellCommand(argv: string[]): Promise<number> {
    const { values, positionals } = parseArgs({
        args: argv,
        options: {
            servers: { type: 'string', short: 's' }, format: { type: 'string' }, timeout: { type: 'string' },
            ...tlsArgOptions,
        },
        allowPositionals: true,
    });
    const database = positionals[0];
    if (values.servers === undefined || database === undefined) {
        process.stderr.write(`usage: ${shellUsage}\n`);
        return 2;
    }
    const servers = splitServers(values.servers);
    const format = values.format === 'json' ? 'json' : 'tabular';
    const timeoutMs = values.timeout === undefined ? 10_000 : Number(values.timeout);
    const tls = tlsFromArgs(values);
    const db = await connect({ servers, database, poolSize: 1, timeoutMs, tls });
    const admin = createAdminClient({ servers, timeoutMs, tls });
    const state: ShellState = { servers, database, format, db, admin, timer: false,
        out: (text) => void process.stdout.write(`${text}\n`) };
    let ok = true;
    try {
        const command = positionals.slice(1).join(' ');
        if (command !== '') {
            for (const piece of command.split(';')) {
                if (piece.trim() !== '' && !(await runLine(state, piece))) ok = false;
            }
        } else {
            await interactive(state);
        }
    } finally {
        await db.close();
        await admin.close();
    }
    return ok ? 0 : 1;
}
