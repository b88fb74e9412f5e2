/**
 * For scripts/compose-smoke.sh: what docker-compose.yml and the Dockerfile say, in shell form.
 *
 *   node --import tsx test/ops/helpers/compose-cli.ts env KMS_ENDPOINT PORT DATA_DIR
 *       the envelope service's environment as KEY=VALUE lines (composeServiceLocalEnv)
 *   node --import tsx test/ops/helpers/compose-cli.ts image-env
 *       the image's own ENV (what `docker run` without -e gives the service) as KEY=VALUE lines
 *   node --import tsx test/ops/helpers/compose-cli.ts seed
 *       the host path of the seed file mounted into local-kms, then its KMS_REGION and KMS_ACCOUNT_ID
 *   node --import tsx test/ops/helpers/compose-cli.ts healthcheck
 *       the image's HEALTHCHECK command, NUL-separated
 *   node --import tsx test/ops/helpers/compose-cli.ts compose-healthcheck
 *       the envelope service's compose health check command, NUL-separated
 *   node --import tsx test/ops/helpers/compose-cli.ts mem-limit
 *       the envelope service's mem_limit in bytes
 */
import { mkdirSync } from 'node:fs';
import { composeEnvironment, composeHealthcheck, composeMounts, composeServiceLocalEnv, dockerBytes, hostPathOf, loadCompose } from './deploy-files.js';
import { imageEnv, imageHealthcheck } from './dockerfile-facts.js';

const [command, ...args] = process.argv.slice(2);

switch (command) {
  case 'env': {
    const [kmsEndpoint, port, dataDir] = args;
    if (!kmsEndpoint || !port || !dataDir) throw new Error('usage: env KMS_ENDPOINT PORT DATA_DIR');
    const env = composeServiceLocalEnv({ kmsEndpoint, port: Number(port), dataDir });
    mkdirSync(dataDir, { recursive: true });
    for (const [name, value] of Object.entries(env)) {
      if (/[\n\0]/.test(value)) throw new Error(`${name} holds a newline`);
      process.stdout.write(`${name}=${value}\n`);
    }
    break;
  }
  case 'image-env': {
    for (const [name, value] of Object.entries(imageEnv())) process.stdout.write(`${name}=${value}\n`);
    break;
  }
  case 'seed': {
    const kms = loadCompose().services['local-kms'];
    if (!kms) throw new Error('no local-kms service');
    const env = composeEnvironment(kms);
    const seed = hostPathOf(env.KMS_SEED_PATH ?? '/init/seed.yaml', composeMounts(kms), () => '');
    if (!seed) throw new Error('local-kms has no seed mounted at KMS_SEED_PATH');
    process.stdout.write(`${seed}\n${env.KMS_REGION ?? ''}\n${env.KMS_ACCOUNT_ID ?? ''}\n`);
    break;
  }
  case 'healthcheck': {
    const healthcheck = imageHealthcheck();
    if (!healthcheck) throw new Error('the Dockerfile has no HEALTHCHECK');
    process.stdout.write(healthcheck.command.join('\0'));
    break;
  }
  case 'compose-healthcheck': {
    const envelope = loadCompose().services.envelope;
    if (!envelope) throw new Error('no envelope service');
    process.stdout.write(composeHealthcheck(envelope).join('\0'));
    break;
  }
  case 'mem-limit': {
    const limit = loadCompose().services.envelope?.mem_limit;
    if (limit === undefined) throw new Error('the envelope service has no mem_limit');
    process.stdout.write(`${dockerBytes(String(limit))}\n`);
    break;
  }
  default:
    process.stderr.write('usage: compose-cli.ts env KMS_ENDPOINT PORT DATA_DIR | image-env | seed | healthcheck | compose-healthcheck | mem-limit\n');
    process.exit(2);
}
