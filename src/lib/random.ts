// Seeded randomness (STYLE.md §7.7.1). The raft core and the simulator take a Random; nothing
// calls Math.random. xoshiro128** seeded through splitmix32, so a seed replays exactly.

import { assert } from './assert.js';

export interface Random {
    /** A uniform integer in [0, bound). */
    int(bound: number): number;
    /** A uniform float in [0, 1). */
    float(): number;
}

function splitmix32(state: number): [number, number] {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    z = z ^ (z >>> 16);
    return [state, z >>> 0];
}

/** FNV-1a of a string, used to derive independent named streams from one seed. */
export function hashString(text: string, basis = 0x811c9dc5): number {
    let h = basis >>> 0;
    for (let i = 0; i < text.length; i++) {
        h ^= text.charCodeAt(i);
        h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h >>> 0;
}

export class SeededRandom implements Random {
    readonly seed: number;
    private s0: number;
    private s1: number;
    private s2: number;
    private s3: number;

    constructor(seed: number) {
        assert(Number.isInteger(seed), 'seed must be an integer');
        this.seed = seed;
        let st = seed | 0;
        const out: number[] = [];
        for (let i = 0; i < 4; i++) {
            const [next, value] = splitmix32(st);
            st = next;
            out.push(value);
        }
        [this.s0, this.s1, this.s2, this.s3] = out as [number, number, number, number];
        if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
    }

    /** A 32-bit unsigned integer. */
    next32(): number {
        const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
        const t = this.s1 << 9;
        this.s2 ^= this.s0;
        this.s3 ^= this.s1;
        this.s1 ^= this.s2;
        this.s0 ^= this.s3;
        this.s2 ^= t;
        this.s3 = rotl(this.s3, 11);
        return result;
    }

    float(): number {
        // 53 bits from two draws.
        const hi = this.next32() >>> 5;
        const lo = this.next32() >>> 6;
        return (hi * 67108864 + lo) / 9007199254740992;
    }

    int(bound: number): number {
        assert(Number.isInteger(bound) && bound > 0, `bad bound ${bound}`);
        return Math.floor(this.float() * bound);
    }

    /** An integer in [min, max] inclusive. */
    range(min: number, max: number): number {
        assert(max >= min, 'empty range');
        return min + this.int(max - min + 1);
    }

    chance(probability: number): boolean {
        return this.float() < probability;
    }

    pick<T>(items: readonly T[]): T {
        assert(items.length > 0, 'pick from empty list');
        return items[this.int(items.length)] as T;
    }

    shuffle<T>(items: T[]): T[] {
        for (let i = items.length - 1; i > 0; i--) {
            const j = this.int(i + 1);
            const tmp = items[i] as T;
            items[i] = items[j] as T;
            items[j] = tmp;
        }
        return items;
    }

    /** An independent stream derived from this seed and a name. */
    fork(name: string): SeededRandom {
        return new SeededRandom(hashString(name, hashString(String(this.seed))) | 0);
    }
}

function rotl(x: number, k: number): number {
    return (x << k) | (x >>> (32 - k));
}
