/**
 * Writes the flag table generated from the option table (src/options.ts) into README.md, between
 * `<!-- options:start -->` and `<!-- options:end -->`. Run after a build: `node dist/cmd/tcptee/docs-options.js`.
 * test/options.test.ts fails while README.md's table differs from the generated one.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { optionsMarkdownTable } from '../../src/options.js'

export const README_START = '<!-- options:start -->'
export const README_END = '<!-- options:end -->'

/** `text` with the generated table between the markers (each on a line of its own); throws without the markers. */
export function readmeWithOptions (text: string): string {
  const start = text.indexOf(README_START)
  const end = text.indexOf(README_END)
  if (start < 0 || end < start) throw new Error(`README.md needs ${README_START} and ${README_END} around the flag table`)
  return `${text.slice(0, start + README_START.length)}\n${optionsMarkdownTable()}${text.slice(end)}`
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const readme = fileURLToPath(new URL('../../../README.md', import.meta.url))
  const before = readFileSync(readme, 'utf8')
  const after = readmeWithOptions(before)
  if (after !== before) writeFileSync(readme, after)
  process.stdout.write(after === before ? 'README.md: flag table already up to date\n' : 'README.md: flag table rewritten\n')
}
