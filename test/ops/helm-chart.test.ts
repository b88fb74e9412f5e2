/**
 * The Helm chart (deploy/helm/envelope-service) as `helm template` renders it with its default
 * values: the security settings an operator relies on are there, and a change that drops one
 * fails here. Also: the pod's environment passes the service's own loadConfig(), the default
 * policy loads and denies, shutdown timings agree with SHUTDOWN_GRACE_MS, the NetworkPolicy has
 * the documented shape, and the optional PrometheusRule carries the alerts docs/OPERATIONS.md
 * recommends, on metric names the service really exports.
 *
 * The schema, lint and checkov gates run in scripts/helm-gates.sh (CI). helm is looked up at
 * .tools/helm/bin/helm, then on PATH; without it the suite is skipped locally with a message
 * and fails when CI=true.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyFile } from '../../src/authz/policy-load.js';
import { ConfigSchema, loadConfig } from '../../src/config.js';
import { ServiceMetrics } from '../../src/metrics/metrics.js';
import { REPO_ROOT } from './helpers/service-process.js';

const CHART = join(REPO_ROOT, 'deploy/helm/envelope-service');
const RELEASE = 'envelope-service';
const NAMESPACE = 'envelope';
/** Chart.yaml's kubeVersion floor, as scripts/helm-gates.sh validates against. */
const KUBE_VERSION = '1.30.0';

function findHelm(): string | undefined {
  const local = join(REPO_ROOT, '.tools/helm/bin/helm');
  if (existsSync(local)) return local;
  const found = spawnSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' });
  return found.status === 0 && found.stdout.trim() ? found.stdout.trim() : undefined;
}

const HELM = findHelm();
const inCi = process.env.CI === 'true';
if (!HELM && !inCi) {
  console.warn('[helm-chart] helm not found (.tools/helm/bin/helm or PATH): Helm chart tests SKIPPED. Install it with scripts/helm-gates.sh install.');
}

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; annotations?: Record<string, string> }; spec?: any; data?: Record<string, string> };

