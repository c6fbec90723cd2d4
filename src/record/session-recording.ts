import { randomInt } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { enhancedPacket } from '../capture/pcapng-writer.js'
import { RECORDER_CUT_COMMENT } from '../capture/reassembly.js'
import { SyntheticTcp, type TcpEndpoint } from '../capture/synthetic-tcp.js'
import type { Recorder } from './recorder.js'

type State = 'waiting' | 'on' | 'off'

/** Microseconds since the epoch, with sub-millisecond precision. */
function nowUs (): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000)
}

/**
 * The recording of one client connection: turns the connection's events (main connected, a client chunk, a chunk
 * of main's, FINs, a failure) into the packets of one TCP conversation between the client's and main's real
 * addresses, and queues them on the {@link Recorder}. It owns nothing that needs releasing; the connection calls
 * {@link finish} once when it is done.
 *
 * Either the whole connection is in the recording, or it ends with a RST whose packet comment says it was cut off
 * (replay skips those), or nothing of it is: it never has a hole.
 *
 * Chunks are queued by reference, never copied: the client's and main's sockets hand out a fresh Buffer per read
 * (only mirror sockets read into a reused buffer, and mirrors are not recorded), as the comparers also rely on.
 */
export class SessionRecording {
  private state: State = 'waiting'
  private tcp: SyntheticTcp | undefined
  private clientFin = false
  private mainFin = false
  private finished = false

  constructor (private readonly recorder: Recorder, readonly id: number, private readonly peerClient: TcpEndpoint) {}

  /** Main accepted: the handshake is written, if the recorder admits the connection. */
  connected (server: TcpEndpoint): void {
    if (this.state !== 'waiting') return
    if (!this.recorder.admit()) {
      this.state = 'off'
      return
    }
    this.tcp = new SyntheticTcp(this.peerClient, server, randomInt(0, 2 ** 32), randomInt(0, 2 ** 32))
    this.state = 'on'
    this.put(this.tcp.handshake())
  }

  /** A chunk the client sent (and main was given). */
  client (chunk: Buffer): void {
    if (this.state === 'on') this.put(this.tcp!.data(true, chunk))
  }

  /** A chunk main sent (and the client was given). */
  main (chunk: Buffer): void {
    if (this.state === 'on') this.put(this.tcp!.data(false, chunk))
  }

  clientEnd (): void {
    if (this.state !== 'on' || this.clientFin) return
    this.clientFin = true
    this.put([this.tcp!.fin(true)])
  }

  mainEnd (): void {
    if (this.state !== 'on' || this.mainFin) return
    this.mainFin = true
    this.put([this.tcp!.fin(false)])
  }

  /**
   * The connection is over. Closed cleanly both ways: the last ACK. Otherwise (a reset, a failure, shutdown) a RST,
   * as the peers saw it. Idempotent.
   */
  finish (): void {
    if (this.finished) return
    this.finished = true
    if (this.state !== 'on') return
    this.state = 'off'
    const tcp = this.tcp!
    if (this.clientFin && this.mainFin) this.recorder.enqueue([this.epb(tcp.ack(true))], true)
    else this.recorder.enqueue([this.epb(tcp.rst(!this.clientFin))], true)
  }

  private epb (packet: Buffer[], comment?: string): Buffer[] {
    return enhancedPacket(nowUs(), packet, comment)
  }

  private put (packets: Buffer[][]): void {
    const ts = nowUs()
    const blocks = packets.map((p) => enhancedPacket(ts, p))
    if (this.recorder.enqueue(blocks)) return
    // The queue is full: this connection's recording ends here, marked, so that nobody replays it as if whole.
    this.state = 'off'
    this.finished = true
    this.recorder.enqueue([this.epb(this.tcp!.rst(true), RECORDER_CUT_COMMENT)], true)
    this.recorder.cutOff()
  }
}
