// A first, Elle-style checker for list-append transactions (TESTING.md §1.5, §3.4 "transactions
// later"): jepsen.dqlite's append workload maps to INSERT (k, v) / SELECT v ... ORDER BY rowid.
// This is a sketch of Elle's core, not all of it:
//   1. Appended values are unique per key, so a read's list names the writer of every element,
//      and every read of a key must be a prefix of the longest one (else 'incompatible-order').
//      The longest read is the key's version order.
//   2. Dependency edges between committed transactions: ww (writer of version i → writer of
//      version i+1), wr (writer of the last element a read saw → the reader), rw (a reader → the
//      writer of the first version it did not see), and rt (T1 returned before T2 was invoked;
//      naive O(n²), fine for a few thousand transactions).
//   3. Strongly connected components (Tarjan, iterative); each component with a cycle is reported
//      with one cycle and its class: G0 (ww only), G1c (ww/wr), G-single (one rw), G2 (more rw);
//      a cycle that needs an rt edge is a strict-serializability violation only ('-realtime').
//   Also: reads of values appended by failed transactions ('aborted-read', G1a) and values
//   appended twice. Not done: internal consistency within a transaction, intermediate reads
//   (G1b), unknown-order appends that no read observed, transitive reduction of rt edges.

export type MicroOp =
    | { readonly f: 'append'; readonly key: string; readonly value: number }
    | { readonly f: 'read'; readonly key: string; readonly value: readonly number[] | undefined };

export interface Txn {
    readonly id: number;
    readonly client: number;
    /** Reads carry the list they saw (undefined unless committed). */
    readonly ops: readonly MicroOp[];
    readonly status: 'ok' | 'fail' | 'unknown';
    readonly call: bigint;
    readonly ret: bigint;
}

export type EdgeKind = 'ww' | 'wr' | 'rw' | 'rt';

export interface Anomaly {
    readonly kind: string;
    readonly detail: string;
    /** For cycles: the transactions in order and the edge leaving each. */
    readonly cycle?: readonly { readonly txn: number; readonly edge: EdgeKind }[];
}

export interface ListAppendReport {
    readonly ok: boolean;
    readonly anomalies: readonly Anomaly[];
    readonly edgeCount: number;
}

export function checkListAppend(txns: readonly Txn[]): ListAppendReport {
    const anomalies: Anomaly[] = [];
    const committed = txns.filter((t) => t.status === 'ok');
    const index = new Map<number, number>();
    committed.forEach((t, i) => index.set(t.id, i));
    const writer = new Map<string, Txn>();
    for (const t of txns) {
        if (t.status === 'fail') continue;
        for (const op of t.ops) {
            if (op.f !== 'append') continue;
            const name = `${op.key}/${op.value}`;
            if (writer.has(name)) anomalies.push({ kind: 'duplicate-append', detail: `${name} appended twice` });
            writer.set(name, t);
        }
    }
    const failedWriter = new Map<string, Txn>();
    for (const t of txns) {
        if (t.status !== 'fail') continue;
        for (const op of t.ops) if (op.f === 'append') failedWriter.set(`${op.key}/${op.value}`, t);
    }
    // Version order per key: the longest read, which every other read must be a prefix of.
    const order = new Map<string, readonly number[]>();
    for (const t of committed) {
        for (const op of t.ops) {
            if (op.f !== 'read' || op.value === undefined) continue;
            const known = order.get(op.key) ?? [];
            if (op.value.length > known.length) order.set(op.key, op.value);
            for (const v of op.value) {
                const aborted = failedWriter.get(`${op.key}/${v}`);
                if (aborted !== undefined) {
                    const detail = `txn ${t.id} read ${op.key}/${v} of failed txn ${aborted.id}`;
                    anomalies.push({ kind: 'G1a aborted-read', detail });
                }
            }
        }
    }
    for (const t of committed) {
        for (const op of t.ops) {
            if (op.f !== 'read' || op.value === undefined) continue;
            const longest = order.get(op.key) ?? [];
            if (op.value.some((v, i) => longest[i] !== v)) {
                anomalies.push({
                    kind: 'incompatible-order',
                    detail: `txn ${t.id} read ${op.key}=${JSON.stringify(op.value)}, ` +
                        `longest ${JSON.stringify(longest)}`,
                });
            }
        }
    }
    const edges: Map<number, EdgeKind>[] = committed.map(() => new Map());
    let edgeCount = 0;
    const addEdge = (from: Txn | undefined, to: Txn | undefined, kind: EdgeKind): void => {
        if (from === undefined || to === undefined || from === to) return;
        const a = index.get(from.id);
        const b = index.get(to.id);
        if (a === undefined || b === undefined) return;
        const out = edges[a] as Map<number, EdgeKind>;
        // Keep the strongest explanation per pair: data edges over real time, ww/wr over rw.
        const rank: Record<EdgeKind, number> = { ww: 0, wr: 1, rw: 2, rt: 3 };
        const old = out.get(b);
        if (old === undefined) edgeCount++;
        if (old === undefined || rank[kind] < rank[old]) out.set(b, kind);
    };
    for (const [key, versions] of order) {
        for (let i = 0; i + 1 < versions.length; i++) {
            addEdge(writer.get(`${key}/${versions[i]}`), writer.get(`${key}/${versions[i + 1]}`), 'ww');
        }
    }
    for (const t of committed) {
        for (const op of t.ops) {
            if (op.f !== 'read' || op.value === undefined) continue;
            const versions = order.get(op.key) ?? [];
            const last = op.value[op.value.length - 1];
            if (last !== undefined) addEdge(writer.get(`${op.key}/${last}`), t, 'wr');
            const unseen = versions[op.value.length];
            if (unseen !== undefined) addEdge(t, writer.get(`${op.key}/${unseen}`), 'rw');
        }
    }
    for (const a of committed) for (const b of committed) if (a.ret < b.call) addEdge(a, b, 'rt');
    for (const component of stronglyConnected(edges)) {
        if (component.length < 2) continue;
        const cycle = findCycle(edges, component).map(([i, edge]) => ({ txn: (committed[i] as Txn).id, edge }));
        const detail = `${component.length} transactions in a cycle`;
        anomalies.push({ kind: classify(cycle.map((c) => c.edge)), detail, cycle });
    }
    return { ok: anomalies.length === 0, anomalies, edgeCount };
}

