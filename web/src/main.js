// The submitter's page: the form, the progress of each file, the codename at
// the end, and the way back in with a codename. Strings come from the page
// itself (the server renders each language), so no text is English by
// accident. Protocol work is in vault.js and protocol.js; the vault's size
// limits, checked before anything is encrypted, in limits.js.

import { inUnits, writeApart } from "./limits.js";
import { ApiError } from "./protocol.js";
import * as review from "./review.js";
import * as vault from "./vault.js";

const $ = (id) => document.getElementById(id);
const STRINGS = JSON.parse($("strings").textContent);

/** A translated string, with `{name}` placeholders filled in. */
function t(key, vars = {}) {
  const s = STRINGS[key] ?? key;
  return s.replace(/\{(\w+)\}/g, (_, k) => String(vars[k] ?? ""));
}

/** The structured form's fields, in the Istanbul Protocol's order. */
const FORM_FIELDS = ["what_happened", "when", "where", "who", "methods", "injuries", "medical_care", "witnesses"];

function show(id) {
  for (const s of ["submit-view", "progress", "done", "return"]) $(s).hidden = s !== id;
}

function route() {
  if (location.hash === "#return") {
    show("return");
    $("return-title").focus();
  } else if ($("done").hidden && $("progress").hidden) {
    show("submit-view");
  }
}

/** Which translated message fits an error. */
function errorKey(e) {
  const status = e instanceof ApiError ? e.status : e?.originalResponse?.getStatus?.();
  if (status === 413) return "error_too_large";
  if (status === 429 || status >= 500) return "error_server";
  // fetch fails with a TypeError, tus-js-client with its own error once
  // its retries are spent: either way the network went away.
  if (e instanceof TypeError || (!status && String(e?.message).startsWith("tus:"))) return "error_network";
  return "error_generic";
}

/** `bytes` in human units and the page's language, with at most `digits` decimals. */
function sizeText(bytes, digits = 1) {
  const { value, unit } = inUnits(bytes);
  const n = new Intl.NumberFormat(document.documentElement.lang, { maximumFractionDigits: digits }).format(value);
  return t(`size_${unit}`, { n });
}

/**
 * What to tell the person about files the vault will not take: which ones,
 * how large, and the vault's limit, in the page's language.
 */
function tooLargeText(e, items) {
  if (e.limit === null) return t("error_too_large");
  if (e.kind === "case" && !e.refusedByVault) {
    const [size, limit] = writeApart(e.total, e.limit, sizeText);
    return t("error_case_too_large", { size, limit });
  }
  const refused = e.indices.map((i) => items[i]);
  // The limit is written as precisely as the file closest to it needs.
  const closest = Math.min(...refused.map((i) => i.blob.size));
  const limit = writeApart(closest, e.limit, sizeText)[1];
  const files = refused.map((i) => `${i.display} (${writeApart(i.blob.size, e.limit, sizeText)[0]})`).join(", ");
  const key = e.refusedByVault ? (e.kind === "case" ? "error_case_refused" : "error_file_refused") : "error_file_too_large";
  return t(key, { files, limit });
}

/**
 * Show an error in the page's language. The technical detail, which is
 * English, follows in small print, marked as English for screen readers.
 * `items` are what was being sent, for an error that names some of them.
 */
function fail(where, e, items = []) {
  const el = $(where);
  el.hidden = false;
  if (e instanceof vault.NoSuchCase) {
    el.textContent = t("no_such_case");
  } else if (e instanceof vault.TooLarge && !e.refusedByVault) {
    // Found by the page itself: there is no detail for the vault's staff.
    el.textContent = tooLargeText(e, items);
  } else {
    const detail = document.createElement("small");
    detail.className = "detail";
    const code = document.createElement("span");
    code.lang = "en";
    code.textContent = e?.message || String(e);
    detail.append(t("error_detail_label"), " ", code);
    const said = e instanceof vault.TooLarge ? tooLargeText(e, items) : t(errorKey(e));
    el.replaceChildren(said, " ", detail);
  }
  el.focus();
}

