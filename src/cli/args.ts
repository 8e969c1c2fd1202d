// Small helpers shared by the tqlite subcommands.

import { readFileSync } from 'node:fs';
import { ConfigError } from '../lib/errors.js';

/** parseArgs options of go-dqlite's cluster TLS (certificate, key and CA files; all or none). */
export const tlsArgOptions = {
    cert: { type: 'string' }, key: { type: 'string' }, ca: { type: 'string' },
} as const;

export const tlsUsage = '[--cert FILE --key FILE --ca FILE]';

/** The TLS material named by --cert/--key/--ca, or undefined without them. */
export function tlsFromArgs(values: { cert?: string; key?: string; ca?: string }):
    { cert: Buffer; key: Buffer; ca: Buffer } | undefined {
    const { cert, key, ca } = values;
    if (cert === undefined && key === undefined && ca === undefined) return undefined;
    if (cert === undefined || key === undefined || ca === undefined) {
        throw new ConfigError('--cert, --key and --ca go together');
    }
    return { cert: readFileSync(cert), key: readFileSync(key), ca: readFileSync(ca) };
}

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
