#!/usr/bin/env node
import { runCli } from '../lib/control/cli/main.ts';

// The control plane CLI: `edge --help`. Exit status 0 done, 1 failed, 2 usage or validation error.
const status = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
process.exitCode = status;
