// The admin endpoint (HTTP server, metrics, status page) is loaded only when --admin or --admin-auth-file is set: a
// tcptee without it does not carry its code (see src/features.ts for the duplicator's own optional parts).
import type { CliOptions } from './args.js'

export type AdminModule = typeof import('../../src/ops/admin.js')

/** The admin module when the options use it, else undefined. */
export async function loadAdmin (opts: Pick<CliOptions, 'admin' | 'adminAuthFile'>): Promise<AdminModule | undefined> {
  if (opts.admin === undefined && opts.adminAuthFile === undefined) return undefined
  return await import('../../src/ops/admin.js')
}