/**
 * One row of per-file progress: `set(fraction)` moves it, `notSent()`
 * says the file did not reach the vault (never a full bar for a file the
 * vault does not hold).
 */
function progressRow(list, name) {
  const li = document.createElement("li");
  const label = document.createElement("span");
  label.textContent = name;
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = 0;
  bar.setAttribute("aria-label", name);
  const pct = document.createElement("span");
  pct.className = "pct";
  pct.textContent = "0%";
  li.append(label, bar, pct);
  list.append(li);
  // Each step (encrypting, then sending) is timed from its first progress:
  // without a JIT encryption runs at about 1 MB/s, so a video takes
  // minutes, and the person should see how many.
  let started = null;
  let last = -1;
  return {
    set(f) {
      const v = Math.floor(f * 100);
      const now = performance.now();
      if (f < last || started === null) started = now;
      last = f;
      bar.value = v;
      pct.textContent = `${v}%`;
      const left = timeLeft(now - started, f);
      if (left) pct.textContent += ` · ${left}`;
    },
    notSent() {
      bar.remove();
      li.classList.add("not-sent");
      pct.textContent = t("row_not_sent");
    },
  };
}

/**
 * What is left of a step `elapsed` ms in and `f` done, once it has run long
 * enough to say (a second, and some progress); nothing for quick steps.
 */
function timeLeft(elapsed, f) {
  if (elapsed < 1000 || f <= 0.01 || f >= 1) return "";
  const secs = Math.ceil(((elapsed / f) * (1 - f)) / 1000);
  if (secs < 2) return "";
  return secs < 90 ? t("time_left_seconds", { n: secs }) : t("time_left_minutes", { n: Math.ceil(secs / 60) });
}

/**
 * Keep the screen on while sending, where the browser allows it (a phone
 * that sleeps mid-encryption pauses it), and ask before the page is left:
 * nothing is kept on the device, so a reload starts over. Returns the
 * function that ends both.
 */
function holdWhileSending() {
  let lock = null;
  let ended = false;
  const acquire = async () => {
    try {
      if (!ended && navigator.wakeLock && document.visibilityState === "visible") {
        lock = await navigator.wakeLock.request("screen");
        // Sending may have ended while the request was pending.
        if (ended) lock.release().catch(() => {});
      }
    } catch {
      /* refused (battery saver, policy): sending goes on regardless */
    }
  };
  const guard = (ev) => {
    ev.preventDefault();
    ev.returnValue = "";
  };
  // A hidden page loses its lock; take it again when it comes back.
  document.addEventListener("visibilitychange", acquire);
  window.addEventListener("beforeunload", guard);
  acquire();
  return () => {
    ended = true;
    document.removeEventListener("visibilitychange", acquire);
    window.removeEventListener("beforeunload", guard);
    if (lock) lock.release().catch(() => {});
  };
}

/**
 * After an error: mark not sent the rows of the items it names (a file the
 * vault refused) and of every item after `current`, the one being sent
 * when it came (those never started).
 */
function markNotSent(rows, e, current) {
  const refused = e instanceof vault.TooLarge ? e.indices : [];
  for (const [i, row] of rows.entries()) {
    if (i > current || refused.includes(i)) row.notSent();
  }
}

/**
 * The items to send from a file input, as the person chose for each file
 * with findings; null, with the question asked again, when a choice is
 * missing or a cleaned copy could not be made.
 */
async function fileItems(inputId, kind, errorId) {
  try {
    return await review.items($(inputId), kind);
  } catch (e) {
    if (!(e instanceof review.MissingChoice || e instanceof review.CleanFailed)) throw e;
    const key = e instanceof review.MissingChoice ? "meta_need_choice" : "meta_clean_failed";
    const said = t(key, { name: e.file });
    $(errorId).hidden = false;
    $(errorId).textContent = said;
    review.ask(e.fieldset, said);
    return null;
  }
}

