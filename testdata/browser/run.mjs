// Drives Debian's headless Chromium for internal/server/browser_test.go.
//
//   node run.mjs APP_URL EVIL_URL [SIBLING_URL]
//
// APP_URL (http://localhost:PORT) serves app.html and proxies to Guard;
// EVIL_URL (http://127.0.0.1:PORT, another site) and SIBLING_URL
// (http://localhost:OTHERPORT, same site, other origin) serve evil.html.
// The credentials come from GUARD_EMAIL and GUARD_PASSWORD.
//
// Prints one JSON line with every outcome to stdout and exits non-zero when
// a page did something unexpected. Never downloads anything: playwright-core
// only drives the browser at /usr/bin/chromium.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [appURL, evilURL, siblingURL] = process.argv.slice(2);
const email = process.env.GUARD_EMAIL;
const password = process.env.GUARD_PASSWORD;
if (!appURL || !evilURL || !email || !password) {
  console.error('usage: GUARD_EMAIL=.. GUARD_PASSWORD=.. node run.mjs APP_URL EVIL_URL [SIBLING_URL]');
  process.exit(2);
}
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

// Bound the whole run; playwright kills the browser when the process exits.
const watchdog = setTimeout(() => {
  console.error('run.mjs: gave up after 45 s');
  process.exit(3);
}, 45_000);

const problems = [];
function expect(ok, what) {
  if (!ok) problems.push(what);
}

const userDataDir = mkdtempSync(path.join(tmpdir(), 'guard-chromium-'));
let context;
const result = {};
try {
  // playwright refuses --user-data-dir in args: a persistent context takes
  // the (fresh) directory instead.
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    timeout: 30_000,
  });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(15_000);
  const page = context.pages()[0] ?? await context.newPage();
  const cdp = await context.newCDPSession(page);
  result.browserVersion = (await cdp.send('Browser.getVersion')).product;
  await cdp.detach();
  page.on('console', (m) => console.error(`[page console] ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`[page error] ${e}`));

  // (1) The app, same origin.
  await page.goto(`${appURL}/app.html`);
  const app = await page.evaluate(([e, p]) => window.runApp(e, p), [email, password]);
  result.app = app;
  expect(app.login.status === 200, `app login: status ${app.login.status}`);
  expect(app.cookieVisibleToScript === false, 'app: session cookie visible to document.cookie');
  expect(app.whoAmI.status === 200, `app WhoAmI: status ${app.whoAmI.status}`);
  expect(app.whoAmI.body?.authMethod === 'AUTH_METHOD_SESSION_COOKIE',
    `app WhoAmI: authMethod ${app.whoAmI.body?.authMethod}`);
  expect(app.createNote.status === 200, `app CreateNote: status ${app.createNote.status}`);

  const jar = await context.cookies(appURL);
  result.cookies = jar.map((c) => ({
    name: c.name, domain: c.domain, path: c.path, secure: c.secure, httpOnly: c.httpOnly, sameSite: c.sameSite,
  }));
  const session = jar.find((c) => c.name === '__Host-guard_session');
  expect(session !== undefined, 'no __Host-guard_session cookie in the browser');
  expect(session?.httpOnly && session?.secure && session?.sameSite === 'Strict',
    `session cookie attributes: ${JSON.stringify(result.cookies)}`);

  // (2) The attacker's pages, in the same browser context (same cookie jar).
  const attackers = [['evil', evilURL]];
  if (siblingURL) attackers.push(['sibling', siblingURL]);
  for (const [name, url] of attackers) {
    await page.goto(`${url}/evil.html`);
    const out = await page.evaluate((target) => window.attack(target), appURL);
    result[name] = out;
    // What a page can see; the Go test checks what the server did.
    expect(out.simpleFetch.outcome === 'rejected' || out.simpleFetch.type === 'opaque',
      `${name} simple fetch: readable response ${JSON.stringify(out.simpleFetch)}`);
    expect(out.form.outcome === 'loaded' || out.form.outcome === 'timeout',
      `${name} form: ${JSON.stringify(out.form)}`);
    expect(out.jsonFetch.outcome === 'rejected',
      `${name} JSON fetch was not blocked: ${JSON.stringify(out.jsonFetch)}`);
  }
} catch (e) {
  problems.push(`run.mjs: ${e?.stack ?? e}`);
} finally {
  try {
    await context?.close();
  } catch (e) {
    console.error(`run.mjs: closing the browser: ${e}`);
  }
  rmSync(userDataDir, { recursive: true, force: true });
  clearTimeout(watchdog);
}
result.problems = problems;
process.stdout.write(JSON.stringify(result) + '\n');
process.exitCode = problems.length ? 1 : 0;
