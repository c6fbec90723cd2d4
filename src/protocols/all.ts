// Every protocol module, imported statically and registered: what the library entry (src/index.ts) gives its users, so
// that createDuplicator works for any --protocol without loadFeatures(). The tcptee command does not import this file.
import { registerProtocols } from './registry.js'
import { postgresModule } from './postgres/index.js'
import { redisModule } from './redis/index.js'
import { httpModule } from './http/index.js'
import { mysqlModule } from './mysql/index.js'

registerProtocols({ postgres: postgresModule, mysql: mysqlModule, redis: redisModule, http: httpModule })
