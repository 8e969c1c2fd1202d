// Goal: pin down the core's exact behaviour in the interleavings that broke real raft
// implementations (TESTING.md §1.2, §8(a)), as readable golden scripts.
// Method: etcd-style datadriven tests. Each test/raft/testdata/*.txt file is a script of
// commands; under each command, after `----`, is the expected output (describe() text of
// every Ready and delivered message, plus the core's INFO log lines). The Env harness runs the
// cores with an explicit message queue and explicit persistence, so nothing happens unless a
// command says so. UPDATE=1 rewrites the expected output: review the diff before committing.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MembershipChange } from '../../src/raft/api.js';
import { describeConfiguration } from '../../src/raft/configuration.js';
import type { NodeId, Role } from '../../src/raft/types.js';
import { address, Env } from './env.js';

const here = dirname(fileURLToPath(import.meta.url));
// Compiled tests live in build-*/test/raft; the scripts stay in the source tree.
const dataDir = resolve(here, '..', '..', '..', 'test', 'raft', 'testdata');

interface Case {
    /** Comment and blank lines before the command. */
    readonly preamble: string[];
    readonly command: string;
    readonly expected: string;
    readonly line: number;
}

function parse(text: string, file: string): Case[] {
    const lines = text.split('\n');
    const cases: Case[] = [];
    let preamble: string[] = [];
    for (let i = 0; i < lines.length; i++) {
        const line = lines[i] as string;
        if (line.trim() === '' || line.startsWith('#')) {
            preamble.push(line);
            continue;
        }
        if (lines[i + 1] !== '----') throw new Error(`${file}:${i + 1}: expected ---- after "${line}"`);
        const output: string[] = [];
        let j = i + 2;
        while (j < lines.length && (lines[j] as string) !== '') output.push(lines[j++] as string);
        cases.push({ preamble, command: line, expected: output.join('\n'), line: i + 1 });
        preamble = [];
        i = j; // the blank line that ends the output belongs to this case
    }
    if (preamble.some((l) => l.trim() !== '')) cases.push({ preamble, command: '', expected: '', line: lines.length });
    return cases;
}

function render(cases: readonly { preamble: string[]; command: string; output: string }[]): string {
    const out: string[] = [];
    for (const c of cases) {
        out.push(...c.preamble);
        if (c.command === '') continue;
        out.push(c.command, '----');
        if (c.output !== '') out.push(c.output);
        out.push('');
    }
    while (out.length > 0 && out.at(-1) === '') out.pop();
    return out.join('\n') + '\n';
}

interface Args {
    readonly positional: string[];
    readonly options: Map<string, string>;
}

function parseArgs(words: string[]): Args {
    const positional: string[] = [];
    const options = new Map<string, string>();
    for (const w of words) {
        const eq = w.indexOf('=');
        if (eq > 0) options.set(w.slice(0, eq), w.slice(eq + 1));
        else positional.push(w);
    }
    return { positional, options };
}

const ids = (words: readonly string[]): NodeId[] => words.map((w) => BigInt(w));
const idList = (text: string | undefined): NodeId[] => (text === undefined || text === '' ? [] : ids(text.split(',')));

function num(text: string | undefined, fallback: number): number {
    if (text === undefined) return fallback;
    const n = Number(text);
    if (!Number.isInteger(n)) throw new Error(`bad number ${text}`);
    return n;
}

function run(env: Env, command: string): string {
    const words = command.trim().split(/\s+/);
    const name = words[0] as string;
    const { positional, options } = parseArgs(words.slice(1));
    const first = positional[0] === undefined ? 0n : BigInt(positional[0]);
    try {
        execute(env, name, positional, options, first);
    } catch (error) {
        const code = (error as { code?: string }).code ?? 'Error';
        env.log(`error: ${code}: ${(error as Error).message}`);
    }
    return env.takeOutput();
}

