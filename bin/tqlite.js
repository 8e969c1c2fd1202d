#!/usr/bin/env node
// The tqlite command: the compiled CLI lives in build/ (npm ci runs the build).
const { main } = await import('../build/src/cli/main.js');
process.exitCode = await main(process.argv.slice(2));
