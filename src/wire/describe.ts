// One compact, canonical text rendering of every message (STYLE.md §7.3, etcd's Describe*),
// for logs, errors and test expectations: the kind, then its fields in schema order.
//   describeMessage({ kind: 'execSql', db: 0n, sql: 'INSERT …', params: [...] })
//     → 'execSql db=0 sql="INSERT …" params=[integer:42, text:"hello"]'
// Long text is cut at 60 characters and blobs are shown by length, so a line stays short.

import { ValueType } from './constants.js';
import type { Request, Response } from './messages.js';
import type { WireValue } from './values.js';

const TEXT_SHOWN_MAX = 60;
const NAMES = new Map<number, string>(Object.entries(ValueType).map(([name, code]) => [code, name]));

function text(value: string): string {
    const cut = value.length > TEXT_SHOWN_MAX ? `${value.slice(0, TEXT_SHOWN_MAX)}…` : value;
    return JSON.stringify(cut);
}

/** A value as `type:value`, e.g. `integer:42`, `text:"a"`, `blob:3B`. */
export function describeValue(value: WireValue): string {
    const name = NAMES.get(value.type) ?? String(value.type);
    if (value.value instanceof Uint8Array) return `${name}:${value.value.length}B`;
    if (typeof value.value === 'string') return `${name}:${text(value.value)}`;
    return `${name}:${String(value.value)}`;
}

function field(value: unknown): string {
    if (typeof value === 'string') return text(value);
    if (value instanceof Uint8Array) return `${value.length}B`;
    if (Array.isArray(value)) {
        const items = value.map((item: unknown) => {
            if (Array.isArray(item)) return `(${item.map((v) => describeValue(v as WireValue)).join(', ')})`;
            if (typeof item === 'object' && item !== null && 'type' in item) return describeValue(item as WireValue);
            if (typeof item === 'object' && item !== null) {
                return `{${Object.entries(item).map(([k, v]) => `${k}=${field(v)}`).join(' ')}}`;
            }
            return field(item);
        });
        return `[${items.join(', ')}]`;
    }
    return String(value);
}

/** `kind field=value …` for any request or response. */
export function describeMessage(message: Request | Response): string {
    const parts: string[] = [message.kind];
    for (const [name, value] of Object.entries(message)) {
        if (name === 'kind' || value === undefined) continue;
        parts.push(`${name}=${field(value)}`);
    }
    return parts.join(' ');
}