function execute(env: Env, name: string, positional: string[], options: Map<string, string>, first: NodeId): void {
    switch (name) {
        case 'add-nodes': {
            const roles = new Map<NodeId, Role>();
            for (const id of idList(options.get('standby'))) roles.set(id, 'standby');
            for (const id of idList(options.get('spare'))) roles.set(id, 'spare');
            const config: Record<string, unknown> = {};
            if (options.has('prevote')) config['preVote'] = options.get('prevote') === 'true';
            if (options.has('checkquorum')) config['checkQuorum'] = options.get('checkquorum') === 'true';
            if (options.has('election')) config['electionTimeoutTicks'] = num(options.get('election'), 10);
            if (options.has('heartbeat')) config['heartbeatIntervalTicks'] = num(options.get('heartbeat'), 1);
            if (options.has('inflight')) config['inflightMessagesMax'] = num(options.get('inflight'), 64);
            if (options.has('max-bytes')) config['messageBytesMax'] = num(options.get('max-bytes'), 1 << 20);
            if (options.has('catchup-rounds')) config['catchUpRoundsMax'] = num(options.get('catchup-rounds'), 10);
            if (options.has('catchup-ticks')) config['catchUpRoundTicksMax'] = num(options.get('catchup-ticks'), 10);
            const added = env.addNodes({
                count: num(positional[0], 1), roles, empty: options.get('empty') === 'true', config,
            });
            const conf = env.core(added[0] as NodeId).status().soft.configuration;
            env.log(`added ${added.join(',')}: conf=${describeConfiguration(conf)}`);
            return;
        }
        case 'campaign':
            env.core(first).campaignNow();
            return;
        case 'tick':
            env.tick(first, num(positional[1], 1));
            return;
        case 'tick-heartbeat':
            env.tick(first, env.node(first).config.heartbeatIntervalTicks ?? 1);
            return;
        case 'tick-election': {
            const t = env.node(first).config.electionTimeoutTicks ?? 10;
            env.tick(first, env.core(first).status().soft.role === 'leader' ? t : 2 * t - 1);
            return;
        }
        case 'deliver':
            env.deliver(ids(positional));
            return;
        case 'drop':
            env.dropTo(ids(positional));
            return;
        case 'partition': {
            const groups = positional.join(' ').split('|')
                .map((g) => ids(g.trim().split(/\s+/).filter((w) => w !== '')));
            env.partition(groups);
            return;
        }
        case 'heal':
            env.cut.clear();
            return;
        case 'propose': {
            const r = env.core(first).propose(new TextEncoder().encode(positional[1] ?? ''));
            env.log(`proposed ${r.index}@${r.term}`);
            return;
        }
        case 'barrier': {
            const r = env.core(first).barrier();
            env.log(`barrier ${r.index}@${r.term}`);
            return;
        }
        case 'process-ready':
            for (const id of positional.length > 0 ? ids(positional) : [...env.nodes.keys()]) env.processReady(id);
            return;
        case 'ready':
            for (const id of ids(positional)) env.takeReady(id);
            return;
        case 'persist':
            env.persist(first, num(positional[1], Infinity));
            return;
        case 'stabilize':
            env.stabilize(ids(positional));
            return;
        case 'conf-change': {
            const kind = positional[1];
            const target = BigInt(positional[2] ?? '0');
            const change: MembershipChange = kind === 'add'
                ? { kind: 'add', id: target, address: address(target) }
                : kind === 'assign'
                    ? { kind: 'assign', id: target, role: positional[3] as Role }
                    : { kind: 'remove', id: target };
            const requestId = env.requestId();
            env.log(`change#${requestId} requested`);
            env.core(first).changeMembership(requestId, change);
            return;
        }
        case 'transfer': {
            const requestId = env.requestId();
            env.log(`transfer#${requestId} requested`);
            env.core(first).transferLeadership(requestId, BigInt(positional[1] ?? '0'));
            return;
        }
        case 'read-index': {
            const requestId = env.requestId();
            env.log(`read#${requestId} requested`);
            env.core(first).readIndex(requestId);
            return;
        }
        case 'snapshot': // the driver took a snapshot at the index: same as compact
        case 'compact': {
            const node = env.node(first);
            const index = num(positional[1], 0);
            const entry = node.applied.find((e) => e.index === index);
            if (entry === undefined) throw new Error(`${first} has not applied ${index}`);
            const conf = node.appliedConfiguration;
            const meta = { index, term: entry.term, configuration: conf.configuration, configurationIndex: conf.index };
            node.core.compact(meta, num(options.get('keep'), 0));
            // Storage keeps the snapshot and what follows it (InitialState has no trailing entries).
            node.storage.snapshot = meta;
            node.storage.entries = node.storage.entries.filter((e) => e.index > index);
            const base = node.core.status().firstIndex - 1;
            env.log(`compacted ${first} to ${index} (log from ${base + 1})`);
            return;
        }
        case 'log':
            env.log(env.describeLog(first));
            return;
        case 'status': {
            const s = env.core(first).status();
            env.log(`${s.id}: ${s.soft.role} term=${s.hardState.term} vote=${s.hardState.vote} leader=${s.soft.leader} `
                + `commit=${s.commitIndex} last=${s.lastIndex}@${s.lastTerm} persisted=${s.persistedIndex} `
                + `first=${s.firstIndex} conf=${describeConfiguration(s.soft.configuration)}`);
            for (const p of s.progress) env.log(`  ${p.id}: ${p.state} match=${p.match} next=${p.next}`);
            return;
        }
        case 'restart':
            env.restart(first);
            return;
        case 'report-unreachable':
            env.core(first).reportUnreachable(BigInt(positional[1] ?? '0'));
            return;
        default:
            throw new Error(`unknown command ${name}`);
    }
}

const files = readdirSync(dataDir).filter((f) => f.endsWith('.txt')).sort();

for (const file of files) {
    test(`interaction: ${file}`, () => {
        const path = join(dataDir, file);
        const cases = parse(readFileSync(path, 'utf8'), file);
        const env = new Env();
        const results = cases.map((c) => ({ ...c, output: c.command === '' ? '' : run(env, c.command) }));
        if (process.env['UPDATE'] === '1') {
            writeFileSync(path, render(results));
            return;
        }
        for (const r of results) {
            assert.equal(r.output, r.expected, `${file}:${r.line}: ${r.command}`);
        }
    });
}
