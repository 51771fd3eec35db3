// Guard Notes: a single-page app on an origin of its own that talks to the
// Guard API with the browser's session cookie (Login with useCookie), through
// @connectguard/guard-client. The API's address comes from config.json
// beside index.html, read at start, so one build runs against any server.

import {
  Code,
  ConnectError,
  createGuardClient,
  fieldViolations,
  requestId,
  retryDelayMs,
  SharePermission,
  type GuardClient,
  type Note,
  type SignedOutReason,
  type User,
} from "@connectguard/guard-client";
import { append, byId, clearErrors, field, formMessage, h, showViolations, valueOf } from "./dom.js";

type Timestamp = NonNullable<Note["updateTime"]>;

const PAGE_SIZE = 50;

type Config = { apiBaseUrl: string };

const state: {
  apiBaseUrl: string;
  client: GuardClient | null;
  me: User | null;
  notes: Note[];
  nextPageToken: string;
  /** Per note: which inline form is open. */
  open: Map<string, "edit" | "share" | "delete">;
  cooldownUntil: number;
  cooldownTimer: number | undefined;
} = {
  apiBaseUrl: "",
  client: null,
  me: null,
  notes: [],
  nextPageToken: "",
  open: new Map(),
  cooldownUntil: 0,
  cooldownTimer: undefined,
};

function client(): GuardClient {
  if (!state.client) throw new Error("not configured");
  return state.client;
}

// ---------------------------------------------------------------- errors

function codeOf(err: unknown): Code | undefined {
  return err instanceof ConnectError ? err.code : undefined;
}

