// Goal: keep the module graph pointing one way (STYLE.md §7.2) and keep the raft core pure.
// Method: read every src/**/*.ts file, extract its import specifiers, map each relative import
// to the top-level folder it lands in, and fail on any edge the table does not allow. Also scan
// src/raft for time, randomness, timers, I/O and promises, and every file for long lines.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const srcDir = join(root, 'src');

function walk(dir: string): string[] {
    const out: string[] = [];
    for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) out.push(...walk(path));
        else if (name.endsWith('.ts')) out.push(path);
    }
    return out;
}

/** Folders each folder may import (besides itself). `raft:type` means `import type` only. */
const ALLOWED: Record<string, readonly string[]> = {
    lib: [],
    raft: ['lib'],
    wire: ['lib'],
    log: ['lib', 'raft:type'],
    fsm: ['lib', 'raft:type'],
    peer: ['lib', 'raft:type'],
    check: ['lib'],
    node: ['lib', 'raft', 'log', 'fsm', 'peer'],
    server: ['lib', 'wire', 'node', 'raft:type'],
    client: ['lib', 'wire'],
    cli: ['lib', 'client', 'wire', 'node', 'server', 'raft:type', '.'],
    '.': ['lib', 'raft:type', 'node', 'server', 'client'],
};

interface ImportEdge {
    file: string;
    specifier: string;
    typeOnly: boolean;
}

function importsOf(file: string): ImportEdge[] {
    const text = readFileSync(file, 'utf8');
    const edges: ImportEdge[] = [];
    const re = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
    for (const m of text.matchAll(re)) {
        const specifier = m[3] ?? m[4] ?? m[5];
        if (specifier === undefined) continue;
        edges.push({ file, specifier, typeOnly: m[2] !== undefined });
    }
    return edges;
}

function folderOf(path: string): string {
    const rel = relative(srcDir, path);
    const parts = rel.split(sep);
    return parts.length === 1 ? '.' : (parts[0] as string);
}

const files = walk(srcDir);

test('every src import follows the dependency table', () => {
    const violations: string[] = [];
    for (const file of files) {
        const from = folderOf(file);
        const allowed = ALLOWED[from];
        if (allowed === undefined) {
            violations.push(`${relative(root, file)}: folder src/${from} is not in the table`);
            continue;
        }
        for (const edge of importsOf(file)) {
            if (!edge.specifier.startsWith('.')) continue;
            const target = resolve(dirname(file), edge.specifier.replace(/\.js$/, '.ts'));
            if (!target.startsWith(srcDir + sep)) {
                violations.push(`${relative(root, file)} imports outside src: ${edge.specifier}`);
                continue;
            }
            const to = folderOf(target);
            if (to === from) continue;
            const ok = allowed.includes(to) || (edge.typeOnly && allowed.includes(`${to}:type`));
            if (!ok) violations.push(`${relative(root, file)} (${from}) must not import ${to}: ${edge.specifier}`);
        }
    }
    assert.deepEqual(violations, []);
});

test('the client never loads SQLite or server code', () => {
    const bad = files
        .filter((f) => folderOf(f) === 'client' || folderOf(f) === 'wire')
        .flatMap(importsOf)
        .filter((e) => /better-sqlite3|node:worker_threads/.test(e.specifier));
    assert.deepEqual(bad.map((e) => `${relative(root, e.file)}: ${e.specifier}`), []);
});

test('the raft core is free of time, randomness, timers, I/O and promises', () => {
    const banned: [RegExp, string][] = [
        [/\bDate\.now\b|\bnew Date\b/, 'wall time'],
        [/\bperformance\.now\b|\bprocess\.hrtime\b/, 'time'],
        [/\bMath\.random\b/, 'Math.random'],
        [/\bset(Timeout|Interval|Immediate)\b|\bqueueMicrotask\b|\bprocess\.nextTick\b/, 'timers'],
        [/\basync\b|\bawait\b|\bPromise\b/, 'async code'],
        [/from\s+['"](node:)?(fs|fs\/promises|net|tls|dgram|child_process|worker_threads|timers|http|https)['"]/, 'I/O module'],
        [/\brequire\s*\(/, 'require'],
        [/^\s*import\s+(?!type\b).*lib\/(clock|logger|real-fs)\.js/, 'an I/O part of lib'],
    ];
    const violations: string[] = [];
    for (const file of files.filter((f) => folderOf(f) === 'raft')) {
        const lines = readFileSync(file, 'utf8').split('\n');
        lines.forEach((line, i) => {
            const code = line.replace(/\/\/.*$/, '');
            if (/^\s*\*/.test(code)) return;
            for (const [re, what] of banned) {
                if (re.test(code)) violations.push(`${relative(root, file)}:${i + 1} uses ${what}: ${line.trim()}`);
            }
        });
    }
    assert.deepEqual(violations, []);
});

test('lines stay within 120 columns in src', () => {
    const long: string[] = [];
    for (const file of files) {
        readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
            if (line.length > 120) long.push(`${relative(root, file)}:${i + 1} (${line.length})`);
        });
    }
    assert.deepEqual(long, []);
});
