#!/usr/bin/env node
// The tqlite command: the compiled CLI lives in build/ (npm ci runs the build).
const { runCli } = await import('../build/src/cli/main.js');
await runCli(process.argv.slice(2));
