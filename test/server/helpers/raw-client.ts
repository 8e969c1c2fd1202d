// A byte-level client for gateway tests: it writes whatever bytes a test wants (well-formed or
// not) and reads whole response messages (8-byte header + body). Bodies are built with
// src/lib/bytes.ts's ByteWriter; only FAILURE and a few small bodies are decoded here.

import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { ByteReader, ByteWriter } from '../../../src/lib/bytes.js';

export interface Message {
    readonly type: number;
    readonly schema: number;
    readonly body: Buffer;
}

export const VERSION = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
export const LEGACY_VERSION = Buffer.from([0xe5, 0x3f, 0x43, 0x60, 0xd7, 0x4d, 0x10, 0x86]);

/** A request: header + body. `words` overrides the header's size field (for lies). */
export function frame(type: number, body: Uint8Array, options: { schema?: number; words?: number } = {}): Buffer {
    const header = Buffer.alloc(8);
    header.writeUInt32LE(options.words ?? Math.ceil(body.length / 8), 0);
    header.writeUInt8(type, 4);
    header.writeUInt8(options.schema ?? 0, 5);
    return Buffer.concat([header, body]);
}

export function body(build: (w: ByteWriter) => void): Buffer {
    const w = new ByteWriter();
    build(w);
    return Buffer.from(w.pad8().finish());
}

export function decodeFailure(message: Message): { code: bigint; text: string } {
    const r = new ByteReader(message.body);
    return { code: r.u64(), text: r.text() };
}

export class RawClient {
    private buffered = Buffer.alloc(0);
    private waiter: (() => void) | undefined;
    private ended = false;
    readonly socket: Socket;

    private constructor(socket: Socket) {
        this.socket = socket;
        socket.on('data', (chunk: Buffer) => {
            this.buffered = Buffer.concat([this.buffered, chunk]);
            this.wake();
        });
        socket.on('close', () => {
            this.ended = true;
            this.wake();
        });
        socket.on('error', () => undefined);
    }

    private wake(): void {
        const w = this.waiter;
        this.waiter = undefined;
        w?.();
    }

    static async open(address: string, version: Buffer | null = VERSION): Promise<RawClient> {
        const colon = address.lastIndexOf(':');
        const socket = connect(Number(address.slice(colon + 1)), address.slice(0, colon));
        await new Promise<void>((resolve, reject) => {
            socket.once('connect', resolve);
            socket.once('error', reject);
        });
        socket.setNoDelay(true);
        const client = new RawClient(socket);
        if (version !== null) socket.write(version);
        return client;
    }

    write(bytes: Uint8Array): void {
        this.socket.write(bytes);
    }

    /** Sends a well-formed request and reads one response. */
    async request(type: number, requestBody: Uint8Array, schema = 0): Promise<Message> {
        this.write(frame(type, requestBody, { schema }));
        return this.read();
    }

    /** The next whole message; rejects if the connection closes first. */
    async read(): Promise<Message> {
        for (;;) {
            if (this.buffered.length >= 8) {
                const words = this.buffered.readUInt32LE(0);
                const size = 8 + words * 8;
                if (this.buffered.length >= size) {
                    const message = {
                        type: this.buffered.readUInt8(4),
                        schema: this.buffered.readUInt8(5),
                        body: this.buffered.subarray(8, size),
                    };
                    this.buffered = this.buffered.subarray(size);
                    return message;
                }
            }
            if (this.ended) throw new Error('connection closed');
            await new Promise<void>((resolve) => (this.waiter = resolve));
        }
    }

    /** Resolves once the server closed the connection (bytes still unread are dropped). */
    async closed(): Promise<void> {
        while (!this.ended) await new Promise<void>((resolve) => (this.waiter = resolve));
    }

    get isClosed(): boolean {
        return this.ended;
    }

    close(): void {
        this.socket.destroy();
    }
}
