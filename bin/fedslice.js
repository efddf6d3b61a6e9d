#!/usr/bin/env node
// Entry point: loads the TypeScript sources through tsx, so the CLI runs with no build step.
import { register } from 'tsx/esm/api';

register();
await import('../cli.ts');
