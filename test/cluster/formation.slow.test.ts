// Goal: cluster formation with real `tqlite node` processes is boring (issue 6, "Formation"):
// 3, 5 and 7 nodes started together reach the expected roles (3 voters; 5 → 3 voters + 2
// standbys; 7 → 3 voters + 3 standbys + 1 spare) within 10 s in every round, and every
// process exits 0 on SIGTERM at the end; bootstrap → join 2 → join 3 ends with 3 voters.
// Method: child processes of the compiled CLI on free 127.0.0.1 ports in a temporary
// directory; the first node bootstraps, the others are spawned at the same moment with
// --join <first>. The admin client polls CLUSTER with a deadline; formation time is measured
// from the first spawn. Rounds per size: FORMATION_ROUNDS (default 3); the times (median,
// max) are printed as a diagnostic. A round that misses the deadline is recorded (roles seen,
// logs, and whether the roles came within FORMATION_LATE_MS more, default 0 = not waited for; the
// leader's periodic role adjustment runs every 30 s) and the other rounds still
// run; the test fails if any round missed. At the end of each round the nodes get SIGTERM one at a
// time (each hands over to the ones still running), and each exit must be code 0.
//
// Bug this test found (fixed in 5c6cdb9, "app: retry Assume"): RoleManager.run() called
// assume() once; when it lost the race with another member's change ("a membership change is
// already in progress") the node stayed a spare until the leader's next periodic adjustment,
// 30 s later (3 of 40 rounds of 5 and 7 nodes before the fix, 0 of 60 after). go-dqlite's app
// retries maybePromoteOurselves every second. To see a regression:
// FORMATION_ROUNDS=20 FORMATION_LATE_MS=35000 node --test build/test/cluster/formation.slow.test.js
//
// Bug CI found (1 of 3 rounds of 7 nodes ended voter×3 + standby×4): joiners running Assume at
// the same moment each counted fewer than 3 standbys and all promoted themselves, and the
// leader's adjustment only promoted and demoted offline members, never an excess. Fixed: the
// leader demotes excess voters and standbys (src/app.ts decideAdjustment, unit-tested in
// test/app-roles.test.ts); the "excess" test below forces a 4th voter and a 4th standby and
// waits for the repair (it times out without the fix), and each round prints how many excess
// holders the leader demoted.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envInt, expectedRoles, hasRoles, ProcCluster, summary, waitFor } from './procs.js';

const ROUNDS = envInt('FORMATION_ROUNDS', 3);
const FORM_MS = envInt('FORMATION_DEADLINE_MS', 10_000);
const LATE_MS = envInt('FORMATION_LATE_MS', 0);

async function stopAll(cluster: ProcCluster): Promise<void> {
    for (let i = cluster.nodes.length - 1; i >= 0; i--) {
        const exit = await cluster.stop(i);
        assert.deepEqual(exit, { code: 0, signal: null }, `node ${i} exit on SIGTERM\n${cluster.logs()}`);
    }
}

interface Round {
    /** Time to the expected roles, or undefined when not within the deadline. */
    readonly ms: number | undefined;
    /** Excess voters/standbys the leader demoted (racing Assumes), from the nodes' logs. */
    readonly repaired: number;
    /** Roles seen at the deadline, process logs, and when (if ever) the roles came later. */
    readonly failure?: string;
}

/** How many "role adjusted … reason excess" lines the nodes logged (every node's whole stderr). */
function repairs(cluster: ProcCluster): number {
    return cluster.nodes.reduce((n, node) => n + node.stderr.split('\n')
        .filter((line) => line.includes('"role adjusted"') && line.includes('"reason":"excess"')).length, 0);
}

async function formTogether(size: number): Promise<Round> {
    const cluster = await ProcCluster.create(size, `form${size}`);
    const { voters, standbys } = expectedRoles(size);
    const formed = async (): Promise<true | undefined> => {
        const members = await cluster.admin.cluster({ timeoutMs: 1_000 });
        return hasRoles(members, size, voters, standbys) ? true : undefined;
    };
    try {
        const t0 = performance.now();
        cluster.start(0);
        for (let i = 1; i < size; i++) cluster.start(i, { join: [cluster.node(0).address] });
        let round: Round;
        try {
            await waitFor(`${size} nodes formed`, FORM_MS, formed);
            const ms = performance.now() - t0;
            // waitFor's last check may end a little after its deadline: the bound is strict.
            if (ms > FORM_MS) throw new Error(`formed after ${ms.toFixed(0)} ms`);
            round = { ms, repaired: repairs(cluster) };
        } catch {
            // Diagnose: the roles at the deadline, then whether they come later (the leader's
            // periodic adjustment runs every 30 s).
            const members = await cluster.admin.cluster().catch(() => []);
            const logs = cluster.logs(8);
            const late = LATE_MS === 0 ? undefined : await waitFor('late formation', LATE_MS, formed)
                .then(() => performance.now() - t0, () => undefined);
            round = { ms: undefined, repaired: repairs(cluster), failure: `${size} nodes: roles at ${FORM_MS} ms `
                + `${JSON.stringify(members.map((m) => m.role))}; `
                + `${late === undefined ? `still not formed after ${LATE_MS} ms more`
                    : `formed late, at ${late.toFixed(0)} ms`}\n${logs}` };
        }
        // No node crashed during formation; each exits 0 on SIGTERM.
        for (let i = 0; i < size; i++) assert.ok(cluster.isRunning(i), `node ${i} died\n${cluster.logs()}`);
        await stopAll(cluster);
        return round;
    } finally {
        await cluster.close();
    }
}