function classify(kinds: readonly EdgeKind[]): string {
    const rw = kinds.filter((k) => k === 'rw').length;
    const base = rw === 0 ? (kinds.includes('wr') ? 'G1c' : 'G0') : rw === 1 ? 'G-single' : 'G2';
    return kinds.includes('rt') ? `${base}-realtime` : base;
}

/** Tarjan's algorithm with an explicit stack. */
function stronglyConnected(edges: readonly Map<number, EdgeKind>[]): number[][] {
    const n = edges.length;
    const order = new Int32Array(n).fill(-1);
    const low = new Int32Array(n);
    const onStack = new Uint8Array(n);
    const stack: number[] = [];
    const components: number[][] = [];
    let counter = 0;
    for (let root = 0; root < n; root++) {
        if (order[root] !== -1) continue;
        const work: { node: number; targets: number[]; next: number }[] = [];
        const enter = (v: number): void => {
            order[v] = low[v] = counter++;
            stack.push(v);
            onStack[v] = 1;
            work.push({ node: v, targets: [...(edges[v] as Map<number, EdgeKind>).keys()], next: 0 });
        };
        enter(root);
        while (work.length > 0) {
            const frame = work[work.length - 1] as { node: number; targets: number[]; next: number };
            const v = frame.node;
            if (frame.next < frame.targets.length) {
                const w = frame.targets[frame.next++] as number;
                if (order[w] === -1) enter(w);
                else if (onStack[w] === 1) low[v] = Math.min(low[v] as number, order[w] as number);
                continue;
            }
            work.pop();
            const parent = work[work.length - 1];
            if (parent !== undefined) low[parent.node] = Math.min(low[parent.node] as number, low[v] as number);
            if (low[v] === order[v]) {
                const component: number[] = [];
                for (;;) {
                    const w = stack.pop() as number;
                    onStack[w] = 0;
                    component.push(w);
                    if (w === v) break;
                }
                components.push(component);
            }
        }
    }
    return components;
}

/** One cycle inside a strongly connected component (breadth-first from its first node). */
function findCycle(edges: readonly Map<number, EdgeKind>[], component: readonly number[]): [number, EdgeKind][] {
    const inside = new Set(component);
    const start = component[0] as number;
    const via = new Map<number, [number, EdgeKind]>();
    const queue = [start];
    for (let head = 0; head < queue.length; head++) {
        const v = queue[head] as number;
        for (const [w, kind] of edges[v] as Map<number, EdgeKind>) {
            if (!inside.has(w)) continue;
            if (w === start) {
                const path: [number, EdgeKind][] = [[v, kind]];
                for (let u = v; u !== start;) {
                    const [p, k] = via.get(u) as [number, EdgeKind];
                    path.push([p, k]);
                    u = p;
                }
                return path.reverse();
            }
            if (!via.has(w)) {
                via.set(w, [v, kind]);
                queue.push(w);
            }
        }
    }
    return [];
}
