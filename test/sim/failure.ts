// How a simulated run ends badly. Each kind maps to its own exit code in the CLI (TigerBeetle's
// VOPR keeps crash, liveness and correctness failures apart).

export type FailureKind = 'safety' | 'liveness' | 'crash';

export const EXIT_CODES: Readonly<Record<FailureKind, number>> = {
    safety: 10,
    liveness: 11,
    crash: 12,
};

/** Thrown by the checkers; the run stops at the first one. */
export class SimFailure extends Error {
    readonly kind: FailureKind;
    constructor(kind: FailureKind, message: string) {
        super(message);
        this.name = 'SimFailure';
        this.kind = kind;
    }
}

export function safety(condition: unknown, message: () => string): asserts condition {
    if (!condition) throw new SimFailure('safety', message());
}
