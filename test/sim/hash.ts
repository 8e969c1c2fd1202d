// Small, fast, deterministic 32-bit hashing for the simulator: rolling trace hashes, entry
// hashes and prefix hashes of logs. Collisions can only hide a difference, never invent one,
// so 32 bits are enough for a checker (equal inputs always give equal hashes).

import { crc32c } from '../../src/lib/crc32c.js';
import { fmix32, mix32 } from '../../src/lib/murmur.js';

export { mix32 };

/** Mixes any finite number (safe integers keep all their bits; other numbers are rounded to 1e-3). */
export function mixNumber(h: number, value: number): number {
    const n = Number.isInteger(value) ? value : Math.round(value * 1000);
    if (n >= -0x80000000 && n <= 0xffffffff) return mix32(h, n);
    const low = n % 4294967296;
    const high = Math.floor(n / 4294967296);
    return mix32(mix32(h, low), high);
}

/** Final avalanche (murmur3 fmix32), as an unsigned number. */
export const finish = fmix32;

export function hashBytes(data: Uint8Array): number {
    return crc32c(data);
}

/** Hash of one log entry's identity and content. */
export function entryHash(index: number, term: number, type: number, data: Uint8Array): number {
    let h = mix32(0x2545f491, index);
    h = mixNumber(h, term);
    h = mix32(h, type);
    h = mix32(h, hashBytes(data));
    return finish(h);
}

/** Rolling prefix hash: the hash of the log up to and including an entry. */
export function chainHash(previous: number, entry: number): number {
    return finish(mix32(mix32(0x68e31da4, previous), entry));
}

export function hex(h: number): string {
    return (h >>> 0).toString(16).padStart(8, '0');
}