async function onSubmit(ev) {
  ev.preventDefault();
  $("form-error").hidden = true;
  const values = Object.fromEntries(FORM_FIELDS.map((f) => [f, $(f).value.trim()]));
  if (!values.what_happened) {
    $("form-error").hidden = false;
    $("form-error").textContent = t("error_need_statement");
    $("what_happened").focus();
    return;
  }
  const form = {
    format: "custos-form-v1",
    language: document.documentElement.lang,
    fields: values,
    consent_to_share: $("consent").checked,
  };
  const medical = await fileItems("medical-files", "medical", "form-error");
  const evidence = medical && (await fileItems("evidence-files", "evidence", "form-error"));
  if (!evidence) return;
  const enc = new TextEncoder();
  const items = [
    {
      blob: new Blob([enc.encode(values.what_happened)]),
      label: { name: "statement.txt", media_type: "text/plain; charset=utf-8", kind: "statement", description: null },
      display: t("item_statement"),
    },
    {
      blob: new Blob([enc.encode(JSON.stringify(form, null, 2))]),
      label: { name: "form.json", media_type: "application/json", kind: "form", description: null },
      display: t("item_form"),
    },
    ...medical,
    ...evidence,
  ];
  show("progress");
  $("early").hidden = true;
  $("progress-error").hidden = true;
  $("form-files").hidden = true;
  $("form-files").replaceChildren();
  let created = false;
  let current = -1;
  $("file-progress").replaceChildren();
  const rows = items.map((i) => progressRow($("file-progress"), i.display));
  const release = holdWhileSending();
  try {
    const result = await vault.submit({
      items,
      duress: $("duress").checked,
      onStage: (stage, i) => {
        // Kept in this page's memory only: what the browser tests time.
        performance.mark(`custos:${stage}`);
        if (i !== undefined) current = i;
        $("stage").textContent = t(`stage_${stage}`, { name: i === undefined ? "" : items[i].display });
      },
      onProgress: (i, f) => rows[i].set(f),
      onCreated: ({ caseId, codename }) => {
        $("early-codename").textContent = codename;
        $("early-case").textContent = caseId;
        $("early").hidden = false;
        created = true;
      },
    });
    showDone(result);
  } catch (e) {
    markNotSent(rows, e, current);
    if (created) {
      // The case exists: keep its codename on screen with the error, so
      // the files can be added later.
      fail("progress-error", e, items);
    } else {
      // Back to the form, with everything typed and chosen still there.
      show("submit-view");
      if (e instanceof vault.TooLarge) {
        // The files the vault will not take, each marked not sent, next to
        // the message that names them.
        for (const i of e.indices) progressRow($("form-files"), items[i].display).notSent();
        $("form-files").hidden = false;
      }
      fail("form-error", e, items);
      if (e instanceof vault.TooLarge) $("form-error").append(" ", t("form_kept"));
    }
  } finally {
    release();
  }
}

function showDone(result) {
  $("codename").textContent = result.codename;
  $("case-id").textContent = result.caseId;
  $("duress-block").hidden = !result.duressCodename;
  $("duress-codename").textContent = result.duressCodename ?? "";
  const blob = new Blob([JSON.stringify(result.receipt, null, 2)], { type: "application/json" });
  $("receipt").href = URL.createObjectURL(blob);
  $("receipt").download = `custos-receipt-${result.caseId}.json`;
  // With witnesses, say whether they vouched for the record in time.
  const witnessed = $("receipt-witnessed");
  witnessed.hidden = result.witnessedBy === undefined;
  witnessed.textContent =
    result.witnessedBy === null
      ? t("receipt_unwitnessed")
      : t("receipt_witnessed", { names: (result.witnessedBy ?? []).join(", ") });
  show("done");
  $("done-title").focus();
  // The form held the account of events; clear it so that it is not left
  // on the screen or in the browser's form memory.
  $("submit-form").reset();
  for (const id of ["medical-files", "evidence-files"]) showChosen($(id));
}

let session = null;

async function onOpen(ev) {
  ev.preventDefault();
  $("return-error").hidden = true;
  $("return-status").textContent = t("stage_keys");
  try {
    session = await vault.openCase($("return-codename").value, $("return-case").value.trim());
    await renderSession();
  } catch (e) {
    session = null;
    $("return-status").textContent = "";
    $("case-view").hidden = true;
    fail("return-error", e);
  }
}

