// Goal: cluster formation with real `tqlite node` processes is boring (issue 6, "Formation"):
// 3, 5 and 7 nodes started together reach the expected roles (3 voters; 5 → 3 voters + 2
// standbys; 7 → 3 voters + 3 standbys + 1 spare) within 10 s in every round, and every
// process exits 0 on SIGTERM at the end; bootstrap → join 2 → join 3 ends with 3 voters.
// Method: child processes of the compiled CLI on free 127.0.0.1 ports in a temporary
// directory; the first node bootstraps, the others are spawned at the same moment with
// --join <first>. The admin client polls CLUSTER with a deadline; formation time is measured
// from the first spawn. Rounds per size: FORMATION_ROUNDS (default 3); the times (median,
// max) are printed as a diagnostic. At the end of each round the nodes get SIGTERM one at a
// time (each hands over to the ones still running), and each exit must be code 0.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envInt, expectedRoles, hasRoles, ProcCluster, summary, waitFor } from './procs.js';

const ROUNDS = envInt('FORMATION_ROUNDS', 3);
const FORM_MS = envInt('FORMATION_DEADLINE_MS', 10_000);

async function stopAll(cluster: ProcCluster): Promise<void> {
    for (let i = cluster.nodes.length - 1; i >= 0; i--) {
        const exit = await cluster.stop(i);
        assert.deepEqual(exit, { code: 0, signal: null }, `node ${i} exit on SIGTERM\n${cluster.logs()}`);
    }
}

async function formTogether(size: number): Promise<number> {
    const cluster = await ProcCluster.create(size, `form${size}`);
    const { voters, standbys } = expectedRoles(size);
    try {
        const t0 = performance.now();
        cluster.start(0);
        for (let i = 1; i < size; i++) cluster.start(i, { join: [cluster.node(0).address] });
        let elapsed = 0;
        try {
            await waitFor(`${size} nodes formed`, FORM_MS, async () => {
                const members = await cluster.admin.cluster({ timeoutMs: 1_000 });
                return hasRoles(members, size, voters, standbys) ? true : undefined;
            });
            elapsed = performance.now() - t0;
        } catch (error) {
            const members = await cluster.admin.cluster().catch(() => []);
            assert.fail(`${size} nodes did not form within ${FORM_MS} ms: `
                + `${JSON.stringify(members.map((m) => m.role))} (${String(error)})\n${cluster.logs()}`);
        }
        // No node crashed during formation.
        for (let i = 0; i < size; i++) assert.ok(cluster.isRunning(i), `node ${i} died\n${cluster.logs()}`);
        await stopAll(cluster);
        return elapsed;
    } finally {
        await cluster.close();
    }
}

for (const size of [3, 5, 7]) {
    test(`formation: ${size} nodes started together reach the expected roles, ${ROUNDS} rounds`, async () => {
        const times: number[] = [];
        for (let round = 0; round < ROUNDS; round++) times.push(await formTogether(size));
        const s = summary(times);
        console.log(`# formation ${size} nodes: rounds=${s.n} median=${s.median.toFixed(0)} ms `
            + `max=${s.max.toFixed(0)} ms all=${times.map((t) => t.toFixed(0)).join(',')}`);
    });
}

test(`formation: bootstrap → join 2 → join 3 ends with 3 voters, ${ROUNDS} rounds`, async () => {
    const times: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
        const cluster = await ProcCluster.create(3, 'seq');
        try {
            const t0 = performance.now();
            cluster.start(0);
            await waitFor('the bootstrap leader', FORM_MS, async () => (await cluster.admin.leader()) ?? undefined);
            cluster.start(1, { join: [cluster.node(0).address] });
            // Two members: only the first votes (go-dqlite's rule below three members).
            await cluster.waitForRoles(2, 1, 0, FORM_MS);
            cluster.start(2, { join: [cluster.node(0).address] });
            await cluster.waitForRoles(3, 3, 0, FORM_MS).catch(async (error: unknown) => {
                const members = await cluster.admin.cluster().catch(() => []);
                assert.fail(`no 3 voters: ${JSON.stringify(members.map((m) => m.role))} (${String(error)})\n`
                    + cluster.logs());
            });
            times.push(performance.now() - t0);
            await stopAll(cluster);
        } finally {
            await cluster.close();
        }
    }
    const s = summary(times);
    console.log(`# sequential formation: rounds=${s.n} median=${s.median.toFixed(0)} ms max=${s.max.toFixed(0)} ms`);
});
