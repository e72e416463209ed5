'use strict';
// A real browser for the playground test: Debian's chromium (or $GGUF_SERVE_BROWSER) driven by
// playwright-core, headless, with a fresh profile and nothing that phones home.
const fs = require('node:fs');

const CANDIDATES = [process.env.GGUF_SERVE_BROWSER, '/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

/** The browser's executable, or null when none is installed. */
function findBrowser() {
  return CANDIDATES.find((p) => p && fs.existsSync(p)) ?? null;
}

const FLAGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/**
 * Launch headless. Playwright gives the browser a new --user-data-dir of its own (removed when it
 * closes), and each context from newContext() its own storage: localStorage survives a reload
 * within one context, never across two.
 */
async function launchBrowser(executablePath) {
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({ executablePath, headless: true, args: FLAGS });
  return {
    newContext: () => browser.newContext({ viewport: { width: 1100, height: 700 }, acceptDownloads: true }),
    close: () => browser.close(),
  };
}

module.exports = { findBrowser, launchBrowser };
