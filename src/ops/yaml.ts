import { createRequire } from 'node:module'
import type * as Yaml from 'yaml'

let yaml: typeof Yaml | undefined

/**
 * `yaml`'s parse, loaded on first use: the package costs about 7 MB resident, and most tcptee processes never read
 * a YAML file (no `--config`, no `--mirror-credentials`).
 */
export function parseYaml (text: string, options?: Yaml.ParseOptions & Yaml.DocumentOptions & Yaml.SchemaOptions & Yaml.ToJSOptions): unknown {
  yaml ??= createRequire(import.meta.url)('yaml') as typeof Yaml
  return yaml.parse(text, options)
}
