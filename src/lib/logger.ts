// A pino-compatible logger subset (STYLE.md §6): object first, message second. Libraries
// default to the silent logger; the CLI uses the JSON logger on stderr.

export interface Logger {
    trace(fields: object, message?: string): void;
    debug(fields: object, message?: string): void;
    info(fields: object, message?: string): void;
    warn(fields: object, message?: string): void;
    error(fields: object, message?: string): void;
    child(bindings: object): Logger;
}

const noop = (): void => undefined;

export const silentLogger: Logger = {
    trace: noop,
    debug: noop,
    info: noop,
    warn: noop,
    error: noop,
    child: () => silentLogger,
};

const LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50 } as const;
export type LogLevel = keyof typeof LEVELS;

function replacer(_key: string, value: unknown): unknown {
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Error) {
        return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
    }
    return value;
}

/** One JSON object per line on a writable (stderr by default). */
export function jsonLogger(options: {
    level?: LogLevel;
    bindings?: object;
    write?: (line: string) => void;
} = {}): Logger {
    const min = LEVELS[options.level ?? 'info'];
    const bindings = options.bindings ?? {};
    const write = options.write ?? ((line: string) => void process.stderr.write(line));
    const emit = (level: LogLevel) => (fields: object, message?: string): void => {
        if (LEVELS[level] < min) return;
        const record = { time: new Date().toISOString(), level, ...bindings, ...fields, msg: message };
        write(JSON.stringify(record, replacer) + '\n');
    };
    return {
        trace: emit('trace'),
        debug: emit('debug'),
        info: emit('info'),
        warn: emit('warn'),
        error: emit('error'),
        child: (more: object) => jsonLogger({ ...options, bindings: { ...bindings, ...more } }),
    };
}
