// The oracle for the checker's differential test (TESTING.md §3.4 "testing the checker"): the
// definition of linearizability, executed literally. Failed ops are dropped; every other op is
// placed in some total order that respects real time (a before b whenever a returned strictly
// before b was called; UNKNOWN ops never return) and in which every op with a known output gets
// that output from the model; an UNKNOWN op may also never take effect. No partitioning, no
// memoization, no pre-pass: only for tiny histories (the search is factorial).

import { FAILED, UNKNOWN, type Op } from './history.js';
import { step, type Model } from './models.js';

export function bruteForceLinearizable<S, I, O>(model: Model<S, I, O>, history: readonly Op<I, O>[]): boolean {
    const ops = history.filter((op) => op.output !== FAILED);
    const n = ops.length;
    if (n > 12) throw new Error(`brute force is for tiny histories, got ${n} ops`);
    const open = ops.map((op) => op.output === UNKNOWN);
    // mustPrecede[b] lists every a that returned before b was called.
    const mustPrecede = ops.map((b) => ops
        .map((a, i) => ({ a, i }))
        .filter(({ a, i }) => !open[i] && a.ret < b.call)
        .map(({ i }) => i));
    const placed = new Array<boolean>(n).fill(false);

    const search = (state: S, definiteLeft: number): boolean => {
        if (definiteLeft === 0) return true;
        for (let i = 0; i < n; i++) {
            if (placed[i] === true) continue;
            if ((mustPrecede[i] as number[]).some((j) => placed[j] !== true)) continue;
            const op = ops[i] as Op<I, O>;
            const output = open[i] === true ? UNKNOWN : (op.output as O);
            const after = step(model, state, op.input, output);
            if (after === undefined) continue;
            placed[i] = true;
            const ok = search(after, definiteLeft - (open[i] === true ? 0 : 1));
            placed[i] = false;
            if (ok) return true;
        }
        return false;
    };
    return search(model.init(), open.filter((o) => !o).length);
}
