// Always-on assertions for programmer errors (STYLE.md §7.4). A failed assertion means the
// code is wrong, not the input: in a server node it is fail-stop (log, then exit).

export class AssertionError extends Error {
    readonly code = 'ERR_ASSERTION';
    constructor(message: string) {
        super(message);
        this.name = 'AssertionError';
    }
}

export function assert(condition: unknown, message = 'assertion failed'): asserts condition {
    if (!condition) throw new AssertionError(message);
}

/** Marks a branch that must be impossible; the argument type proves exhaustiveness. */
export function unreachable(value: never, message = 'unreachable'): never {
    throw new AssertionError(`${message}: ${String(value)}`);
}