function messageOf(err: unknown): string {
  if (err instanceof ConnectError) return err.rawMessage || err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Whether the call got no answer the page may read: the server is down, or
 * the browser refused to hand the answer over (CORS).
 */
function unreachable(err: unknown): boolean {
  const code = codeOf(err);
  if (code !== undefined && code !== Code.Unknown && code !== Code.Unavailable) return false;
  return /failed to fetch|networkerror|load failed|fetch failed/i.test(messageOf(err));
}

type Handling = {
  /** Where field violations and messages go; the page's banner if none. */
  form?: HTMLFormElement;
  /** Login: unauthenticated is a wrong password, not an ended session. */
  login?: boolean;
  notFound?: string;
};

function handleError(err: unknown, how: Handling = {}): void {
  const code = codeOf(err);
  const ref = requestId(err);
  if (code === Code.Unauthenticated && !how.login) {
    // The client has said so through onSignedOut already, or says it now.
    sessionEnded("session-ended");
    return;
  }
  const delay = retryDelayMs(err);
  if (code === Code.ResourceExhausted || delay !== undefined) {
    startCooldown(delay ?? 5_000);
    return;
  }
  if (code === Code.InvalidArgument && how.form) {
    const violations = fieldViolations(err);
    if (Object.keys(violations).length > 0) {
      showViolations(how.form, violations);
      return;
    }
  }
  let text = messageOf(err);
  if (code === Code.NotFound && how.notFound) text = how.notFound;
  if (unreachable(err)) {
    text = `Cannot reach the Guard API at ${state.apiBaseUrl}: the server is down, or it does not allow this page's origin (${location.origin}).`;
  }
  if (how.form) formMessage(how.form, text, "error", ref);
  else showBanner("error", text, ref);
}

// --------------------------------------------------------------- notices

function showBanner(kind: "error" | "notice" | "ok" | "warn", text: string, ref?: string): void {
  const el = byId(kind === "error" ? "error" : "notice");
  el.className = `notice${kind === "error" ? " notice-error" : kind === "ok" ? " notice-ok" : kind === "warn" ? " notice-warn" : ""}`;
  el.textContent = text;
  if (ref) el.appendChild(h("span", { class: "ref" }, `(request ${ref})`));
  el.hidden = false;
}

function clearBanners(): void {
  for (const id of ["error", "notice"]) {
    const el = byId(id);
    el.hidden = true;
    el.textContent = "";
  }
}

// ------------------------------------------------------ rate-limit pause

function cooling(): boolean {
  return Date.now() < state.cooldownUntil;
}

/** Enables or disables every action button after a change of state. */
function syncActions(): void {
  const pause = cooling();
  for (const b of document.querySelectorAll<HTMLButtonElement>("button[data-action]")) {
    b.disabled = pause || b.dataset.busy === "1";
  }
}

function startCooldown(ms: number): void {
  state.cooldownUntil = Math.max(state.cooldownUntil, Date.now() + Math.max(ms, 1000));
  tickCooldown();
  if (state.cooldownTimer === undefined) state.cooldownTimer = window.setInterval(tickCooldown, 250);
}

function tickCooldown(): void {
  const banner = byId("rate-limit");
  const left = state.cooldownUntil - Date.now();
  if (left <= 0) {
    window.clearInterval(state.cooldownTimer);
    state.cooldownTimer = undefined;
    banner.hidden = true;
    banner.textContent = "";
  } else {
    const text = `Too many requests — retry in ${Math.ceil(left / 1000)} s`;
    if (banner.textContent !== text) banner.textContent = text;
    banner.hidden = false;
  }
  syncActions();
}

/**
 * Runs one call for a button: the button stays disabled while it runs,
 * and every action waits out a rate-limit pause.
 */
async function act(button: HTMLButtonElement | null, work: () => Promise<void>, how: Handling = {}): Promise<void> {
  if (cooling()) return;
  if (how.form) clearErrors(how.form);
  clearBanners();
  if (button) {
    button.dataset.busy = "1";
    button.disabled = true;
  }
  try {
    await work();
  } catch (err) {
    handleError(err, how);
  } finally {
    if (button) {
      delete button.dataset.busy;
      button.disabled = cooling();
    }
  }
}

function actionButton(label: string, attrs: Record<string, string | boolean> = {}): HTMLButtonElement {
  const b = h("button", { type: "button", class: "btn", "data-action": true, ...attrs }, label);
  b.disabled = cooling();
  return b;
}

// ------------------------------------------------------------ formatting

function dateOf(ts: Timestamp | undefined): Date | undefined {
  if (!ts) return undefined;
  return new Date(Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6));
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function when(ts: Timestamp | undefined): string {
  const d = dateOf(ts);
  return d ? dateFormat.format(d) : "";
}

// ---------------------------------------------------------------- views

function main(): HTMLElement {
  return byId("main");
}

function setHeader(): void {
  const user = byId("topbar-user");
  user.hidden = !state.me;
  byId("topbar-email").textContent = state.me?.email ?? "";
}

function showLogin(message?: { text: string; kind: "ok" | "warn" }): void {
  state.me = null;
  state.notes = [];
  state.nextPageToken = "";
  state.open.clear();
  setHeader();
  clearBanners();
  if (message) showBanner(message.kind, message.text);

  const form = h("form", { class: "card card-narrow", id: "login-form", novalidate: true },
    h("h2", null, "Sign in"),
    h("p", { class: "card-lead" }, "Your notes, kept by the Guard API. The session lives in a secure, HttpOnly cookie."),
    field({ name: "email", label: "Email", type: "email", autocomplete: "username", placeholder: "you@example.com" }),
    field({ name: "password", label: "Password", type: "password", autocomplete: "current-password" }),
  );
  const submit = h("button", { type: "submit", class: "btn", "data-action": true }, "Sign in");
  append(form, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(submit, async () => {
      const email = valueOf(form, "email").trim();
      const password = valueOf(form, "password");
      await client().login(email, password);
      await signedIn();
    }, { form, login: true });
  });
  main().replaceChildren(form);
  syncActions();
  form.querySelector("input")?.focus();
}

function sessionEnded(reason: SignedOutReason): void {
  if (!state.me) return;
  showLogin(reason === "logout"
    ? { text: "You have signed out.", kind: "ok" }
    : { text: "Your session has ended. Please sign in again.", kind: "warn" });
}

/** After a login, or at start with a live cookie: who am I, then the view. */
async function signedIn(): Promise<void> {
  const res = await client().auth.whoAmI({});
  if (!res.user) throw new Error("WhoAmI answered without a user");
  state.me = res.user;
  setHeader();
  clearBanners();
  await route();
}

async function route(): Promise<void> {
  if (!state.me) return;
  const m = /^#\/notes\/([^/]+)$/.exec(location.hash);
  if (m) await showNote(decodeURIComponent(m[1]));
  else await showHome();
}

