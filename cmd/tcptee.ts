#!/usr/bin/env node
// The tcptee command. Everything is in cmd/tcptee/ (main.ts); this file is only the bin entry.
import { main } from './tcptee/main.js'

void main()
