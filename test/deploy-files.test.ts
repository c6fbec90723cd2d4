// The deploy/ files are checked by the tools that consume them, where they run here: Prometheus' promtool (rule
// syntax and unit tests of every alert), systemd-analyze verify (the unit), and against tcptee itself: every metric
// the dashboard and the alerts use is one tcptee exports, the Kubernetes ConfigMap is a config file tcptee accepts,
// the pod wires ports, mounts and probes the way the config says, and the Dockerfile keeps to its promises.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseAllDocuments } from 'yaml'
import { fileSchema } from '../cmd/tcptee/args.js'
import { loadConfigFile } from '../cmd/tcptee/config-file.js'
import { normalizeConfig } from '../src/config.js'
import { Metrics } from '../src/ops/metrics.js'
import { PrometheusExporter } from '../src/ops/prometheus.js'
import { findBin, requireBins } from './support/require-bin.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8')

async function run (cmd: string, args: string[], cwd?: string): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  child.stderr.on('data', (d: Buffer) => { err += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, out, err }
}

/** tcptee's /metrics text with one mirror that has a value in every series. */
async function exported (): Promise<string> {
  const m = new Metrics()
  const x = m.mirror('m:80')
  x.connects = 1
  m.observeDuration(1)
  return new PrometheusExporter(() => m.snapshot(), { defaultMetrics: false }).render()
}

t.test('promtool: the alert rules check and their unit tests pass', async (t) => {
  const bins = requireBins(t, ['promtool'], 'apt-get install prometheus')
  if (bins === undefined) return
  const dir = join(ROOT, 'deploy/prometheus')
  const check = await run(bins.promtool, ['check', 'rules', 'alerts.yaml'], dir)
  t.equal(check.code, 0, check.err)
  t.match(check.out, /SUCCESS: 7 rules found/)
  const test = await run(bins.promtool, ['test', 'rules', 'alerts.test.yaml'], dir)
  t.equal(test.code, 0, test.out + test.err)
  t.match(test.out, /SUCCESS/)
})

