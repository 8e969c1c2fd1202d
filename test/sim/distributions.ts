// Random distributions the simulator draws from (on top of src/lib/random.ts).

import type { Random } from '../../src/lib/random.js';

/** An exponentially distributed value with the given mean (0 for a mean ≤ 0). */
export function exponential(random: Random, mean: number): number {
    if (mean <= 0) return 0;
    return -Math.log(1 - random.float()) * mean;
}
