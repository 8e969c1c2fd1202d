// Small helpers shared by the tqlite subcommands.

import { ConfigError } from '../lib/errors.js';

export function splitServers(value: string | undefined, flag = '-s'): string[] {
    const servers = (value ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
    if (servers.length === 0) throw new ConfigError(`${flag} needs at least one host:port`);
    return servers;
}

export function parseInteger(value: string | undefined, flag: string): number | undefined {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 0) throw new ConfigError(`${flag} must be a non-negative integer`);
    return n;
}

export function parseU64(value: string | undefined, flag: string): bigint | undefined {
    if (value === undefined) return undefined;
    try {
        const n = BigInt(value);
        if (n < 0n || n >= 2n ** 64n) throw new Error('range');
        return n;
    } catch {
        throw new ConfigError(`${flag} must be an unsigned 64-bit integer`);
    }
}

/** Renders a value the way the shell prints it. */
export function formatValue(value: unknown): string {
    if (value === null || value === undefined) return '';
    if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
    if (value instanceof Date) return value.toISOString();
    return String(value);
}

/** Rows as an aligned table with a header (go-dqlite HEAD's shell layout). */
export function formatTable(columns: readonly string[], rows: readonly (readonly unknown[])[]): string {
    const cells = rows.map((r) => r.map(formatValue));
    const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
    const line = (values: readonly string[]): string =>
        values.map((v, i) => v.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
    return [line(columns), ...cells.map(line)].join('\n');
}

export function jsonReplacer(_key: string, value: unknown): unknown {
    if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
    if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
    return value;
}
