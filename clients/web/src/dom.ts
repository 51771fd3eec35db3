// A few DOM helpers: the app builds every element with h(), and writes
// text only through text nodes, never through innerHTML, so no note title
// or server message can inject markup.

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | null | undefined | ((ev: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") {
      el.addEventListener(key.replace(/^on/, "").toLowerCase(), value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else if (key === "value" && (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement)) {
      el.value = String(value);
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, ...children);
  return el;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    parent.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
  }
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el as T;
}

let nextId = 0;

/** A unique element id, for label/input pairs of forms shown many times. */
export function uid(prefix: string): string {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

export type FieldOptions = {
  /** The request field's name as protovalidate reports it (title, user_id). */
  name: string;
  label: string;
  type?: string;
  value?: string;
  multiline?: boolean;
  placeholder?: string;
  autocomplete?: string;
  hint?: string;
  options?: Array<[value: string, label: string]>;
};

/** A labelled input with the place for its error message beside it. */
export function field(o: FieldOptions): HTMLElement {
  const id = uid(o.name);
  const errId = `${id}-error`;
  let control: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement;
  const common = { id, name: o.name, "aria-describedby": errId, placeholder: o.placeholder, autocomplete: o.autocomplete };
  if (o.options) {
    control = h("select", { id, name: o.name, "aria-describedby": errId },
      ...o.options.map(([v, l]) => h("option", { value: v, selected: v === o.value }, l)));
  } else if (o.multiline) {
    control = h("textarea", common);
    control.value = o.value ?? "";
  } else {
    control = h("input", { ...common, type: o.type ?? "text" });
    control.value = o.value ?? "";
  }
  return h("div", { class: "field", "data-field": o.name },
    h("label", { for: id }, o.label),
    control,
    o.hint ? h("p", { class: "hint" }, o.hint) : null,
    h("p", { class: "field-error", id: errId, "aria-live": "polite", hidden: true }),
  );
}

/** The value of the form's control named name. */
export function valueOf(form: HTMLFormElement, name: string): string {
  const el = form.elements.namedItem(name);
  if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) {
    return el.value;
  }
  throw new Error(`form has no control ${name}`);
}

// protovalidate names fields by their proto names and paths
// (note.title, user_id); the form's fields are named after the last
// element, so compare them loosely.
function norm(path: string): string {
  const last = path.replace(/\[[^\]]*\]/g, "").split(".").pop() ?? "";
  return last.replace(/_/g, "").toLowerCase();
}

/**
 * Shows each violation beside its field; those that name no field of
 * the form (a rule on the whole message) go to the form's error line.
 */
export function showViolations(form: HTMLFormElement, violations: Record<string, string>): void {
  const rest: string[] = [];
  for (const [path, message] of Object.entries(violations)) {
    const f = [...form.querySelectorAll<HTMLElement>(".field[data-field]")].find(
      (el) => path !== "" && norm(el.dataset.field ?? "") === norm(path),
    );
    const err = f?.querySelector<HTMLElement>(".field-error");
    if (f && err) {
      f.classList.add("field-invalid");
      err.textContent = message;
      err.hidden = false;
      f.querySelector<HTMLElement>("input, textarea, select")?.setAttribute("aria-invalid", "true");
    } else {
      rest.push(message);
    }
  }
  if (rest.length > 0) formMessage(form, rest.join("; "), "error");
}

export function clearErrors(form: HTMLFormElement): void {
  for (const f of form.querySelectorAll<HTMLElement>(".field-invalid")) f.classList.remove("field-invalid");
  for (const e of form.querySelectorAll<HTMLElement>(".field-error")) {
    e.textContent = "";
    e.hidden = true;
  }
  for (const c of form.querySelectorAll("[aria-invalid]")) c.removeAttribute("aria-invalid");
  const msg = form.querySelector<HTMLElement>(".form-message");
  if (msg) {
    msg.textContent = "";
    msg.hidden = true;
  }
}

/**
 * The form's own message line (created on first use, above its buttons).
 * A success message goes away when the form is edited again.
 */
export function formMessage(form: HTMLFormElement, text: string, kind: "error" | "ok", ref?: string): void {
  let msg = form.querySelector<HTMLElement>(".form-message");
  if (!msg) {
    msg = h("p", { class: "form-message", role: kind === "error" ? "alert" : "status" });
    const actions = form.querySelector(".actions");
    if (actions) form.insertBefore(msg, actions);
    else form.appendChild(msg);
  }
  msg.className = `form-message ${kind === "error" ? "form-error" : "form-ok"}`;
  msg.textContent = text;
  if (ref) msg.appendChild(h("span", { class: "ref" }, `(request ${ref})`));
  msg.hidden = false;
  if (kind === "ok") {
    form.addEventListener("input", () => {
      if (msg.classList.contains("form-ok")) msg.hidden = true;
    }, { once: true });
  }
}
