/**
 * Watches one file for changes of its content, including the way Kubernetes updates a mounted ConfigMap: the file is
 * a symlink through `..data`, and an update swaps `..data` to a new directory with one atomic rename, then deletes
 * the old directory. No signal is sent and the file's own inode never changes, so watching the file itself sees
 * nothing; the directory holding it sees the rename.
 *
 * Owns its fs watchers and its debounce timer. `onChange` is called once per settled change of the content
 * (after `debounceMs` without further events, and only if the bytes differ from the last ones seen), so an editor's
 * write-rename-chmod or Kubernetes' several renames make one call.
 */
import { createHash } from 'node:crypto'
import { readFileSync, realpathSync, watch, type FSWatcher } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { Logger } from 'pino'
import { silentLogger } from './logger.js'

export interface FileWatcherOptions {
  /** Quiet time after the last event before the file is read. Default 300 ms. */
  debounceMs?: number
  logger?: Logger
}

export class FileWatcher {
  private readonly path: string
  private readonly debounceMs: number
  private readonly log: Logger
  private readonly watchers = new Map<string, FSWatcher>()
  private timer: NodeJS.Timeout | undefined
  private seen: string
  private closed = false

  /** Starts watching at once; the content now is the baseline. */
  constructor (path: string, private readonly onChange: () => void, opts: FileWatcherOptions = {}) {
    this.path = resolve(path)
    this.debounceMs = opts.debounceMs ?? 300
    this.log = (opts.logger ?? silentLogger()).child({ module: 'config-watch' })
    this.seen = this.fingerprint()
    this.rewatch()
  }

  /** Stops watching; a pending change is dropped. Safe to call twice. */
  close (): void {
    this.closed = true
    clearTimeout(this.timer)
    this.timer = undefined
    for (const w of this.watchers.values()) w.close()
    this.watchers.clear()
  }

  /** The directories to watch: the one holding the path, and the one holding what it resolves to now. */
  private rewatch (): void {
    const dirs = new Set([dirname(this.path)])
    try {
      dirs.add(dirname(realpathSync(this.path)))
    } catch {
      // The file is missing right now (mid-swap, or deleted): its own directory is watched, which sees it come back.
    }
    for (const [dir, w] of this.watchers) {
      if (!dirs.has(dir)) { w.close(); this.watchers.delete(dir) }
    }
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue
      try {
        const w = watch(dir, { persistent: false }, this.watcherOnEvent)
        w.on('error', (err) => {
          // The directory went away (the old ConfigMap data directory): forget it; the next event re-resolves.
          this.log.debug({ err, dir }, 'watched directory is gone')
          w.close()
          if (this.watchers.get(dir) === w) this.watchers.delete(dir)
        })
        this.watchers.set(dir, w)
      } catch (err) {
        if (dir === dirname(this.path)) this.log.warn({ err, dir }, 'cannot watch the config file\'s directory; changes need SIGHUP')
      }
    }
  }

  /** The file's content as a digest, or the read error's code: a file that disappears is a change too. */
  private fingerprint (): string {
    try {
      return createHash('sha256').update(readFileSync(this.path)).digest('hex')
    } catch (err) {
      return `error:${(err as NodeJS.ErrnoException).code ?? String(err)}`
    }
  }

  private readonly watcherOnEvent = (): void => {
    if (this.closed) return
    clearTimeout(this.timer)
    this.timer = setTimeout(this.timerOnSettled, this.debounceMs)
  }

  private readonly timerOnSettled = (): void => {
    this.timer = undefined
    if (this.closed) return
    this.rewatch()
    const now = this.fingerprint()
    if (now === this.seen) return
    this.seen = now
    this.onChange()
  }
}
