#!/usr/bin/env node
// The `ferry` command: a thin shim over the compiled CLI.
import "../build/core/src/cli/main.js";
