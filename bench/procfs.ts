// Linux /proc readings for the benchmark: CPU seconds and peak RSS of a
// process and all its descendants (tcptee --workers N forks workers).
import { readFileSync, readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

let ticksPerSecond = 0

function clockTicks (): number {
  if (ticksPerSecond === 0) {
    try {
      ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      ticksPerSecond = 100
    }
  }
  return ticksPerSecond
}

/** Fields of /proc/PID/stat after the ")" that ends the command name. */
function statFields (pid: number): string[] | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return text.slice(text.lastIndexOf(')') + 2).split(' ')
  } catch {
    return null
  }
}

/** pid and every descendant that is alive now. */
export function processTree (pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const f = statFields(Number(name))
    const ppid = Number(f?.[1]) // field 4 overall: ppid
    if (!Number.isInteger(ppid)) continue
    const list = children.get(ppid) ?? []
    list.push(Number(name))
    children.set(ppid, list)
  }
  const out: number[] = []
  const todo = [pid]
  while (todo.length > 0) {
    const p = todo.pop()!
    out.push(p)
    todo.push(...(children.get(p) ?? []))
  }
  return out
}

/** utime + stime of one process, seconds; 0 if it is gone. */
export function cpuSeconds (pid: number): number {
  const f = statFields(pid)
  if (f === null) return 0
  // Fields 14 and 15 overall (utime, stime) are 11 and 12 after the name.
  return (Number(f[11]) + Number(f[12])) / clockTicks()
}

/** Sum of cpuSeconds over the given pids. */
export function treeCpuSeconds (pids: number[]): number {
  let total = 0
  for (const pid of pids) total += cpuSeconds(pid)
  return total
}

/** VmHWM (peak resident set) of one process, KiB; 0 if unknown. */
export function peakRssKiB (pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? 0 : Number(m[1])
  } catch {
    return 0
  }
}

/** read-like plus write-like system calls so far (syscr + syscw in /proc/PID/io) of one process; 0 if unknown. */
export function ioSyscalls (pid: number): number {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8')
    const r = /^syscr:\s+(\d+)/m.exec(text)
    const w = /^syscw:\s+(\d+)/m.exec(text)
    return Number(r?.[1] ?? 0) + Number(w?.[1] ?? 0)
  } catch {
    return 0
  }
}

/** Sum of ioSyscalls over the given pids. */
export function treeIoSyscalls (pids: number[]): number {
  let total = 0
  for (const pid of pids) total += ioSyscalls(pid)
  return total
}
