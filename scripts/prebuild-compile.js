#!/usr/bin/env node
'use strict';
// Stands in for node-gyp when prebuildify runs it as `<node-gyp> rebuild --target=... --release`:
// the node-gyp arguments do not apply (Node-API binaries do not depend on the Node version), so
// it runs the portable cmake-js build of the backend scripts/prebuild.js asked for.
require('./build-native.js').build({ gpu: process.env.GGUF_SERVE_PREBUILD_GPU || 'cpu', portable: true });
