// End-to-end tests of the Guard web app in Debian's headless Chromium,
// against the real Guard server built from this checkout.
//
//   make web-test      (or, with dist/ built: node --test e2e/)
//
// The app (clients/web/dist) is served on http://localhost:APP, an origin
// listed in the server's -cors-origins; the API on http://localhost:API.
// Both are on localhost, a secure context to Chromium, which keeps the
// Secure __Host- session cookie there over plain HTTP; different ports are
// different origins of the same site. 127.0.0.1 is another site.
//
// Without Chromium the tests skip with how to install it, except when
// CI=true, where they fail.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { serveApp } from '../scripts/serve.mjs';
import {
  ADMIN_EMAIL, ADMIN_PASSWORD, browserMissing, buildGuard, call, card, createMember, launchBrowser,
  listNotes, login, mustCall, shot, signIn, startGuard, tempDir, waitText, webDir,
} from './harness.mjs';

const evilPage = { type: 'text/html; charset=utf-8', body: readFileSync(path.join(webDir, 'e2e', 'evil.html')) };

const missing = browserMissing();
if (missing && process.env.CI === 'true') {
  test('web app in Chromium', () => {
    assert.fail(`CI=true: ${missing}`);
  });
} else if (missing) {
  test('web app in Chromium', (t) => {
    t.skip(missing);
  });
} else {
  describe('web app in Chromium', { timeout: 15 * 60_000 }, suite);
}

