// For each chosen file, what it says about its sender (metadata.js), said
// plainly, and the person's choice: send it as is (it stays evidence of
// when and where), send a cleaned copy (clean.js), or, for a file the page
// cannot clean, leave it out. Nothing is preselected and nothing is changed
// without a choice: sending asks for any missing one.

import { clean } from "./clean.js";
import { inspect } from "./metadata.js";

/** Per file input: `{ ready, files: [{ file, format, findings, cleanable, name }] }`. */
const state = new Map();

/** No choice was made for a file with findings: `fieldset` holds its choice. */
export class MissingChoice extends Error {
  constructor(fieldset, file) {
    super(`no choice for ${file}`);
    this.fieldset = fieldset;
    this.file = file;
  }
}

/** A cleaned copy could not be made (the file is damaged or too large). */
export class CleanFailed extends Error {
  constructor(fieldset, file, cause) {
    super(`could not clean ${file}`, { cause });
    this.fieldset = fieldset;
    this.file = file;
  }
}

function radio(group, value, text) {
  const p = document.createElement("p");
  p.className = "check";
  const input = document.createElement("input");
  input.type = "radio";
  input.name = group;
  input.value = value;
  input.id = `${group}-${value}`;
  const label = document.createElement("label");
  label.htmlFor = input.id;
  label.textContent = text;
  p.append(input, " ", label);
  return p;
}

/** The fieldset that shows one file's findings and asks for the choice. */
function fieldset(t, group, f) {
  const fs = document.createElement("fieldset");
  fs.className = "meta";
  fs.id = group;
  const legend = document.createElement("legend");
  legend.textContent = t("meta_legend", { name: f.file.name });
  const ul = document.createElement("ul");
  ul.className = "findings";
  ul.id = `${group}-findings`;
  for (const { kind, value } of f.findings) {
    const li = document.createElement("li");
    li.dataset.kind = kind;
    // A video's place is where it was recorded, not "this photo".
    const key = kind === "gps" && f.format === "mp4" ? "meta_kind_gps_video" : `meta_kind_${kind}`;
    li.textContent = t(key, { value });
    ul.append(li);
  }
  if (f.unreadable) {
    const li = document.createElement("li");
    li.dataset.kind = "unreadable";
    li.textContent = t("meta_unreadable");
    ul.append(li);
  }
  fs.append(legend, ul);
  const note = document.createElement("p");
  note.className = "hint";
  note.id = `${group}-hint`;
  note.textContent = f.cleanable ? t("meta_choose_hint") : t("meta_cannot_clean");
  // The findings first: they are what the choice is about.
  fs.setAttribute("aria-describedby", `${ul.id} ${note.id}`);
  fs.append(note, radio(group, "as_is", t("meta_as_is")));
  fs.append(f.cleanable ? radio(group, "clean", t("meta_clean")) : radio(group, "leave_out", t("meta_leave_out")));
  if (f.cleanable) {
    // A phone's file name often tells the time it was taken: the person
    // may send the cleaned copy under a neutral one (not chosen for them).
    const p = document.createElement("p");
    p.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.id = `${group}-neutral`;
    const label = document.createElement("label");
    label.htmlFor = box.id;
    label.textContent = t("meta_neutral_name", { name: f.neutral });
    p.append(box, " ", label);
    fs.append(p);
  }
  const err = document.createElement("p");
  err.className = "error";
  err.id = `${group}-error`;
  err.setAttribute("role", "alert");
  err.hidden = true;
  fs.append(err);
  return fs;
}

/**
 * Look at the files `input` holds now and show, in `box`, each one's
 * findings with the choice. `t` translates.
 */
export function update(input, box, t) {
  // Findings come after the files are chosen: a status line says so, once
  // each file has been looked at (a live region must exist before it speaks).
  const status = document.createElement("p");
  status.className = "meta-status";
  status.setAttribute("role", "status");
  box.replaceChildren(status);
  const files = Array.from(input.files ?? []);
  const entry = { files: [], ready: null };
  entry.ready = (async () => {
    let asked = 0;
    for (const [i, file] of files.entries()) {
      const found = await inspect(file);
      const f = { file, ...found, group: `${input.id}-meta-${i}`, neutral: `photo-${i + 1}.${EXT[found.format]}` };
      entry.files.push(f);
      // Files chosen again meanwhile: this look is stale.
      if (state.get(input.id) !== entry) return;
      if (asks(f)) {
        box.append(fieldset(t, f.group, f));
        asked++;
      }
    }
    if (asked > 0) status.textContent = t("meta_summary", { count: String(asked) });
  })();
  state.set(input.id, entry);
  return entry.ready;
}

/** The file name ending of a cleaned copy sent under a neutral name. */
const EXT = { jpeg: "jpg", png: "png", webp: "webp" };

/** A file needs the person's choice: it says something, or could not be read. */
const asks = (f) => f.findings.length > 0 || f.unreadable === true;

/** The choice made for a file, or null. */
function choiceOf(group) {
  return document.querySelector(`input[name="${group}"]:checked`)?.value ?? null;
}

/**
 * The items to send from `input`, each `{ blob, label, display }` with
 * `kind`: cleaned copies for files the person chose to clean (label
 * `cleaned: true`), originals sent as is after findings were shown
 * (`cleaned: false`), files left out missing, and files without findings
 * as they are (no `cleaned`: nothing was asked). Throws MissingChoice or
 * CleanFailed.
 */
export async function items(input, kind) {
  const entry = state.get(input.id);
  if (entry) await entry.ready;
  const files = entry?.files ?? Array.from(input.files ?? [], (file) => ({ file, findings: [] }));
  const out = [];
  for (const f of files) {
    const label = { name: f.file.name, media_type: f.file.type || null, kind, description: null };
    let blob = f.file;
    if (asks(f)) {
      const fs = document.getElementById(f.group);
      const choice = choiceOf(f.group);
      if (choice === null) throw new MissingChoice(fs, f.file.name);
      if (choice === "leave_out") continue;
      if (choice === "clean") {
        try {
          blob = await clean(f.file, f.format, f.file.type);
        } catch (e) {
          throw new CleanFailed(fs, f.file.name, e);
        }
      }
      label.cleaned = choice === "clean";
      if (label.cleaned && document.getElementById(`${f.group}-neutral`)?.checked) label.name = f.neutral;
    }
    out.push({ blob, label, display: f.file.name });
  }
  return out;
}

/** Show `text` as the error of `fieldset` and move to its first choice. */
export function ask(fieldset, text) {
  const err = fieldset.querySelector(".error");
  err.hidden = false;
  err.textContent = text;
  const first = fieldset.querySelector("input[type=radio]");
  first.setAttribute("aria-describedby", err.id);
  first.focus();
}

/** Clear a fieldset's error once a choice is made. */
export function listen(box) {
  box.addEventListener("change", (ev) => {
    const fs = ev.target.closest("fieldset.meta");
    if (!fs) return;
    const err = fs.querySelector(".error");
    err.hidden = true;
    err.textContent = "";
  });
}
