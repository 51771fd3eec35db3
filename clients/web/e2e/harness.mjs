// What the end-to-end tests of the web app share: a real Guard server
// (built from this checkout), the app's static server, Connect calls from
// Node for set-up and checks, and Debian's headless Chromium driven by
// playwright-core (never a downloaded browser).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const webDir = path.resolve(here, '..');
export const repoRoot = path.resolve(webDir, '..', '..');
export const screenshotDir = path.join(webDir, 'screenshots');
export const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

export const ADMIN_EMAIL = 'admin@example.com';
export const ADMIN_PASSWORD = 'correct horse battery staple';
export const USER_PASSWORD = 'a long test password 1';

/**
 * Why the browser tests cannot run here, or undefined when they can.
 * The caller skips with it, or fails when CI=true.
 */
export function browserMissing() {
  const missing = [];
  if (!existsSync(chromiumPath)) missing.push(chromiumPath);
  if (!existsSync(path.join(webDir, 'dist', 'app.js'))) missing.push('clients/web/dist (npm run build)');
  if (missing.length === 0) return undefined;
  return `the web app's browser tests need ${missing.join(' and ')}: run \`make web-test\` as root ` +
    '(it installs Debian\'s Chromium through `make browser-deps`), or `sudo apt-get install -y chromium`';
}

/** A temporary directory, removed by the returned function. */
export function tempDir(prefix) {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Builds cmd/server into dir; $GO picks the go command (make passes it). */
export function buildGuard(dir) {
  const out = path.join(dir, 'guard');
  const go = process.env.GO || 'go';
  const res = spawnSync(go, ['build', '-o', out, './cmd/server'], {
    cwd: repoRoot,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: 600_000,
  });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`go build ./cmd/server failed (exit ${res.status})`);
  return out;
}

/**
 * Starts the Guard binary on a free loopback port with a fresh database,
 * the admin from ADMIN_EMAIL/ADMIN_PASSWORD and the given flags. Resolves
 * once it prints its address. url is http://127.0.0.1:PORT (for Node);
 * browserUrl is http://localhost:PORT (a secure context to Chromium, which
 * keeps the Secure session cookie there).
 */
// Servers still running when the process exits (a failed or interrupted
// run) are killed then.
const live = new Set();
process.once('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export async function startGuard(bin, dir, flags = []) {
  const db = path.join(dir, `guard-${Date.now()}-${Math.random().toString(36).slice(2)}.db`);
  const proc = spawn(bin, ['-addr=127.0.0.1:0', `-db=${db}`, '-log-level=info', ...flags], {
    cwd: dir,
    env: { ...process.env, GUARD_ADMIN_EMAIL: ADMIN_EMAIL, GUARD_ADMIN_PASSWORD: ADMIN_PASSWORD },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (d) => {
    logs += d;
  });
  live.add(proc);
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => {
    live.delete(proc);
    resolve({ code, signal });
  }));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`guard did not start within 60 s:\n${logs}`)), 60_000);
    const lines = readline.createInterface({ input: proc.stdout });
    lines.on('line', (line) => {
      const m = /^guard listening on (http:\/\/\S+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`guard exited (${code ?? signal}) before listening:\n${logs}`));
    });
  });
  const port = new URL(url).port;
  return {
    url,
    browserUrl: `http://localhost:${port}`,
    logs: () => logs,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/**
 * One Connect unary call with JSON from Node. Resolves to { status, body }
 * whatever the status.
 */
export async function call(baseUrl, procedure, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${baseUrl}/${procedure}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body ?? {}),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, body: json };
}

/** Like call, but throws unless the answer is 200. */
export async function mustCall(baseUrl, procedure, body, token) {
  const res = await call(baseUrl, procedure, body, token);
  if (res.status !== 200) {
    throw new Error(`${procedure}: HTTP ${res.status} ${JSON.stringify(res.body)}`);
  }
  return res.body;
}

export async function login(baseUrl, email, password) {
  const res = await mustCall(baseUrl, 'guard.auth.v1.AuthService/Login', { email, password });
  return res.accessToken;
}

/** Creates a member through AdminService.CreateUser; resolves to { id, email, password }. */
export async function createMember(baseUrl, adminToken, email) {
  const res = await mustCall(baseUrl, 'guard.admin.v1.AdminService/CreateUser',
    { email, password: USER_PASSWORD, roles: ['member'] }, adminToken);
  return { id: res.user.id, email, password: USER_PASSWORD };
}

/** Every note the token's user can read (ListNotes, all pages). */
export async function listNotes(baseUrl, token) {
  const notes = [];
  let pageToken = '';
  do {
    const res = await mustCall(baseUrl, 'guard.notes.v1.NoteService/ListNotes', { pageSize: 100, pageToken }, token);
    notes.push(...(res.notes ?? []));
    pageToken = res.nextPageToken ?? '';
  } while (pageToken);
  return notes;
}

/**
 * A fresh Chromium (its own user-data dir, so its own cookie jar) with one
 * 1200x800 page. Page errors and console errors go to stderr.
 */
export async function launchBrowser() {
  const tmp = tempDir('guard-web-chromium-');
  let context;
  try {
    context = await chromium.launchPersistentContext(tmp.dir, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
      viewport: { width: 1200, height: 800 },
      deviceScaleFactor: 1,
      timeout: 60_000,
    });
  } catch (e) {
    tmp.remove();
    throw e;
  }
  context.setDefaultTimeout(30_000);
  context.setDefaultNavigationTimeout(30_000);
  const page = context.pages()[0] ?? await context.newPage();
  const consoleErrors = [];
  page.on('console', (m) => {
    // Refused calls show as failed loads: expected here, so not kept.
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) consoleErrors.push(m.text());
  });
  page.on('pageerror', (e) => {
    consoleErrors.push(`page error: ${e}`);
    console.error(`[page error] ${e}`);
  });
  return {
    context,
    page,
    consoleErrors,
    async close() {
      try {
        await context.close();
      } finally {
        tmp.remove();
      }
    },
  };
}

/** Saves a screenshot of the page as screenshots/NAME.png. */
export async function shot(page, name) {
  mkdirSync(screenshotDir, { recursive: true });
  const file = path.join(screenshotDir, `${name}.png`);
  await page.screenshot({ path: file, fullPage: false });
  return file;
}

/** Waits until the element of selector is visible with text matching re. */
export async function waitText(page, selector, re, timeout = 30_000) {
  await page.locator(selector).filter({ hasText: re }).first().waitFor({ state: 'visible', timeout });
}

/** Signs in through the app's form and waits for the notes view. */
export async function signIn(page, user) {
  const form = page.locator('#login-form');
  await form.waitFor({ state: 'visible' });
  await form.getByLabel('Email').fill(user.email);
  await form.getByLabel('Password').fill(user.password);
  await form.getByRole('button', { name: 'Sign in' }).click();
  await waitText(page, '#me-id', new RegExp(`^${user.id}$`));
  await page.locator('#notes .note, #notes .empty').first().waitFor({ state: 'visible' });
}

/** The card of the note titled title (exactly). */
export function card(page, title) {
  return page.locator('article.note').filter({
    has: page.locator('.note-title', { hasText: new RegExp(`^${escapeRe(title)}$`) }),
  });
}

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
