import { readFileSync } from 'node:fs'
import { readCapture } from '../capture/capture-reader.js'
import { Reassembler, type Conversation, type ReassemblyStats } from '../capture/reassembly.js'
import { CaptureError } from '../ops/errors.js'

/** The conversations of one or more capture files (rotated recordings are read as one, in the order given). */
export interface LoadedCapture {
  readonly conversations: Conversation[]
  readonly stats: ReassemblyStats
  readonly files: readonly string[]
  /** Bytes read from the files. */
  readonly fileBytes: number
}

/**
 * Reads and reassembles capture files. Any problem with a file throws {@link CaptureError} naming the file and
 * the problem (`capture.pcap: truncated at byte 1234`). The files are held in memory while replaying: the streams
 * are views into them.
 */
export function loadCaptures (files: readonly string[], serverPort?: number): LoadedCapture {
  const r = new Reassembler(serverPort)
  let fileBytes = 0
  for (const file of files) {
    let buf: Buffer
    try {
      buf = readFileSync(file)
    } catch (err) {
      throw new CaptureError(`${file}: cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
    }
    fileBytes += buf.length
    try {
      for (const p of readCapture(buf)) r.add(p)
    } catch (err) {
      if (err instanceof CaptureError) throw new CaptureError(`${file}: ${err.message}`, { cause: err })
      throw err
    }
  }
  return { conversations: r.finish(), stats: r.stats, files, fileBytes }
}