function suite() {
  let tmp;
  let bin;
  let guard; // the API, with -cors-origins = the app's origin
  let app; // the app, on an origin the API lists
  let unlisted; // the same app, on an origin the API does not list
  let appUrl;
  let unlistedUrl;
  let admin;
  const users = {};
  const tokens = {};

  before(async () => {
    tmp = tempDir('guard-web-e2e-');
    const started = Date.now();
    bin = buildGuard(tmp.dir);
    console.error(`built the server in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    app = await serveApp({ extra: { '/evil.html': evilPage } });
    unlisted = await serveApp({ extra: { '/evil.html': evilPage } });
    appUrl = `http://localhost:${app.port}`;
    unlistedUrl = `http://localhost:${unlisted.port}`;
    guard = await startGuard(bin, tmp.dir, [`-cors-origins=${appUrl}`]);
    app.setApiBaseUrl(guard.browserUrl);
    unlisted.setApiBaseUrl(guard.browserUrl);
    // Login allows 20 calls a minute per IP: every test here logs in
    // through the API at most once per user.
    admin = await login(guard.url, ADMIN_EMAIL, ADMIN_PASSWORD);
    for (const name of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'gina']) {
      users[name] = await createMember(guard.url, admin, `${name}@example.com`);
    }
  });

  after(async () => {
    await guard?.stop();
    await app?.close();
    await unlisted?.close();
    tmp?.remove();
  });

  async function token(name) {
    tokens[name] ??= await login(guard.url, users[name].email, users[name].password);
    return tokens[name];
  }

  async function withBrowser(t, name, fn, server = guard) {
    const b = await launchBrowser();
    try {
      await fn(b.page, b);
    } catch (e) {
      await shot(b.page, `${name}-failure`).catch(() => {});
      if (server) console.error(`server log (tail):\n${server.logs().split('\n').slice(-40).join('\n')}`);
      throw e;
    } finally {
      for (const e of b.consoleErrors) t.diagnostic(`page console: ${e}`);
      await b.close();
    }
  }

  test('from a listed origin: login, create, validation, edit, share, delete, logout', async (t) => {
    const { alice, bob } = users;
    // Bob has shared a note with Alice already, through the API.
    const fromBob = await mustCall(guard.url, 'guard.notes.v1.NoteService/CreateNote',
      { title: 'Team offsite agenda', body: 'Day 1: planning\nDay 2: hiking and dinner' }, await token('bob'));
    await mustCall(guard.url, 'guard.notes.v1.NoteService/ShareNote',
      { id: fromBob.note.id, userId: alice.id, permission: 'SHARE_PERMISSION_READER' }, await token('bob'));

    await withBrowser(t, 'flow', async (page) => {
      await page.goto(`${appUrl}/`);
      await page.locator('#login-form').waitFor();
      await shot(page, 'flow-1-login');
      // A wrong password: the server's answer, in the form.
      const loginForm = page.locator('#login-form');
      await loginForm.getByLabel('Email').fill(alice.email);
      await loginForm.getByLabel('Password').fill('not the password');
      await loginForm.getByRole('button', { name: 'Sign in' }).click();
      await waitText(page, '#login-form .form-error', /invalid email or password/);
      await signIn(page, alice);
      assert.equal(await page.locator('#me-email').textContent(), alice.email);
      // The session is the API's cookie, out of the page's reach.
      const session = (await page.context().cookies(guard.browserUrl)).find((c) => c.name === '__Host-guard_session');
      assert.ok(session?.httpOnly && session.secure && session.sameSite === 'Strict',
        `session cookie: ${JSON.stringify(session)}`);
      assert.equal(await page.evaluate(() => document.cookie), '', 'the page sees a cookie');
      await card(page, 'Team offsite agenda').waitFor();

      const form = page.locator('#new-note');
      const titleError = form.locator('.field[data-field="title"] .field-error');
      // An empty title: the server's violation, beside the field.
      await form.getByRole('button', { name: 'Create note' }).click();
      await titleError.filter({ hasText: /at least 1 character/ }).waitFor();
      await shot(page, 'flow-2-empty-title');
      // 201 characters.
      await form.getByLabel('Title').fill('x'.repeat(201));
      await form.getByRole('button', { name: 'Create note' }).click();
      await titleError.filter({ hasText: /at most 200 characters/ }).waitFor();
      await shot(page, 'flow-3-long-title');

      const notes = [
        ['Groceries', 'Oat milk, lemons, coffee beans, basil'],
        ['Trip to Lisbon', 'Flights on the 14th. Book the tram tour.'],
        ['Release checklist', '1. Tag the release\n2. Update the changelog\n3. Announce it'],
      ];
      for (const [title, body] of notes) {
        await form.getByLabel('Title').fill(title);
        await form.getByLabel('Text').fill(body);
        await form.getByRole('button', { name: 'Create note' }).click();
        await card(page, title).waitFor();
        assert.equal(await titleError.isVisible(), false, 'the title error stays after a good create');
      }

      // Edit, with a refused empty title first.
      const trip = card(page, 'Trip to Lisbon');
      await trip.getByRole('button', { name: 'Edit' }).click();
      const edit = page.locator('form.edit-form');
      await edit.getByLabel('Title').fill('');
      await edit.getByRole('button', { name: 'Save' }).click();
      await edit.locator('.field-error:visible, .form-error:visible').filter({ hasText: /title/i }).first().waitFor();
      await shot(page, 'flow-4-edit-empty-title');
      await edit.getByLabel('Title').fill('Trip to Lisbon and Porto');
      await edit.getByLabel('Text').fill('Flights on the 14th. Train to Porto on the 18th.');
      await edit.getByRole('button', { name: 'Save' }).click();
      await card(page, 'Trip to Lisbon and Porto').locator('.note-body', { hasText: 'Train to Porto' }).waitFor();

      // Delete.
      const groceries = card(page, 'Groceries');
      await groceries.getByRole('button', { name: 'Delete' }).click();
      await groceries.getByRole('button', { name: 'Delete for good' }).click();
      await groceries.waitFor({ state: 'detached' });
      await waitText(page, '#notice', /Deleted “Groceries”/);

      // Share with Bob, after a malformed id.
      const trip2 = card(page, 'Trip to Lisbon and Porto');
      await trip2.getByRole('button', { name: 'Share' }).click();
      const share = trip2.locator('form.share-form');
      await share.getByLabel('User id').fill('bob@example.com');
      await share.getByRole('button', { name: 'Share' }).click();
      await share.locator('.field[data-field="user_id"] .field-error').filter({ hasText: /.+/ }).waitFor();
      await share.getByLabel('User id').fill(bob.id);
      await share.getByRole('button', { name: 'Share' }).click();
      await share.locator('.form-ok', { hasText: `Shared with ${bob.id}` }).waitFor();
      await shot(page, 'flow-5-notes-view');

      // What the server holds now.
      const held = (await listNotes(guard.url, await token('alice'))).map((n) => n.title).sort();
      assert.deepEqual(held, ['Release checklist', 'Team offsite agenda', 'Trip to Lisbon and Porto']);

      // The app reloaded keeps the session (the cookie).
      await page.reload();
      await waitText(page, '#me-id', new RegExp(`^${alice.id}$`));
      await card(page, 'Trip to Lisbon and Porto').waitFor();

      // Log out.
      await page.getByRole('button', { name: 'Log out' }).click();
      await waitText(page, '#notice', /You have signed out/);
      await page.locator('#login-form').waitFor();
      assert.equal(await page.locator('article.note').count(), 0);
      const jar = await page.context().cookies(guard.browserUrl);
      assert.equal(jar.filter((c) => c.name === '__Host-guard_session').length, 0, 'logout clears the cookie');

      // Bob, in the same browser, sees the shared note.
      await signIn(page, bob);
      const shared = card(page, 'Trip to Lisbon and Porto');
      await shared.locator('.badge-shared').waitFor();
      assert.equal(await shared.getByRole('button', { name: 'Delete' }).count(), 0, 'no Delete on a note shared with you');
      await card(page, 'Team offsite agenda').waitFor();
      assert.equal(await card(page, 'Release checklist').count(), 0, "Bob sees Alice's unshared note");
      await shot(page, 'flow-6-shared-with-bob');

      // On a phone's width: one column, nothing wider than the screen.
      await page.setViewportSize({ width: 390, height: 844 });
      await shared.waitFor();
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 390px screen`);
      await shot(page, 'flow-7-phone');
    });
  });

  test('the same app from an unlisted origin reads nothing', async (t) => {
    const { carol } = users;
    const secret = 'Carol private plans';
    await mustCall(guard.url, 'guard.notes.v1.NoteService/CreateNote',
      { title: secret, body: 'Not for other origins' }, await token('carol'));

    await withBrowser(t, 'unlisted', async (page) => {
      // The browser holds Carol's session cookie, from the listed app.
      await page.goto(`${appUrl}/`);
      await signIn(page, carol);
      await card(page, secret).waitFor();

      // The same build from an origin the API does not list: its calls
      // fail their CORS checks, with or without the cookie.
      await page.goto(`${unlistedUrl}/`);
      await page.locator('#login-form').waitFor();
      await waitText(page, '#error', /Cannot reach the Guard API/);
      await page.locator('#login-form').getByLabel('Email').fill(carol.email);
      await page.locator('#login-form').getByLabel('Password').fill(carol.password);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await waitText(page, '#login-form .form-error', /Cannot reach the Guard API/);
      await shot(page, 'unlisted-origin');

      // A script on that origin cannot read either.
      const raw = await page.evaluate(async (api) => {
        try {
          const res = await fetch(`${api}/guard.notes.v1.NoteService/ListNotes`, {
            method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' }, body: '{}',
          });
          return { outcome: 'resolved', status: res.status, text: await res.text() };
        } catch (e) {
          return { outcome: 'rejected', error: String(e) };
        }
      }, guard.browserUrl);
      assert.equal(raw.outcome, 'rejected', `a JSON ListNotes from ${unlistedUrl} was readable: ${JSON.stringify(raw)}`);

      const text = await page.locator('body').innerText();
      assert.ok(!text.includes(secret), 'a note title reached the unlisted page');
      assert.ok(!text.includes(carol.id), 'the user id reached the unlisted page');
      assert.equal(await page.locator('#notes').count(), 0);

      // Back on the listed origin the session still works.
      await page.goto(`${appUrl}/`);
      await card(page, secret).waitFor();
    });
  });

  test('a cross-site page cannot write with the cookie', async (t) => {
    const { dave } = users;
    await withBrowser(t, 'csrf', async (page) => {
      await page.goto(`${appUrl}/`);
      await signIn(page, dave);
      const form = page.locator('#new-note');
      await form.getByLabel('Title').fill('Written by the app');
      await form.getByRole('button', { name: 'Create note' }).click();
      await card(page, 'Written by the app').waitFor();
      const logBefore = guard.logs().length;

      // Another site (127.0.0.1), and an unlisted origin of the same site.
      for (const [tag, origin] of [['cross-site', `http://127.0.0.1:${app.port}`], ['same-site', unlistedUrl]]) {
        await page.goto(`${origin}/evil.html`);
        const out = await page.evaluate(([api, tg]) => window.attack(api, tg), [guard.browserUrl, tag]);
        t.diagnostic(`${tag} page (${origin}): ${JSON.stringify(out)}`);
        assert.ok(out.simpleFetch.outcome === 'rejected' || out.simpleFetch.type === 'opaque',
          `${tag}: no-cors fetch readable: ${JSON.stringify(out.simpleFetch)}`);
        assert.equal(out.jsonFetch.outcome, 'rejected', `${tag}: JSON fetch passed CORS: ${JSON.stringify(out.jsonFetch)}`);
        await shot(page, `csrf-${tag}`);
      }

      // The attempts reached the server, which wrote nothing.
      const attempts = guard.logs().slice(logBefore).split('\n')
        .filter((l) => l.includes('CreateNote') && !l.includes('code=ok'));
      for (const l of attempts) t.diagnostic(`server: ${l}`);
      // The cross-site ones came without the cookie (SameSite=Strict) and
      // were refused as unauthenticated; the same-site ones, with it, as
      // content types no Connect client sends (415, before any handler).
      assert.ok(attempts.some((l) => l.includes('code=unauthenticated')),
        'no refused CreateNote in the server log: did the attempts reach it?');
      const titles = (await listNotes(guard.url, await token('dave'))).map((n) => n.title);
      assert.deepEqual(titles, ['Written by the app']);

      // And the app still works for Dave.
      await page.goto(`${appUrl}/`);
      await card(page, 'Written by the app').waitFor();
      assert.equal(await page.locator('article.note').count(), 1);
    });
  });

  test("a user cannot open another user's unshared note", async (t) => {
    const { frank } = users;
    const secret = 'Erin salary review';
    const created = await mustCall(guard.url, 'guard.notes.v1.NoteService/CreateNote',
      { title: secret, body: 'Confidential numbers' }, await token('erin'));
    const id = created.note.id;

    await withBrowser(t, 'ownership', async (page) => {
      await page.goto(`${appUrl}/`);
      await signIn(page, frank);
      // Frank's list does not have it; opening it by id is not_found.
      assert.equal(await card(page, secret).count(), 0);
      await page.goto(`${appUrl}/#/notes/${id}`);
      await waitText(page, '#note-detail h2', /^Note not found$/);
      await waitText(page, '#not-found', /not shared with you/);
      await shot(page, 'ownership-not-found');
      const text = await page.locator('body').innerText();
      assert.ok(!text.includes(secret) && !text.includes('Confidential'), "Erin's note reached Frank's page");
    });
    // Through the API too, for the record: the same not_found.
    const direct = await call(guard.url, 'guard.notes.v1.NoteService/GetNote', { id }, await token('frank'));
    assert.equal(direct.status, 404);
    assert.equal(direct.body.code, 'not_found');
  });

  test('"Your session has ended" after a password change elsewhere', async (t) => {
    const { gina } = users;
    await withBrowser(t, 'session', async (page) => {
      await page.goto(`${appUrl}/`);
      await signIn(page, gina);
      const form = page.locator('#new-note');
      await form.getByLabel('Title').fill('Before the password change');
      await form.getByRole('button', { name: 'Create note' }).click();
      await card(page, 'Before the password change').waitFor();

      // Elsewhere: Gina logs in with her password and changes it, which
      // ends her other sessions, the browser's cookie session among them.
      const elsewhere = await token('gina');
      await mustCall(guard.url, 'guard.auth.v1.AuthService/ChangePassword',
        { currentPassword: gina.password, newPassword: 'another long test password 2' }, elsewhere);

      // The app's next call.
      await page.locator('#refresh').click();
      await waitText(page, '#notice', /Your session has ended/);
      await page.locator('#login-form').waitFor();
      assert.equal(await page.locator('article.note').count(), 0, 'notes stay on the page after the session ended');
      assert.equal(await page.locator('#topbar-user').isVisible(), false);
      await shot(page, 'session-ended');
    });
  });

  test('rate limited: the app counts down, then works again', async (t) => {
    // A server of its own with a small per-user budget: 5 calls in 20 s.
    const limited = await serveApp();
    const limitedUrl = `http://localhost:${limited.port}`;
    const server = await startGuard(bin, tmp.dir, [
      `-cors-origins=${limitedUrl}`, '-user-rate-limit=5', '-user-rate-window=20s',
    ]);
    try {
      limited.setApiBaseUrl(server.browserUrl);
      const adminToken = await login(server.url, ADMIN_EMAIL, ADMIN_PASSWORD);
      const hank = await createMember(server.url, adminToken, 'hank@example.com');

      await withBrowser(t, 'ratelimit', async (page) => {
        await page.goto(`${limitedUrl}/`);
        await signIn(page, hank); // WhoAmI and ListNotes: 2 of the 5
        const form = page.locator('#new-note');
        const create = form.getByRole('button', { name: 'Create note' });
        const banner = page.locator('#rate-limit');
        let created = 0;
        for (let i = 1; i <= 12 && !(await banner.isVisible()); i++) {
          await form.getByLabel('Title').fill(`Note ${i}`);
          await create.click();
          // Either the note shows, or the countdown does.
          await page.locator('#rate-limit:not([hidden])').or(card(page, `Note ${i}`)).first().waitFor();
          if (await card(page, `Note ${i}`).count()) created++;
        }
        await waitText(page, '#rate-limit', /^Too many requests — retry in \d+ s$/);
        t.diagnostic(`created ${created} notes before the limit`);
        // 3 on time (5 calls: WhoAmI, ListNotes, 3 CreateNote); more only
        // if the machine was so slow that the window slid meanwhile.
        assert.ok(created >= 1, `created ${created} notes before the limit`);
        assert.equal(await create.isDisabled(), true, 'Create stays enabled during the countdown');
        assert.equal(await page.locator('#refresh').isDisabled(), true, 'Refresh stays enabled during the countdown');
        const first = Number(/(\d+) s$/.exec(await banner.textContent())[1]);
        assert.ok(first >= 1 && first <= 23, `countdown starts at ${first} s`);
        await shot(page, 'ratelimit-countdown');
        // It ticks.
        await page.waitForFunction((n) => {
          const m = /(\d+) s$/.exec(document.getElementById('rate-limit')?.textContent ?? '');
          return m !== null && Number(m[1]) < n;
        }, first, { timeout: 10_000 });
        // And ends: the button comes back and the call goes through.
        await banner.waitFor({ state: 'hidden', timeout: 60_000 });
        assert.equal(await create.isDisabled(), false);
        await form.getByLabel('Title').fill('After the pause');
        await create.click();
        await card(page, 'After the pause').waitFor();
        await shot(page, 'ratelimit-after');
      }, server);
    } finally {
      await server.stop();
      await limited.close();
    }
  });
}