function accountCard(me: User): HTMLElement {
  const copy = h("button", { type: "button", class: "btn btn-quiet btn-small" }, "Copy");
  copy.addEventListener("click", () => {
    void navigator.clipboard?.writeText(me.id).then(
      () => { copy.textContent = "Copied"; },
      () => { copy.textContent = "Select it"; },
    );
  });
  return h("section", { class: "card account", "aria-labelledby": "account-h" },
    h("h2", { id: "account-h" }, "Signed in"),
    h("dl", null,
      h("dt", null, "Email"),
      h("dd", { id: "me-email" }, me.email),
      h("dt", null, "Your user id"),
      h("dd", null, h("div", { class: "id-box" }, h("code", { id: "me-id" }, me.id), copy)),
      h("dt", null, "Roles"),
      h("dd", null, ...me.roles.map((r) => h("span", { class: "badge" }, r))),
    ),
    h("p", { class: "hint account-hint" }, "Others share notes with you by this id."),
  );
}

function newNoteCard(): HTMLElement {
  const form = h("form", { class: "card", id: "new-note", novalidate: true, "aria-labelledby": "new-h" },
    h("h2", { id: "new-h" }, "New note"),
    field({ name: "title", label: "Title", placeholder: "What is it about?" }),
    field({ name: "body", label: "Text", multiline: true, placeholder: "Write something…" }),
  );
  const submit = h("button", { type: "submit", class: "btn", "data-action": true }, "Create note");
  append(form, h("div", { class: "actions" }, submit));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(submit, async () => {
      const res = await client().notes.createNote({ title: valueOf(form, "title"), body: valueOf(form, "body") });
      if (!res.note) return;
      form.reset();
      state.notes.unshift(res.note);
      renderNotes();
      formMessage(form, "Note created.", "ok");
    }, { form });
  });
  return form;
}

async function showHome(): Promise<void> {
  const me = state.me;
  if (!me) return;
  const list = h("div", { class: "notes", id: "notes", "aria-live": "polite" });
  const refresh = actionButton("Refresh", { class: "btn btn-quiet btn-small", id: "refresh" });
  refresh.addEventListener("click", () => void act(refresh, loadNotes));
  const layout = h("div", { class: "layout" },
    h("aside", { class: "sidebar" }, accountCard(me), newNoteCard()),
    h("section", { "aria-labelledby": "notes-h" },
      h("div", { class: "section-head" },
        h("h2", { id: "notes-h" }, "Notes ", h("span", { class: "count", id: "notes-count" })),
        refresh),
      list,
      h("div", { class: "more", id: "more" })),
  );
  main().replaceChildren(layout);
  syncActions();
  list.replaceChildren(h("p", { class: "loading" }, "Loading notes…"));
  await act(null, loadNotes);
}

async function loadNotes(): Promise<void> {
  const res = await client().notes.listNotes({ pageSize: PAGE_SIZE });
  state.notes = [...res.notes];
  state.nextPageToken = res.nextPageToken;
  renderNotes();
}

async function loadMore(): Promise<void> {
  const res = await client().notes.listNotes({ pageSize: PAGE_SIZE, pageToken: state.nextPageToken });
  state.notes.push(...res.notes);
  state.nextPageToken = res.nextPageToken;
  renderNotes();
}

function renderNotes(): void {
  const list = document.getElementById("notes");
  if (!list) return;
  if (state.notes.length === 0) {
    list.replaceChildren(h("p", { class: "empty card" }, "No notes yet. Write the first one."));
  } else {
    list.replaceChildren(...state.notes.map(noteCard));
  }
  const count = document.getElementById("notes-count");
  if (count) count.textContent = `(${state.notes.length}${state.nextPageToken ? "+" : ""})`;
  const more = document.getElementById("more");
  if (more) {
    more.replaceChildren();
    if (state.nextPageToken) {
      const b = actionButton("Load more", { class: "btn btn-quiet" });
      b.addEventListener("click", () => void act(b, loadMore));
      more.appendChild(b);
    }
  }
  syncActions();
}

function replaceCard(id: string): void {
  const old = document.querySelector<HTMLElement>(`.note[data-id="${CSS.escape(id)}"]`);
  const note = state.notes.find((n) => n.id === id);
  if (!old) return;
  if (note) old.replaceWith(noteCard(note));
  else old.remove();
  if (state.notes.length === 0) renderNotes();
  const count = document.getElementById("notes-count");
  if (count) count.textContent = `(${state.notes.length}${state.nextPageToken ? "+" : ""})`;
  syncActions();
}

