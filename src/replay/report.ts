import type { ReplayProgress, ReplaySummary } from './replayer.js'

/** How a replay looks to a person: the progress line on a terminal and the summary. JSON is the summary as is. */

function size (n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(2)} GiB`
}

/** One line, redrawn in place: `[#######.....] 12/50 connections  1.2 MiB sent  3.4 s  0 diverged`. */
export function progressLine (p: ReplayProgress, width = 24): string {
  const filled = p.total === 0 ? width : Math.round((p.done / p.total) * width)
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled)
  return `[${bar}] ${p.done}/${p.total} connections  ${size(p.bytesSent)} sent  ${(p.elapsedMs / 1000).toFixed(1)} s  ${p.diverged} diverged`
}

/** The summary as lines of text. */
export function summaryText (s: ReplaySummary, files: readonly string[], target: string): string {
  const c = s.connections
  const ends = Object.entries(c.ends).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'
  const lines = [
    `replayed ${c.replayed} connections from ${files.join(' ')} to ${target} in ${s.durations.replaySeconds.toFixed(3)} s ` +
      `(recorded over ${s.durations.recordedSeconds.toFixed(3)} s: ${s.durations.speedUp.toFixed(1)}x)`,
    `  ends:    ${ends}`,
    `  bytes:   sent ${size(s.bytes.sent)} of ${size(s.bytes.recordedFromClient)} recorded from clients; received ${size(s.bytes.received)} (main had sent ${size(s.bytes.recordedFromServer)})`,
    `  skipped: ${c.skippedMidConnection} started before the capture, ${c.skippedCutByRecorder} cut off by the recorder, ${c.skippedEmpty} without client bytes`,
  ]
  if (s.stalls > 0) lines.push(`  stalls:  ${s.stalls} lock-step waits ran out (the target answered fewer bytes than main had)`)
  for (const g of s.gaps.slice(0, 10)) lines.push(`  gap:     connection ${g.conversation} (${g.client}): ${g.what}`)
  if (s.gaps.length > 10) lines.push(`  gap:     ... and ${s.gaps.length - 10} more`)
  for (const f of s.failures.slice(0, 10)) lines.push(`  failed:  connection ${f.conversation} (${f.client}): ${f.what}`)
  if (s.failures.length > 10) lines.push(`  failed:  ... and ${s.failures.length - 10} more`)
  const d = s.diff
  if (d !== undefined) {
    const outcomes = Object.entries(d.outcomes).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ') || 'none'
    const what = d.comparer === 'bytes' ? `${d.bytesCompared} bytes compared` : `${d.repliesCompared} replies compared, ${d.repliesDiverged} diverged`
    lines.push(`  diff ${d.comparer}: ${outcomes}; ${what}`)
    for (const v of d.divergences) {
      const where = v.index !== undefined ? `reply ${v.index}` : v.offset !== undefined ? `byte ${v.offset}` : ''
      lines.push(`    connection ${v.conversation} (${v.client}) ${where}${v.request === undefined ? '' : ` (${v.request})`}: ${v.outcome}: ${v.what}` +
        `${v.fromMain === null ? '' : ` main "${v.fromMain.text}"`}${v.fromMirror === null ? '' : ` target "${v.fromMirror.text}"`}`)
    }
  }
  return lines.join('\n') + '\n'
}
