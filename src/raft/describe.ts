// Canonical one-line renderings of the core's types (etcd's Describe*), shared by logs, errors
// and the expected output of the interaction tests. Keep them stable: test/raft/testdata
// depends on every character.

import { decodeConfiguration, describeConfiguration } from './configuration.js';
import type { Message } from './messages.js';
import type { Outcome, Ready, SoftState } from './ready.js';
import { EntryType } from './types.js';
import type { Entry, HardState, SnapshotMeta } from './types.js';

const textDecoder = new TextDecoder('utf-8', { fatal: false });

function describeData(data: Uint8Array): string {
    const text = textDecoder.decode(data);
    if (/^[\x20-\x7e]*$/.test(text)) return JSON.stringify(text);
    return `0x${Array.from(data, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** `5@2 cmd "x"`, `6@2 barrier`, `1@1 change [1 voter a1]`. */
export function describeEntry(entry: Entry): string {
    const head = `${entry.index}@${entry.term}`;
    switch (entry.type) {
        case EntryType.command:
            return `${head} cmd ${describeData(entry.data)}`;
        case EntryType.barrier:
            return `${head} barrier`;
        case EntryType.change: {
            let conf: string;
            try {
                conf = describeConfiguration(decodeConfiguration(entry.data));
            } catch {
                conf = `<undecodable ${entry.data.length} bytes>`;
            }
            return `${head} change ${conf}`;
        }
    }
}

export function describeEntries(entries: readonly Entry[]): string {
    return `[${entries.map(describeEntry).join(', ')}]`;
}

export function describeSnapshotMeta(meta: SnapshotMeta): string {
    return `${meta.index}@${meta.term} conf@${meta.configurationIndex}=${describeConfiguration(meta.configuration)}`;
}

export function describeMessage(m: Message): string {
    const head = `${m.from}->${m.to} `;
    switch (m.type) {
        case 'appendEntries': {
            const entries = m.entries.length === 0 ? '' : ` entries=${describeEntries(m.entries)}`;
            const read = m.readRound === 0 ? '' : ` read=${m.readRound}`;
            return `${head}AppendEntries term=${m.term} prev=${m.prevIndex}@${m.prevTerm} commit=${m.commit}`
                + `${entries}${read}`;
        }
        case 'appendEntriesResponse': {
            const read = m.readRound === 0 ? '' : ` read=${m.readRound}`;
            const result = m.success
                ? `ok index=${m.index}`
                : `reject index=${m.index} hint=${m.hintIndex}@${m.hintTerm}`;
            return `${head}AppendEntriesResponse term=${m.term} ${result}${read}`;
        }
        case 'requestVote':
            return `${head}${m.preVote ? 'PreVote' : 'RequestVote'} term=${m.term} last=${m.lastIndex}@${m.lastTerm}`
                + (m.transfer ? ' transfer' : '');
        case 'requestVoteResponse':
            return `${head}${m.preVote ? 'PreVoteResponse' : 'RequestVoteResponse'} term=${m.term} `
                + (m.granted ? 'granted' : 'rejected');
        case 'timeoutNow':
            return `${head}TimeoutNow term=${m.term}`;
        case 'installSnapshot':
            return `${head}InstallSnapshot term=${m.term} snapshot=${describeSnapshotMeta(m.meta)}`;
    }
}

export function describeSoftState(s: SoftState): string {
    return `${s.role} term=${s.term} leader=${s.leader} conf=${describeConfiguration(s.configuration)}`;
}

export function describeHardState(h: HardState): string {
    return `term=${h.term} vote=${h.vote}`;
}

export function describeOutcome(o: Outcome): string {
    if (o.ok) return o.kind === 'change' ? `change#${o.requestId} ok index=${o.index}` : `${o.kind}#${o.requestId} ok`;
    const code = (o.error as { code?: string } | undefined)?.code ?? 'error';
    return `${o.kind}#${o.requestId} failed ${code}`;
}

/** A multi-line rendering; empty sections are left out. */
export function describeReady(r: Ready): string {
    if (r.isEmpty) return 'Ready: empty';
    const lines = ['Ready:'];
    if (r.softState !== undefined) lines.push(`  soft: ${describeSoftState(r.softState)}`);
    if (r.hardState !== undefined) lines.push(`  hard: ${describeHardState(r.hardState)}`);
    if (r.snapshot !== undefined) lines.push(`  snapshot: ${describeSnapshotMeta(r.snapshot)}`);
    if (r.truncateFrom !== undefined) lines.push(`  truncate from: ${r.truncateFrom}`);
    if (r.entries.length > 0) lines.push(`  entries: ${describeEntries(r.entries)}`);
    const section = (title: string, items: readonly string[]): void => {
        if (items.length === 0) return;
        lines.push(`  ${title}:`);
        for (const item of items) lines.push(`    ${item}`);
    };
    section('messages', r.messages.map(describeMessage));
    section('after persist', r.messagesAfterPersist.map(describeMessage));
    if (r.committedEntries.length > 0) lines.push(`  committed: ${describeEntries(r.committedEntries)}`);
    if (r.readStates.length > 0) {
        lines.push(`  reads: ${r.readStates.map((s) => `#${s.requestId}@${s.index}`).join(', ')}`);
    }
    section('outcomes', r.outcomes.map(describeOutcome));
    section('snapshots to send', r.snapshotsToSend.map((s) => `to ${s.to}: ${describeSnapshotMeta(s.meta)}`));
    return lines.join('\n');
}
