// murmur3's 32-bit mixing steps: small, fast, deterministic hashing of words, used for the
// simulator's trace and log hashes and the linearizability checker's state memo. Not for
// anything on disk or on the wire (that is CRC-32C).

/** Mixes one 32-bit word into `h` (murmur3 body round). */
export function mix32(h: number, word: number): number {
    let k = Math.imul(word | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    let x = (h | 0) ^ k;
    x = (x << 13) | (x >>> 19);
    return (Math.imul(x, 5) + 0xe6546b64) | 0;
}

/** Final avalanche (murmur3 fmix32), as an unsigned number. */
export function fmix32(h: number): number {
    let x = h | 0;
    x ^= x >>> 16;
    x = Math.imul(x, 0x85ebca6b);
    x ^= x >>> 13;
    x = Math.imul(x, 0xc2b2ae35);
    x ^= x >>> 16;
    return x >>> 0;
}