function setOpen(id: string, what: "edit" | "share" | "delete" | null): void {
  if (what) state.open.set(id, what);
  else state.open.delete(id);
  replaceCard(id);
  document.querySelector<HTMLElement>(`.note[data-id="${CSS.escape(id)}"] input, .note[data-id="${CSS.escape(id)}"] .btn-danger-solid`)?.focus();
}

function noteMeta(note: Note): HTMLElement {
  const mine = note.ownerId === state.me?.id;
  const updated = when(note.updateTime);
  return h("p", { class: "note-meta" },
    mine ? h("span", { class: "badge" }, "Yours") : h("span", { class: "badge badge-shared" }, "Shared with you"),
    mine ? null : h("span", null, "owner ", h("code", null, note.ownerId), " · "),
    updated ? `Updated ${updated}` : null,
  );
}

function noteCard(note: Note): HTMLElement {
  const mine = note.ownerId === state.me?.id;
  const open = state.open.get(note.id);
  const card = h("article", { class: "card note", "data-id": note.id, "aria-label": note.title });
  if (open === "edit") {
    append(card, editForm(note));
    return card;
  }
  append(card,
    h("h3", { class: "note-title" }, h("a", { href: `#/notes/${encodeURIComponent(note.id)}` }, note.title)),
    h("p", { class: "note-body" }, note.body),
    noteMeta(note),
  );
  if (open === "share" && mine) {
    append(card, shareForm(note));
    return card;
  }
  if (open === "delete" && mine) {
    append(card, deleteConfirm(note));
    return card;
  }

  const edit = h("button", { type: "button", class: "btn btn-quiet btn-small" }, "Edit");
  edit.addEventListener("click", () => setOpen(note.id, "edit"));
  const actions = h("div", { class: "actions" }, edit);
  if (mine) {
    const share = h("button", { type: "button", class: "btn btn-quiet btn-small" }, "Share");
    share.addEventListener("click", () => setOpen(note.id, "share"));
    const del = h("button", { type: "button", class: "btn btn-danger btn-small" }, "Delete");
    del.addEventListener("click", () => setOpen(note.id, "delete"));
    append(actions, share, del);
  }
  append(card, actions);
  return card;
}

function editForm(note: Note): HTMLFormElement {
  const form = h("form", { class: "edit-form", novalidate: true, "aria-label": "Edit note" },
    field({ name: "title", label: "Title", value: note.title }),
    field({ name: "body", label: "Text", multiline: true, value: note.body }),
  );
  const save = h("button", { type: "submit", class: "btn btn-small", "data-action": true }, "Save");
  const cancel = h("button", { type: "button", class: "btn btn-quiet btn-small" }, "Cancel");
  cancel.addEventListener("click", () => setOpen(note.id, null));
  append(form, h("div", { class: "actions" }, save, cancel));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(save, async () => {
      const res = await client().notes.updateNote({
        note: { id: note.id, title: valueOf(form, "title"), body: valueOf(form, "body") },
        updateMask: { paths: ["title", "body"] },
      });
      if (!res.note) return;
      const i = state.notes.findIndex((n) => n.id === note.id);
      if (i >= 0) state.notes[i] = res.note;
      setOpen(note.id, null);
    }, { form, notFound: "This note is gone, or no longer shared with you." });
  });
  return form;
}

function shareForm(note: Note): HTMLFormElement {
  const form = h("form", { class: "subform share-form", novalidate: true, "aria-label": "Share note" },
    h("h3", null, "Share with another user"),
    h("div", { class: "field-row" },
      field({ name: "user_id", label: "User id", placeholder: "26 characters, a–z and 2–7", autocomplete: "off" }),
      field({
        name: "permission",
        label: "Permission",
        options: [[String(SharePermission.READER), "Can read"], [String(SharePermission.WRITER), "Can read and edit"]],
      }),
    ),
  );
  const submit = h("button", { type: "submit", class: "btn btn-small", "data-action": true }, "Share");
  const cancel = h("button", { type: "button", class: "btn btn-quiet btn-small" }, "Close");
  cancel.addEventListener("click", () => setOpen(note.id, null));
  append(form, h("div", { class: "actions" }, submit, cancel));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    void act(submit, async () => {
      const userId = valueOf(form, "user_id").trim();
      const permission = Number(valueOf(form, "permission")) === SharePermission.WRITER
        ? SharePermission.WRITER
        : SharePermission.READER;
      await client().notes.shareNote({ id: note.id, userId, permission });
      formMessage(form, `Shared with ${userId} (${permission === SharePermission.WRITER ? "can read and edit" : "can read"}).`, "ok");
    }, { form, notFound: "No such user, or this note is gone." });
  });
  return form;
}