t.test('every metric the dashboard and the alerts use is exported; names and labels follow Prometheus conventions', async (t) => {
  const text = await exported()
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]))
  const series = new Set([...text.matchAll(/^(tcptee_\w+)(?:\{|\s)/gm)].map((m) => m[1]!))
  for (const [name, type] of types) {
    if (!name.startsWith('tcptee_')) continue
    if (type === 'counter') t.match(name, /_total$/, `${name}: a counter ends in _total`)
    else t.notMatch(name, /_total$/, `${name}: only counters end in _total`)
  }
  const labels = new Set([...text.matchAll(/^tcptee_\w+\{([^}]*)\}/gm)].flatMap((m) => [...m[1]!.matchAll(/(\w+)="/g)].map((l) => l[1]!)))
  // Every label has a bounded set of values: mirrors are configured, `command` is capped at 20 per mirror plus `other`,
  // `reason` is filter or rate, `version`/`node` are one series (tcptee_build_info).
  const bounded = ['command', 'direction', 'fate', 'le', 'mirror', 'node', 'outcome', 'reason', 'state', 'version']
  t.same([...labels].filter((l) => !bounded.includes(l)), [], 'bounded labels only: no client address, no connection id')
  for (const l of ['direction', 'fate', 'le', 'mirror', 'outcome', 'state', 'version', 'node']) t.ok(labels.has(l), `label ${l} is exported`)

  const used = (s: string): string[] => [...new Set([...s.matchAll(/\btcptee_[a-z_]+\b/g)].map((m) => m[0]))]
  const dashboard = JSON.parse(read('deploy/grafana/tcptee.json')) as { uid: string; panels: Array<{ type: string; title: string; targets?: Array<{ expr: string }> }> }
  t.equal(dashboard.uid, 'tcptee-overview')
  const exprs = dashboard.panels.filter((p) => p.type !== 'row').flatMap((p) => {
    t.ok((p.targets ?? []).length > 0, `panel "${p.title}" has a query`)
    return (p.targets ?? []).map((q) => q.expr)
  })
  for (const name of [...used(exprs.join('\n')), ...used(read('deploy/prometheus/alerts.yaml'))]) {
    t.ok(series.has(name), `${name} is exported`)
  }
})

t.test('systemd unit: systemd-analyze verify finds nothing to complain about', async (t) => {
  const analyze = findBin('systemd-analyze')
  if (analyze === undefined) { t.pass('systemd-analyze is not installed here: not verified'); return }
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-unit-'))
  // verify checks that ExecStart's program exists: point it at a stand-in for the installed tcptee.
  const shim = join(dir, 'tcptee')
  writeFileSync(shim, '#!/bin/sh\n')
  chmodSync(shim, 0o755)
  const unit = read('deploy/systemd/tcptee.service')
  for (const key of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'DynamicUser=yes', 'Restart=on-failure', 'ExecReload=/bin/kill -HUP $MAINPID']) {
    t.ok(unit.includes(`\n${key}\n`), key)
  }
  writeFileSync(join(dir, 'tcptee.service'), unit.replace('/usr/bin/tcptee', shim))
  const ok = await run(analyze, ['verify', join(dir, 'tcptee.service')])
  t.equal(ok.code, 0, ok.err)
  t.equal(ok.err, '', 'no warnings')
  // The check is live: a misspelt directive is reported.
  writeFileSync(join(dir, 'bad.service'), unit.replace('/usr/bin/tcptee', shim).replace('NoNewPrivileges=yes', 'NoNewPrivileges=maybe'))
  t.match((await run(analyze, ['verify', join(dir, 'bad.service')])).err, /Failed to parse boolean value/)
})

t.test('Kubernetes sidecar: the ConfigMap is a valid tcptee config and the pod is wired to it', async (t) => {
  const docs = (f: string) => parseAllDocuments(read(`deploy/kubernetes/${f}`)).map((d) => d.toJSON() as Record<string, any>)
  const [cm] = docs('configmap.yaml')
  const [deployment] = docs('deployment.yaml')
  const [service] = docs('service.yaml')
  t.equal(cm!['kind'], 'ConfigMap')
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-cm-'))
  writeFileSync(join(dir, 'tcptee.yaml'), cm!['data']['tcptee.yaml'])
  const file = loadConfigFile(join(dir, 'tcptee.yaml'), fileSchema())
  const config = normalizeConfig({ listen: String(file['listen']), main: String(file['forward']), mirrors: file['mirror'] as string[] })
  t.equal(config.mirrors.length, 1, 'tcptee accepts the ConfigMap\'s file')

  const pod = deployment!['spec']['template']['spec']
  const app = pod.containers.find((c: any) => c.name === 'app')
  const tee = pod.containers.find((c: any) => c.name === 'tcptee')
  const port = (c: any, name: string) => c.ports.find((p: any) => p.name === name).containerPort
  t.equal(config.listen.port, port(tee, 'traffic'), 'tcptee listens on its traffic port')
  t.equal(config.main.port, port(app, 'app'), 'and forwards to the app\'s port')
  t.equal(String(file['admin']).split(':').pop(), String(port(tee, 'admin')), 'admin port')
  t.equal(service!['spec']['ports'][0].targetPort, 'traffic', 'the Service sends clients to tcptee, not the app')
  const configArg = tee.args[tee.args.indexOf('--config') + 1]
  const mount = tee.volumeMounts.find((m: any) => m.name === 'tcptee-config')
  t.equal(mount.mountPath, dirname(configArg), 'the ConfigMap is mounted as the --config file\'s directory')
  t.notOk('subPath' in mount, 'not a subPath mount: those never see ConfigMap updates')
  t.equal(pod.volumes.find((v: any) => v.name === 'tcptee-config').configMap.name, cm!['metadata']['name'])
  t.same(tee.readinessProbe.exec.command.slice(-2), ['status', '--healthz'])
  t.equal(tee.securityContext.allowPrivilegeEscalation, false)
  t.equal(tee.securityContext.readOnlyRootFilesystem, true)
  t.equal(pod.securityContext.runAsNonRoot, true)
})

t.test('Dockerfile: multi-stage, production dependencies only, non-root, HEALTHCHECK on /healthz', async (t) => {
  const df = read('Dockerfile')
  t.ok((df.match(/^FROM /gm) ?? []).length >= 3, 'build, deps and runtime stages')
  t.match(df, /npm ci --omit=dev/, 'the runtime gets production dependencies only')
  const user = /^USER (\S+)$/m.exec(df)?.[1]
  t.match(user, /^[1-9]\d*:[1-9]\d*$/, 'a numeric non-root user (runAsNonRoot can check it)')
  t.match(df, /^HEALTHCHECK .*\n\s+CMD \["node", "\/app\/dist\/cmd\/tcptee.js", "status", "--healthz"\]/m)
  const entry = /^ENTRYPOINT \["node", "\/app\/(\S+)"\]/m.exec(df)?.[1]
  t.ok(entry !== undefined && existsSync(join(ROOT, entry)), `the entry point ${entry ?? ''} is what the build makes`)
  for (const src of [...df.matchAll(/^COPY --from=build \S+ \/src\/(\S+)/gm)].map((m) => m[1]!)) t.ok(existsSync(join(ROOT, src)), `${src} exists after npm run build`)
  t.match(read('.dockerignore'), /^node_modules$/m)
})