for (const size of [3, 5, 7]) {
    test(`formation: ${size} nodes started together reach the expected roles, ${ROUNDS} rounds`, async () => {
        const rounds: Round[] = [];
        for (let r = 0; r < ROUNDS; r++) rounds.push(await formTogether(size));
        const times = rounds.flatMap((r) => (r.ms === undefined ? [] : [r.ms]));
        const failures = rounds.flatMap((r) => (r.failure === undefined ? [] : [r.failure]));
        const s = summary(times);
        console.log(`# formation ${size} nodes: formed ${times.length}/${rounds.length} within ${FORM_MS} ms, `
            + `median=${s.median.toFixed(0)} ms max=${s.max.toFixed(0)} ms `
            + `all=${rounds.map((r) => r.ms?.toFixed(0) ?? 'FAIL').join(',')}; `
            + `excess roles demoted by the leader: ${rounds.map((r) => r.repaired).join(',')}`);
        for (const f of failures) console.log(`# ${f.split('\n')[0] ?? ''}`);
        assert.equal(failures.length, 0, `${failures.length}/${rounds.length} rounds did not form; first:\n`
            + `${failures[0] ?? ''}`);
    });
}

// The race the CI caught (1 round of 3): joiners running Assume at the same moment each see
// fewer than 3 standbys (or voters) and all promote themselves. Rather than wait for a rare
// interleaving, make the excess by hand on a formed cluster and watch the leader repair it.
test('formation: the leader demotes an excess voter and an excess standby (racing Assumes)', async () => {
    const cluster = await ProcCluster.create(7, 'excess');
    try {
        cluster.start(0);
        for (let i = 1; i < 7; i++) cluster.start(i, { join: [cluster.node(0).address] });
        await cluster.waitForRoles(7, 3, 3, 3 * FORM_MS);
        for (const role of ['voter', 'standby'] as const) {
            const before = repairs(cluster);
            // A spare made a 4th holder of the role (retried while another change is in progress).
            await waitFor(`a 4th ${role}`, FORM_MS, async () => {
                const spare = (await cluster.admin.cluster()).find((m) => m.role === 'spare');
                if (spare === undefined) throw new Error('no spare');
                await cluster.admin.assign(spare.id, role);
                return true;
            });
            await waitFor(`the leader to repair 4 ${role}s`, FORM_MS, async () => {
                const members = await cluster.admin.cluster({ timeoutMs: 1_000 });
                return hasRoles(members, 7, 3, 3) && repairs(cluster) > before ? true : undefined;
            }).catch(async (error: unknown) => {
                const now = await cluster.admin.cluster().catch(() => []);
                assert.fail(`4 ${role}s not repaired: ${JSON.stringify(now.map((m) => m.role))} `
                    + `(${String(error)})\n${cluster.logs()}`);
            });
        }
        await stopAll(cluster);
    } finally {
        await cluster.close();
    }
});

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
            const joined = performance.now();
            await cluster.waitForRoles(3, 3, 0, FORM_MS).catch(async (error: unknown) => {
                const members = await cluster.admin.cluster().catch(() => []);
                assert.fail(`no 3 voters: ${JSON.stringify(members.map((m) => m.role))} (${String(error)})\n`
                    + cluster.logs());
            });
            const third = performance.now() - joined;
            assert.ok(third <= FORM_MS, `3 voters only ${third.toFixed(0)} ms after the third node started`);
            times.push(performance.now() - t0);
            await stopAll(cluster);
        } finally {
            await cluster.close();
        }
    }
    const s = summary(times);
    console.log(`# sequential formation: rounds=${s.n} median=${s.median.toFixed(0)} ms max=${s.max.toFixed(0)} ms`);
});