function deleteConfirm(note: Note): HTMLElement {
  const yes = h("button", { type: "button", class: "btn btn-danger-solid btn-small", "data-action": true }, "Delete for good");
  const no = h("button", { type: "button", class: "btn btn-quiet btn-small" }, "Keep it");
  const box = h("div", { class: "subform" }, h("p", { class: "form-error" }, "Delete this note?"), h("div", { class: "actions" }, yes, no));
  no.addEventListener("click", () => setOpen(note.id, null));
  yes.addEventListener("click", () => void act(yes, async () => {
    await client().notes.deleteNote({ id: note.id });
    state.notes = state.notes.filter((n) => n.id !== note.id);
    state.open.delete(note.id);
    replaceCard(note.id);
    showBanner("ok", `Deleted “${note.title}”.`);
  }));
  return box;
}

async function showNote(id: string): Promise<void> {
  const back = h("a", { class: "back", href: "#/" }, "← All notes");
  const card = h("article", { class: "card", id: "note-detail" }, h("p", { class: "loading" }, "Loading…"));
  main().replaceChildren(h("div", { class: "detail" }, back, card));
  try {
    const res = await client().notes.getNote({ id });
    const note = res.note;
    if (!note) throw new Error("GetNote answered without a note");
    card.setAttribute("aria-label", note.title);
    card.replaceChildren(
      h("h2", { class: "note-title" }, note.title),
      h("p", { class: "note-body note-body-full" }, note.body),
      noteMeta(note),
      h("p", { class: "note-meta" }, "Id ", h("code", null, note.id), ` · created ${when(note.createTime)}`),
    );
  } catch (err) {
    const code = codeOf(err);
    if (code === Code.NotFound || code === Code.InvalidArgument) {
      card.replaceChildren(
        h("h2", null, "Note not found"),
        h("p", { class: "card-lead", id: "not-found" }, "It does not exist, or it is not shared with you."),
      );
      return;
    }
    card.replaceChildren();
    handleError(err);
  }
}

// ------------------------------------------------------------------ start

async function loadConfig(): Promise<Config> {
  const res = await fetch("config.json", { cache: "no-store", credentials: "omit" });
  if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
  const cfg: unknown = await res.json();
  if (typeof cfg !== "object" || cfg === null || !("apiBaseUrl" in cfg) || typeof cfg.apiBaseUrl !== "string") {
    throw new Error("config.json: apiBaseUrl is missing");
  }
  const url = new URL(cfg.apiBaseUrl);
  if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error("config.json: apiBaseUrl must be http(s)");
  return { apiBaseUrl: url.href.replace(/\/$/, "") };
}

async function start(): Promise<void> {
  let cfg: Config;
  try {
    cfg = await loadConfig();
  } catch (err) {
    byId("loading").textContent = "";
    showBanner("error", `The app is not configured: ${messageOf(err)}`);
    return;
  }
  state.apiBaseUrl = cfg.apiBaseUrl;
  byId("api-url").textContent = `API ${cfg.apiBaseUrl}`;
  state.client = createGuardClient({ baseUrl: cfg.apiBaseUrl, credentials: { kind: "cookie" } });
  state.client.onSignedOut(sessionEnded);

  const logout = byId<HTMLButtonElement>("logout");
  logout.addEventListener("click", () => void act(logout, async () => {
    await client().logout();
    sessionEnded("logout"); // in case the client said nothing
  }));
  window.addEventListener("hashchange", () => void route());

  // A cookie from an earlier visit may still be good.
  try {
    await signedIn();
  } catch (err) {
    const code = codeOf(err);
    if (code === Code.Unauthenticated) {
      showLogin();
    } else {
      showLogin();
      handleError(err);
    }
  }
}

void start();
