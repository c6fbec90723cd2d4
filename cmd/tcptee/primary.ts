import cluster, { type Worker } from 'node:cluster'
import type { Logger } from 'pino'
import { workerHandle, type ClusterAdmin } from './cluster.js'

/** Messages from the primary to its workers. Workers ignore signals themselves: Ctrl-C reaches the whole process group. */
export type WorkerCommand = { type: 'shutdown' } | { type: 'kill' }

/**
 * The primary of `--workers N`: forks N workers that each run a duplicator on the shared listen port, forwards the first
 * SIGINT/SIGTERM as a graceful shutdown and a second one as an immediate exit, restarts a worker that dies while running,
 * and exits 1 if a worker fails before it ever listened (it has printed its one-line error already).
 * `admin` gets every worker's messages and exits: it serves the admin API and reloads over IPC (src/cluster-admin.ts).
 */
export function runPrimary (workers: number, log: Logger, admin: ClusterAdmin): void {
  let stopping = false
  let signals = 0
  let listening = 0
  const onWorkerListening = (): void => { listening++ }
  const fork = (): Worker => {
    const w = cluster.fork()
    const handle = workerHandle(w)
    w.once('listening', onWorkerListening)
    w.on('message', (message: unknown) => admin.workerOnMessage(handle, message))
    return w
  }
  for (let i = 0; i < workers; i++) fork()
  cluster.on('exit', (worker, code, signal) => {
    admin.workerOnExit(worker.id)
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(signals > 1 ? 1 : 0)
      return
    }
    if (listening < workers) {
      // A worker died before the whole cluster was up (a listen error, printed by the worker): give up.
      stopping = true
      for (const w of Object.values(cluster.workers ?? {})) w?.kill('SIGKILL')
      process.exit(code === 0 ? 1 : code ?? 1)
    }
    log.error({ workerPid: worker.process.pid, code, signal }, 'worker died; starting a new one')
    fork()
  })
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++
    stopping = true
    const cmd: WorkerCommand = signals > 1 ? { type: 'kill' } : { type: 'shutdown' }
    log.info({ signal, workers: Object.keys(cluster.workers ?? {}).length }, signals > 1 ? 'second signal: stopping workers now' : 'signal received: workers draining')
    for (const w of Object.values(cluster.workers ?? {})) if (w?.isConnected() === true) w.send(cmd)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
}