async function renderSession() {
  const status = session.detail.status === "open" ? t("status_open") : t("status_withdrawn");
  $("return-status").textContent = t("status_line", { status, count: session.objects.length });
  const list = $("object-list");
  list.replaceChildren();
  for (const o of session.objects) {
    const li = document.createElement("li");
    li.textContent = `${o.label.name} (${t(`kind_${o.label.kind}`)})`;
    list.append(li);
  }
  const { replies, unproven } = await vault.replies(session);
  const rl = $("reply-list");
  rl.replaceChildren();
  for (const r of replies) {
    const li = document.createElement("li");
    const from = document.createElement("p");
    from.textContent = t("reply_from", { name: r.from });
    const pre = document.createElement("pre");
    pre.textContent = r.text;
    li.append(from, pre);
    rl.append(li);
  }
  $("no-replies").hidden = replies.length > 0;
  $("unproven-replies").hidden = unproven === 0;
  $("unproven-replies").textContent = t("replies_unproven", { count: unproven });
  $("withdraw-block").hidden = session.detail.status !== "open";
  $("withdraw-confirm").checked = false;
  $("case-view").hidden = false;
}

async function onAdd(ev) {
  ev.preventDefault();
  if (!session) return;
  $("return-error").hidden = true;
  const items = await fileItems("add-files", "evidence", "return-error");
  if (!items || items.length === 0) return;
  $("add-progress").replaceChildren();
  const rows = items.map((i) => progressRow($("add-progress"), i.display));
  let current = -1;
  const release = holdWhileSending();
  try {
    // Before anything is encrypted: the vault's limits, with what the
    // case holds already.
    const held = session.objects.reduce((n, o) => n + o.size, 0);
    vault.checkSizes(items, session.params, held);
    for (const [i, item] of items.entries()) {
      current = i;
      try {
        await vault.storeObject({
          keys: session.keys,
          caseId: session.caseId,
          vkey: session.params.vkey,
          caseRecipient: session.caseRecipient,
          blob: item.blob,
          label: item.label,
          onProgress: (f) => rows[i].set(f),
        });
      } catch (e) {
        throw await vault.explainRefusal(e, i);
      }
    }
    $("add-files").value = "";
    showChosen($("add-files"));
    session = await vault.openCase($("return-codename").value, session.caseId, [session.kdf]);
    await renderSession();
    $("return-status").textContent += " " + t("added_ok");
  } catch (e) {
    markNotSent(rows, e, current);
    fail("return-error", e, items);
  } finally {
    release();
  }
}

async function onWithdraw(ev) {
  ev.preventDefault();
  if (!session || !$("withdraw-confirm").checked) return;
  $("return-error").hidden = true;
  try {
    await vault.withdraw(session);
    session = await vault.openCase($("return-codename").value, session.caseId, [session.kdf]);
    await renderSession();
    $("return-status").textContent += " " + t("withdrawn_ok");
  } catch (e) {
    fail("return-error", e);
  }
}

/** Say which files a picker holds, in the page's language. */
function showChosen(input) {
  const names = Array.from(input.files).map((f) => f.name);
  $(`${input.id}-chosen`).textContent = names.length ? names.join(", ") : t("no_files");
  // What each file says about its sender, with the choice it needs.
  review.update(input, $(`${input.id}-meta`), t);
  // Files marked not sent were those chosen before.
  if (input.form?.id === "submit-form") {
    $("form-files").hidden = true;
    $("form-files").replaceChildren();
  }
}

function start() {
  $("app").hidden = false;
  for (const input of document.querySelectorAll(".file input")) {
    input.addEventListener("change", () => showChosen(input));
    review.listen($(`${input.id}-meta`));
  }
  $("submit-form").addEventListener("submit", onSubmit);
  $("return-form").addEventListener("submit", onOpen);
  $("add-form").addEventListener("submit", onAdd);
  $("withdraw-form").addEventListener("submit", onWithdraw);
  window.addEventListener("hashchange", route);
  route();
}

start();
