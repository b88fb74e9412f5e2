/**
 * `node --import tsx --import ./bench/stripped/register.mjs` runs the service from source with
 * tracing compiled out, as the stripped build does (server-build.ts): the `tracing-stripped`
 * layer variant when the servers run through tsx (the smoke run). Registered after tsx, so its
 * hook runs first and sees tsx's resolution.
 */
import { register } from 'node:module';

register('./resolve-stripped.mjs', import.meta.url);