function render(...args: string[]): Manifest[] {
  const result = spawnSync(HELM!, ['template', RELEASE, CHART, '--namespace', NAMESPACE, '--kube-version', KUBE_VERSION, ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.status !== 0) throw new Error(`helm template failed: ${result.stderr || result.error}`);
  return parseAllDocuments(result.stdout)
    .map((doc) => doc.toJS() as Manifest | null)
    .filter((doc): doc is Manifest => doc !== null);
}

function only(manifests: Manifest[], kind: string, name = RELEASE): Manifest {
  const found = manifests.filter((m) => m.kind === kind && m.metadata.name === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0]!;
}

describe('Helm chart, rendered with default values', () => {
  if (!HELM && inCi) {
    it('has helm in CI', () => {
      expect.fail('CI=true but helm is missing: run scripts/helm-gates.sh install before the tests (the chart test must not be skipped in CI)');
    });
  }

  describe.runIf(HELM)('with helm', () => {
    let manifests: Manifest[];
    let deployment: Manifest;
    let pod: any;
    let container: any;
    let env: Map<string, any>;

    beforeAll(() => {
      manifests = render();
      deployment = only(manifests, 'Deployment');
      pod = deployment.spec.template.spec;
      expect(pod.containers).toHaveLength(1);
      container = pod.containers[0];
      env = new Map(container.env.map((e: any) => [e.name, e]));
    }, 90_000);

    it('renders exactly the default set of objects, all in the release namespace', () => {
      const kinds = manifests.map((m) => `${m.kind}/${m.metadata.name}`).sort();
      expect(kinds).toEqual(
        [
          `ConfigMap/${RELEASE}-audit-rotation`,
          `ConfigMap/${RELEASE}-policy`,
          `Deployment/${RELEASE}`,
          `HorizontalPodAutoscaler/${RELEASE}`,
          `NetworkPolicy/${RELEASE}`,
          `PodDisruptionBudget/${RELEASE}`,
          `Service/${RELEASE}`,
          `Service/${RELEASE}-pods`,
          `ServiceAccount/${RELEASE}`,
        ].sort(),
      );
      for (const m of manifests) expect(m.metadata.namespace, `${m.kind} namespace`).toBe(NAMESPACE);
    });

    it('runs as a non-root numeric user with seccomp RuntimeDefault, at pod and container level', () => {
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: expect.any(Number),
        seccompProfile: { type: 'RuntimeDefault' },
      });
      expect(pod.securityContext.runAsUser).toBeGreaterThan(0);
      expect(pod.hostNetwork ?? false).toBe(false);
      expect(pod.hostPID ?? false).toBe(false);
      expect(pod.hostIPC ?? false).toBe(false);
      const sc = container.securityContext;
      expect(sc.runAsNonRoot).toBe(true);
      expect(sc.runAsUser).toBeGreaterThan(0);
      expect(sc.seccompProfile).toEqual({ type: 'RuntimeDefault' });
    });

    it('has a read-only root filesystem, no privilege escalation, every capability dropped and none added', () => {
      const sc = container.securityContext;
      expect(sc.readOnlyRootFilesystem).toBe(true);
      expect(sc.allowPrivilegeEscalation).toBe(false);
      expect(sc.privileged ?? false).toBe(false);
      expect(sc.capabilities.drop).toEqual(['ALL']);
      expect(sc.capabilities.add ?? []).toEqual([]);
    });

    it('gives every path the service writes a volume of its own (the root filesystem is read-only)', () => {
      const mounts = new Map(container.volumeMounts.map((m: any) => [m.mountPath, m]));
      const volumes = new Map(pod.volumes.map((v: any) => [v.name, v]));
      const auditLog = env.get('AUDIT_LOG').value as string;
      const digest = env.get('AUDIT_DIGEST_FILE').value as string;
      const spool = env.get('STREAM_SPOOL_DIR').value as string;
      for (const path of [auditLog, digest, join(spool, 'x'), '/tmp/x']) {
        const mount = [...mounts.values()].find((m: any) => path.startsWith(`${m.mountPath}/`)) as any;
        expect(mount, `a writable volume under ${path}`).toBeDefined();
        expect(mount.readOnly ?? false, path).toBe(false);
        // emptyDir, bounded: a full disk is the pod's, not the node's.
        expect((volumes.get(mount.name) as any).emptyDir.sizeLimit, path).toBeDefined();
      }
      // The policy is mounted as a directory (no subPath: ConfigMap updates must reach it), read-only.
      const policy = mounts.get('/etc/envelope/policy') as any;
      expect(policy).toMatchObject({ name: 'policy', readOnly: true });
      expect(policy.subPath).toBeUndefined();
      expect(env.get('POLICY_FILE').value).toBe('/etc/envelope/policy/policy.yaml');
    });

    it('mounts no Kubernetes API token (IRSA and Pod Identity project their own)', () => {
      expect(pod.automountServiceAccountToken).toBe(false);
      const account = only(manifests, 'ServiceAccount');
      expect((account as any).automountServiceAccountToken).toBe(false);
      expect(pod.serviceAccountName).toBe(RELEASE);
      // The IRSA annotation is written when a role is given.
      const withRole = only(render('--set', 'serviceAccount.roleArn=arn:aws:iam::111122223333:role/envelope'), 'ServiceAccount');
      expect(withRole.metadata.annotations?.['eks.amazonaws.com/role-arn']).toBe('arn:aws:iam::111122223333:role/envelope');
    });

    it('takes INSTANCE_ID, the audit file and the digest file from the pod name (downward API)', () => {
      expect(env.get('POD_NAME').valueFrom).toEqual({ fieldRef: { fieldPath: 'metadata.name' } });
      expect(env.get('INSTANCE_ID').value).toBe('$(POD_NAME)');
      // One writer per audit file.
      expect(env.get('AUDIT_LOG').value).toContain('$(POD_NAME)');
      expect(env.get('AUDIT_DIGEST_FILE').value).toContain('$(POD_NAME)');
      // $(VAR) only expands variables defined earlier in the list.
      const names = container.env.map((e: any) => e.name);
      expect(names.indexOf('POD_NAME')).toBeLessThan(names.indexOf('INSTANCE_ID'));
    });

    it('probes /healthz for liveness and startup, /readyz for readiness, on the service port', () => {
      expect(container.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
      expect(env.get('PORT').value).toBe('8080');
      expect(container.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(container.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    });

    it('derives SHUTDOWN_GRACE_MS and terminationGracePeriodSeconds from one value, with the preStop sleep inside', () => {
      const graceMs = Number(env.get('SHUTDOWN_GRACE_MS').value);
      const preStop = container.lifecycle.preStop.sleep.seconds as number;
      expect(preStop).toBeGreaterThan(0);
      // Kubernetes counts the preStop sleep inside the grace period, then the drain needs SHUTDOWN_GRACE_MS.
      expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(preStop + graceMs / 1000);
      const longer = render('--set', 'shutdown.graceSeconds=40');
      const longerPod = only(longer, 'Deployment').spec.template.spec;
      const longerEnv = new Map(longerPod.containers[0].env.map((e: any) => [e.name, e.value]));
      expect(longerEnv.get('SHUTDOWN_GRACE_MS')).toBe('40000');
      expect(longerPod.terminationGracePeriodSeconds - pod.terminationGracePeriodSeconds).toBe(40 - graceMs / 1000);
    });

    it('asks about one CPU per replica and bounds memory, with V8 sized under the limit', () => {
      expect(container.resources.requests.cpu).toBe('1');
      expect(container.resources.limits.memory).toBeDefined();
      expect(container.resources.requests.memory).toBe(container.resources.limits.memory);
      expect(env.get('MEMORY_LIMIT_BYTES').valueFrom).toEqual({ resourceFieldRef: { containerName: 'envelope', resource: 'limits.memory' } });
      expect(env.get('NODE_OPTIONS').value).toMatch(/--max-old-space-size=\d+/);
    });

    it('spreads replicas over zones and nodes', () => {
      const keys = pod.topologySpreadConstraints.map((c: any) => c.topologyKey).sort();
      expect(keys).toEqual(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
      for (const c of pod.topologySpreadConstraints) {
        expect(c.labelSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
      }
    });

    it('gives the service an environment its own loadConfig() accepts, every name one it reads', () => {
      // What the kubelet does: resolve the downward API and $(VAR) references.
      const resolved: Record<string, string> = { AWS_REGION: 'eu-west-2' }; // injected by the EKS webhook
      for (const e of container.env) {
        if (e.value !== undefined) resolved[e.name] = String(e.value).replace(/\$\((\w+)\)/g, (_, n: string) => resolved[n] ?? '');
        else if (e.valueFrom?.fieldRef) resolved[e.name] = `${RELEASE}-7d9f8b6c5d-x2x7q`;
        else if (e.valueFrom?.resourceFieldRef) resolved[e.name] = String(512 * 1024 * 1024);
      }
      // POD_NAME feeds the others; NODE_OPTIONS is node's; REDIS_URL belongs to the shared limits.
      const known = new Set([...Object.keys(ConfigSchema.properties), 'POD_NAME', 'NODE_OPTIONS', 'REDIS_URL']);
      for (const name of Object.keys(resolved)) expect(known.has(name), name).toBe(true);
      const config = loadConfig(resolved);
      expect(config.KMS_PROVIDER).toBe('aws');
      expect(config.INSTANCE_ID).toBe(`${RELEASE}-7d9f8b6c5d-x2x7q`);
      expect(config.SHUTDOWN_GRACE_MS).toBe(Number(env.get('SHUTDOWN_GRACE_MS').value));
    });

    it('ships a default policy that loads and grants nothing', async () => {
      const configMap = only(manifests, 'ConfigMap', `${RELEASE}-policy`);
      const dir = mkdtempSync(join(tmpdir(), 'helm-policy-'));
      try {
        writeFileSync(join(dir, 'policy.yaml'), configMap.data!['policy.yaml']!);
        const loaded = await loadPolicyFile(join(dir, 'policy.yaml'));
        expect(loaded.summary).toEqual({ rules: 0, apiKeys: 1, jwt: 'none' });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('rolls the pods when the policy changes (checksum annotation)', () => {
      const checksum = (m: Manifest[]) => only(m, 'Deployment').spec.template.metadata.annotations['checksum/policy'];
      const before = checksum(manifests);
      expect(before).toMatch(/^[0-9a-f]{64}$/);
      expect(checksum(render('--set-string', 'policy.files.policy\\.yaml=version: 1'))).not.toBe(before);
    });

    it('admits only labelled clients, the front tier and monitoring, to the service port; egress to DNS, KMS on 443, Redis', () => {
      const policy = only(manifests, 'NetworkPolicy').spec;
      expect(policy.podSelector.matchLabels).toEqual(deployment.spec.selector.matchLabels);
      expect(policy.policyTypes.sort()).toEqual(['Egress', 'Ingress']);
      expect(policy.ingress).toHaveLength(1);
      const ingress = policy.ingress[0];
      expect(ingress.ports).toEqual([{ port: 'http', protocol: 'TCP' }]);
      // Every peer names pods by label: none is "anyone" (an empty peer, or an ipBlock).
      for (const peer of ingress.from) {
        expect(peer.ipBlock).toBeUndefined();
        expect(Object.keys(peer.podSelector?.matchLabels ?? {}).length + Object.keys(peer.namespaceSelector?.matchLabels ?? {}).length).toBeGreaterThan(0);
      }
      expect(ingress.from[0].podSelector.matchLabels).toEqual({ 'envelope-service/client': 'true' });
      expect(ingress.from.some((p: any) => p.podSelector?.matchLabels?.['app.kubernetes.io/name'] === 'envelope-haproxy')).toBe(true);
      expect(ingress.from.some((p: any) => p.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'monitoring')).toBe(true);

      const egressPorts = policy.egress.map((rule: any) => rule.ports.map((p: any) => `${p.protocol}/${p.port}`).sort().join(','));
      expect(egressPorts.sort()).toEqual(['TCP/443', 'TCP/53,UDP/53']);
      // Redis joins the egress rules when it is configured, and only then.
      const withRedis = only(render('--set', 'redis.url=redis://redis:6379'), 'NetworkPolicy').spec;
      const redisRule = withRedis.egress.find((rule: any) => rule.ports.some((p: any) => p.port === 6379));
      expect(redisRule?.to).toEqual([{ podSelector: { matchLabels: { 'app.kubernetes.io/name': 'redis' } } }]);
    });

    it('admits only the front tier and monitoring when direct clients are off, and never renders an open ingress rule', () => {
      const frontOnly = only(render('--set', 'networkPolicy.allowDirectClients=false'), 'NetworkPolicy').spec;
      expect(frontOnly.ingress[0].from).toHaveLength(2);
      expect(frontOnly.ingress[0].from.some((p: any) => p.podSelector?.matchLabels?.['envelope-service/client'])).toBe(false);
      const none = spawnSync(
        HELM!,
        ['template', RELEASE, CHART, '--kube-version', KUBE_VERSION, '--set', 'networkPolicy.allowDirectClients=false', '--set', 'networkPolicy.frontTier.podSelector=null', '--set', 'networkPolicy.frontTier.namespaceSelector=null', '--set', 'networkPolicy.monitoring.podSelector=null', '--set', 'networkPolicy.monitoring.namespaceSelector=null'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(none.status).not.toBe(0);
      expect(none.stderr).toContain('an empty rule would admit everyone');
    });

    it('feeds REDIS_URL from a Secret, never as a literal in the pod spec', () => {
      expect(env.has('REDIS_URL')).toBe(false);
      const own = render('--set', 'redis.url=redis://:hunter2@redis:6379');
      const redisEnv = only(own, 'Deployment').spec.template.spec.containers[0].env.find((e: any) => e.name === 'REDIS_URL');
      expect(redisEnv).toEqual({ name: 'REDIS_URL', valueFrom: { secretKeyRef: { name: `${RELEASE}-redis`, key: 'url' } } });
      expect(JSON.stringify(only(own, 'Deployment'))).not.toContain('hunter2');
      const existing = render('--set', 'redis.existingSecret.name=redis-auth', '--set', 'redis.existingSecret.key=uri');
      const existingEnv = only(existing, 'Deployment').spec.template.spec.containers[0].env.find((e: any) => e.name === 'REDIS_URL');
      expect(existingEnv.valueFrom.secretKeyRef).toEqual({ name: 'redis-auth', key: 'uri' });
      expect(existing.some((m) => m.kind === 'Secret')).toBe(false);
    });

    it('keeps a replica in service during voluntary disruptions and rollouts, and scales on CPU', () => {
      expect(only(manifests, 'PodDisruptionBudget').spec).toMatchObject({ maxUnavailable: 1, selector: deployment.spec.selector });
      expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
      const hpa = only(manifests, 'HorizontalPodAutoscaler').spec;
      expect(hpa.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: RELEASE });
      expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
      expect(hpa.metrics[0].resource.name).toBe('cpu');
      // The HPA owns the replica count.
      expect(deployment.spec.replicas).toBeUndefined();
    });

    it('rotates the audit log in a native sidecar: the service image, the same hardening, the chart\'s script, pruning off', () => {
      const rotation = pod.initContainers.find((c: any) => c.name === 'audit-rotation');
      expect(rotation.restartPolicy).toBe('Always');
      expect(rotation.image).toBe(container.image);
      expect(rotation.securityContext).toEqual(container.securityContext);
      expect(rotation.volumeMounts).toContainEqual({ name: 'audit', mountPath: '/var/log/envelope' });
      const rotationEnv = new Map(rotation.env.map((e: any) => [e.name, e]));
      expect((rotationEnv.get('AUDIT_LOG') as any).value).toBe(env.get('AUDIT_LOG').value);
      expect((rotationEnv.get('POD_NAME') as any).valueFrom).toEqual(env.get('POD_NAME').valueFrom);
      // Deleting audit records is opt-in: by default the sidecar never prunes a rotated file.
      expect((rotationEnv.get('PRUNE_ROTATED') as any).value).toBe('false');
      const script = only(manifests, 'ConfigMap', `${RELEASE}-audit-rotation`).data!['rotate-audit.mjs'];
      expect(script).toBe(readFileSync(join(CHART, 'files/rotate-audit.mjs'), 'utf8'));
      expect(rotation.command).toEqual(['node', '/etc/envelope/rotation/rotate-audit.mjs']);
    });

    it('refuses a misspelt value instead of silently keeping the default (values.schema.json)', () => {
      const misspelt = spawnSync(HELM!, ['template', RELEASE, CHART, '--kube-version', KUBE_VERSION, '--set', 'networkPolicy.enbled=false'], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(misspelt.status).not.toBe(0);
      expect(misspelt.stderr).toContain("additional properties 'enbled' not allowed");
    });

    it('explains every checkov skip it carries', () => {
      for (const m of manifests) {
        for (const [key, value] of Object.entries(m.metadata.annotations ?? {})) {
          if (key.startsWith('checkov.io/skip')) expect(value, `${m.kind} ${key}`).toMatch(/^CKV2?_K8S_\d+=\S.{20,}/);
        }
      }
    });

    describe('with the optional monitoring and audit shipping on', () => {
      let optional: Manifest[];
      beforeAll(() => {
        optional = render('-f', join(CHART, 'ci/all-features-values.yaml'));
      }, 60_000);

      it('carries every alert docs/OPERATIONS.md recommends, on metric names the service exports', async () => {
        const rule = only(optional, 'PrometheusRule');
        const exprs: string[] = rule.spec.groups.flatMap((g: any) => g.rules.map((r: any) => String(r.expr)));
        // Every selector in the rule is `metric{...}` (each is scoped to the release).
        const inRule = new Set(exprs.flatMap((e) => [...e.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\{/g)].map((m) => m[1]!)));
        expect(inRule.size).toBeGreaterThan(10);

        const exported = new Set<string>();
        for (const metric of await new ServiceMetrics().registry.getMetricsAsJSON()) {
          exported.add(metric.name);
          if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_count', '_sum']) exported.add(metric.name + suffix);
        }
        for (const name of inRule) expect(exported.has(name), `${name} is exported by the service`).toBe(true);

        const operations = readFileSync(join(REPO_ROOT, 'docs/OPERATIONS.md'), 'utf8');
        const table = operations.slice(operations.indexOf('### What to alert on'), operations.indexOf('A sample scrape configuration'));
        const rows = table.split('\n').filter((line) => line.startsWith('| ') && line.includes('`'));
        expect(rows.length).toBeGreaterThan(10);
        for (const row of rows) {
          // The expression is the second column's first code span (the rest of the cell explains).
          const expression = /`([^`]+)`/.exec(row.split(' | ')[1] ?? '')?.[1] ?? '';
          const named = (expression.match(/[a-zA-Z_:][a-zA-Z0-9_:]*/g) ?? []).filter((word) => exported.has(word));
          expect(named.length, `a metric the service exports in: ${expression}`).toBeGreaterThan(0);
          for (const name of named) expect(inRule.has(name), `alert on ${name} (OPERATIONS.md)`).toBe(true);
        }
        // Every series selector is scoped to this release.
        for (const e of exprs) expect(e.match(/\{/g)?.length, e).toBe(e.match(new RegExp(`job="${RELEASE}",namespace="${NAMESPACE}"`, 'g'))?.length);
      });

      it('runs the audit shipper as a native sidecar reading the audit volume read-only, as the service user', () => {
        const spec = only(optional, 'Deployment').spec.template.spec;
        const shipper = spec.initContainers.find((c: any) => c.name === 'audit-shipper');
        expect(shipper.restartPolicy).toBe('Always');
        expect(shipper.volumeMounts).toContainEqual({ name: 'audit', mountPath: '/var/log/envelope', readOnly: true });
        expect(shipper.securityContext).toMatchObject({
          runAsUser: spec.securityContext.runAsUser,
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ['ALL'] },
        });
        const config = only(optional, 'ConfigMap', `${RELEASE}-audit-shipper`).data!['fluent-bit.conf']!;
        expect(config).toContain('Path              /var/log/envelope/audit-*.log*');
        expect(config).toContain('Path              /var/log/envelope/digest-*.jsonl');
        // The grace period also covers the shipper's flush after the service exits.
        const defaults = only(render(), 'Deployment').spec.template.spec.terminationGracePeriodSeconds;
        expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(defaults);
      });
    });
  });
});

