'use strict';
// Whether a test file that needs the engine can run. The model file is shared data outside the
// checkout: without it the engine tests are skipped, with the reason. The native addon is part of
// the package (npm install builds or fetches it): when it does not load, that is a failure with
// the loader's reason, not a skip, unless GGUF_SERVE_NO_ADDON=1 says this machine has none.
const path = require('node:path');
const { hasModel, root } = require('./server.js');

let addonError;
function loadError() {
  if (addonError === undefined) {
    try {
      require(path.join(root, 'lib', 'engine', 'binding.js')).loadBinding();
      addonError = null;
    } catch (err) {
      addonError = err;
    }
  }
  return addonError;
}

let failed = false;

/**
 * false when the engine tests can run, else why not (for `{ skip }`). An addon that should load
 * and does not fails `t` (once per file) with the loader's message.
 */
function engineSkip(t) {
  if (!hasModel) return 'needs ../shared/models/stories260K.gguf';
  const err = loadError();
  if (!err) return false;
  if (process.env.GGUF_SERVE_NO_ADDON === '1') return `no native addon on this machine (GGUF_SERVE_NO_ADDON=1): ${err.message.split('\n')[0]}`;
  if (!failed) t.fail(`the native addon does not load (set GGUF_SERVE_NO_ADDON=1 where none is meant to be): ${err.message}`);
  failed = true;
  return 'the native addon does not load';
}

/**
 * For the top of a file whose tests need the engine: true when they can run; otherwise the file
 * ends here, skipped (`planned` = the tests already declared above) or failed (see engineSkip).
 */
function engineReady(t, planned = 0) {
  const skip = engineSkip(t);
  if (!skip) return true;
  if (!failed) t.plan(planned, skip);
  return false;
}

module.exports = { engineSkip, engineReady };
