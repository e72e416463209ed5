'use strict';
// A real browser for the playground test: Debian's chromium (or $GGUF_SERVE_BROWSER) driven by
// playwright-core, headless, with a fresh profile folder and nothing that phones home.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const CANDIDATES = [process.env.GGUF_SERVE_BROWSER, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The browser's executable, or null when none is installed. */
function findBrowser() {
  return CANDIDATES.find((p) => p && fs.existsSync(p)) ?? null;
}

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Launch headless with a new --user-data-dir (removed by close()). Returns { context, close }:
 * a Playwright BrowserContext whose pages share that profile (localStorage survives a reload).
 */
async function launchBrowser(executablePath) {
  const { chromium } = require('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'gguf-serve-browser-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    args: FLAGS,
    viewport: { width: 1100, height: 700 },
    acceptDownloads: true,
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

module.exports = { findBrowser, launchBrowser };
