// --target dqlite: not implemented yet (see the report).
export async function runDqlite(_options: { seed: number; durationS: number; nodes: number; profile: string }): Promise<number> {
    process.stderr.write('--target dqlite is not implemented yet\n');
    return 2;
}
