/** A small fetch wrapper for the admin endpoint tests. */
export interface Answer { status: number; headers: Headers; text: string; json: () => Record<string, unknown> }

export async function call (port: number, path: string, opts: { method?: string; auth?: string; header?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (opts.auth !== undefined) headers['authorization'] = 'Basic ' + Buffer.from(opts.auth).toString('base64')
  if (opts.header !== undefined) headers['authorization'] = opts.header
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { method: opts.method ?? 'GET', headers })
  const text = await res.text()
  return { status: res.status, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> }
}
