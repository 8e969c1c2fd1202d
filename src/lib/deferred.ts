// A promise with its settle functions, settled exactly once (STYLE.md §7.5.6).

import { assert } from './assert.js';

export class Deferred<T> {
    readonly promise: Promise<T>;
    private resolveFn!: (value: T) => void;
    private rejectFn!: (reason: unknown) => void;
    private settledFlag = false;

    constructor() {
        this.promise = new Promise<T>((resolve, reject) => {
            this.resolveFn = resolve;
            this.rejectFn = reject;
        });
    }

    get settled(): boolean {
        return this.settledFlag;
    }

    resolve(value: T): void {
        assert(!this.settledFlag, 'deferred settled twice');
        this.settledFlag = true;
        this.resolveFn(value);
    }

    reject(reason: unknown): void {
        assert(!this.settledFlag, 'deferred settled twice');
        this.settledFlag = true;
        this.rejectFn(reason);
    }

    /** Settles only if not yet settled; returns whether it did. */
    tryReject(reason: unknown): boolean {
        if (this.settledFlag) return false;
        this.reject(reason);
        return true;
    }

    tryResolve(value: T): boolean {
        if (this.settledFlag) return false;
        this.resolve(value);
        return true;
    }
}
