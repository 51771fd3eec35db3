// make web: the app at http://localhost:5173 against a Guard server of its
// own, for a person to try. Builds cmd/server, starts it on 127.0.0.1:8080
// (a free port if 8080 is taken) with a temporary database and
// -cors-origins=http://localhost:5173, creates two members to share notes
// between, serves dist/, and stops both on Ctrl-C.
//
// Environment: WEB_PORT (5173), WEB_API_PORT (8080), GO (go),
// GUARD_ADMIN_EMAIL and GUARD_ADMIN_PASSWORD (else a fixed demo password).
// Needs dist/ built (npm run build).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { distDir, serveApp } from './serve.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const appPort = Number(process.env.WEB_PORT || 5173);
const wantApiPort = Number(process.env.WEB_API_PORT || 8080);
const adminEmail = process.env.GUARD_ADMIN_EMAIL || 'admin@example.com';
const adminPassword = process.env.GUARD_ADMIN_PASSWORD || 'correct horse battery staple';
const demoUsers = [
  { email: 'alice@example.com', password: 'alice password 1' },
  { email: 'bob@example.com', password: 'bob password 1' },
];

if (!existsSync(path.join(distDir, 'app.js'))) {
  console.error('make web: clients/web/dist is missing: run npm run build in clients/web (make web does)');
  process.exit(1);
}

function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

if (!(await portFree(appPort))) {
  console.error(`make web: port ${appPort} is in use; choose another: make web WEB_PORT=5174`);
  process.exit(1);
}
const apiPort = (await portFree(wantApiPort)) ? wantApiPort : 0;

const tmp = mkdtempSync(path.join(tmpdir(), 'guard-web-demo-'));
let guard;
let app;
let stopping = false;

async function stop(code) {
  if (stopping) return;
  stopping = true;
  if (guard && guard.exitCode === null && guard.signalCode === null) {
    const exited = new Promise((resolve) => guard.once('exit', resolve));
    guard.kill('SIGTERM');
    const timer = setTimeout(() => guard.kill('SIGKILL'), 12_000);
    await exited;
    clearTimeout(timer);
  }
  await app?.close();
  rmSync(tmp, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => {
  console.log('\nstopping the app and the server');
  void stop(0);
});
process.on('SIGTERM', () => void stop(0));

console.log('make web: building the server (go build ./cmd/server)');
const go = process.env.GO || 'go';
const bin = path.join(tmp, 'guard');
const built = spawnSync(go, ['build', '-o', bin, './cmd/server'], { cwd: repoRoot, stdio: 'inherit' });
if (built.status !== 0) {
  console.error('make web: go build failed');
  await stop(1);
}

const appOrigin = `http://localhost:${appPort}`;
guard = spawn(bin, [`-addr=127.0.0.1:${apiPort}`, `-db=${path.join(tmp, 'guard.db')}`, `-cors-origins=${appOrigin}`], {
  env: { ...process.env, GUARD_ADMIN_EMAIL: adminEmail, GUARD_ADMIN_PASSWORD: adminPassword },
  // The server's log (stderr) goes to the terminal: every call, allowed or
  // refused, shows there.
  stdio: ['ignore', 'pipe', 'inherit'],
});
guard.once('exit', (code, signal) => {
  if (stopping) return;
  // Ctrl-C reaches the server too (one process group): it exits 0.
  if (code !== 0) console.error(`make web: the server stopped (${code ?? signal})`);
  void stop(code === 0 ? 0 : 1);
});
const apiAddr = await new Promise((resolve) => {
  readline.createInterface({ input: guard.stdout }).on('line', (line) => {
    const m = /^guard listening on http:\/\/(\S+)$/.exec(line);
    if (m) resolve(m[1]);
    else if (!/^created admin/.test(line)) console.log(line);
  });
});
const port = apiAddr.split(':').pop();
const api = `http://127.0.0.1:${port}`;
// The browser calls the API on localhost too: a secure context, where
// Chromium and Firefox keep the Secure session cookie over plain HTTP, and
// the same site as the app.
const apiForBrowser = `http://localhost:${port}`;

async function call(procedure, body, token) {
  const res = await fetch(`${api}/${procedure}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${procedure}: ${json.message ?? res.status}`);
  return json;
}

try {
  const { accessToken } = await call('guard.auth.v1.AuthService/Login', { email: adminEmail, password: adminPassword });
  for (const u of demoUsers) {
    await call('guard.admin.v1.AdminService/CreateUser', { ...u, roles: ['member'] }, accessToken);
  }
} catch (e) {
  console.error(`make web: creating the demo users: ${e.message}`);
  await stop(1);
}

app = await serveApp({ port: appPort, host: '127.0.0.1', apiBaseUrl: apiForBrowser });
// A password the user chose stays off the screen.
const shownPassword = process.env.GUARD_ADMIN_PASSWORD
  ? 'the password in GUARD_ADMIN_PASSWORD'
  : `${adminPassword}   (demo password; set GUARD_ADMIN_PASSWORD to choose one)`;
console.log(`
  Guard Notes   ${appOrigin}
  Guard API     ${apiForBrowser}   (-cors-origins=${appOrigin}, temporary database)

  admin         ${adminEmail} / ${shownPassword}
  members       ${demoUsers.map((u) => `${u.email} / ${u.password}`).join('\n                ')}

  Open ${appOrigin} in a browser. Ctrl-C stops both.
`);
