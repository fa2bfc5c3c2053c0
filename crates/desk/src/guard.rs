//! What every request to the desk passes before a page sees it, and the
//! headers every answer carries. The desk holds a lawyer's unlocked keys
//! and decrypted evidence, and listens where any program on this machine
//! and any web page in the browser can send it requests; so:
//!
//! - **Host** must be the address the desk listens on, exactly: a page on
//!   an attacker's domain that rebinds its name to 127.0.0.1 sends its own
//!   name, and is refused (DNS rebinding).
//! - **A session** is one cookie, HttpOnly and SameSite=Strict, handed out
//!   once, for the one-time token of the URL `custos desk` printed, and a
//!   secret first segment of every page's path (`/SECRET/inbox`). A
//!   second use of the token is refused; without both nothing but
//!   `/login` answers. Browsers send a host's cookies to every port of it,
//!   so any local program listening on another port of 127.0.0.1 that a
//!   page of the browser visits receives the cookie: the path's secret,
//!   which only the desk's own pages know and which no referrer carries
//!   elsewhere, is what it cannot have. The handlers are written with
//!   plain paths (`/inbox`); this module takes the secret off each
//!   request, and puts it on every link, form and redirect of the answer
//!   ([`Gate::link_into_session`]).
//! - **Origin** must be the desk's own on every request that changes
//!   anything (all but GET and HEAD): a form on another site, or another
//!   local port, is refused even if the browser sent the cookie.
//! - **Every answer** forbids scripts, outside resources, framing by
//!   others, caching and referrers (see [`SECURITY_HEADERS`]).
//! - **Decrypted files come from another origin.** The desk listens on a
//!   second loopback port that serves the files alone, read-only
//!   ([`preview_guard`]): a file, whatever it holds, is never a page of
//!   the desk's own origin. This matters for PDF: Chromium's viewer
//!   refuses to run in a sandboxed frame and ignores a `sandbox` CSP on a
//!   PDF (checked on Chromium 148), so origin is the isolation that holds.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::gate::Gate;
use crate::state::Desk;

/// Headers on every answer. `no-store`: decrypted evidence must not land
/// in the browser's disk cache. `same-origin` referrers, not
/// `no-referrer`: under `no-referrer` a browser sends `Origin: null` on
/// the desk's own forms, and the Origin check could not tell them from a
/// foreign page's.
const SECURITY_HEADERS: [(&str, &str); 4] = [
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "same-origin"),
    ("cross-origin-opener-policy", "same-origin"),
];

/// Why a request was refused, in words that help its honest sender and
/// no one else.
fn refuse(status: StatusCode, why: &'static str) -> Response {
    let mut resp = (status, why).into_response();
    secure(&mut resp, None);
    resp
}

/// What a guard returns: its answer, later.
pub(crate) type Guarding = std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;

/// The middleware: Host, session or token, Origin; then the headers.
pub(crate) async fn guard(State(desk): State<Arc<Desk>>, req: Request, next: Next) -> Response {
    let gate = &desk.gate;
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    if host != Some(gate.host.as_str()) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "refused: this desk answers only requests addressed to its own loopback address",
        );
    }
    if req.uri().path() == "/login" {
        return login(gate, &req);
    }
    let Some(inner) = gate.inside(req.uri()) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "refused: open the desk with the address `custos desk` printed (it works once; start the desk again for a new one)",
        );
    };
    if !gate.in_session(req.headers()) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "refused: open the desk with the address `custos desk` printed (it works once; start the desk again for a new one)",
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let origin = req.headers().get(header::ORIGIN).and_then(|h| h.to_str().ok());
        if origin != Some(gate.origin.as_str()) {
            return refuse(
                StatusCode::FORBIDDEN,
                "refused: a change must come from the desk's own pages",
            );
        }
    }
    let (mut parts, body) = req.into_parts();
    parts.uri = inner;
    let resp = next.run(Request::from_parts(parts, body)).await;
    let mut resp = gate.link_into_session(resp).await;
    secure(&mut resp, Some(&gate.page_csp));
    resp
}

/// The files' origin: its own Host, the same session, reads only. A
/// file's answer carries its own CSP (`sandbox`, no sources).
pub(crate) async fn preview_guard(State(desk): State<Arc<Desk>>, req: Request, next: Next) -> Response {
    let gate = &desk.gate;
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    if host != Some(gate.files_host.as_str()) {
        return refuse(
            StatusCode::MISDIRECTED_REQUEST,
            "refused: this desk answers only requests addressed to its own loopback address",
        );
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return refuse(
            StatusCode::METHOD_NOT_ALLOWED,
            "refused: files are read here, never changed",
        );
    }
    let key = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("k="))
        .unwrap_or("");
    if !gate.in_session(req.headers()) || !gate.files_key.matches(key) {
        return refuse(StatusCode::UNAUTHORIZED, "refused: not in the desk's session");
    }
    let mut resp = next.run(req).await;
    secure(&mut resp, None);
    // Chromium holds two loopback ports to be different sites for CORP
    // (`same-site` blocks the desk's own pages), so embedding is allowed
    // here, and the files key above is what keeps other pages out.
    resp.headers_mut()
        .insert("cross-origin-resource-policy", HeaderValue::from_static("cross-origin"));
    resp
}

/// `/login?token=...`: the one-time token for the session cookie, then on
/// to the home page (so the token leaves the address bar).
fn login(gate: &Gate, req: &Request) -> Response {
    let given = req
        .uri()
        .query()
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|kv| kv.strip_prefix("token="))
        .unwrap_or("");
    let Some(session) = gate.exchange(given) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "refused: this address was used already or is wrong; start `custos desk` again for a new one",
        );
    };
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/",
        gate.cookie,
        session.reveal()
    );
    let mut resp = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, format!("{}/", gate.prefix()))
        .header(header::SET_COOKIE, cookie)
        .body(Body::empty())
        .expect("a valid response");
    secure(&mut resp, None);
    resp
}

/// The CSP of an answer that is not a page: nothing runs, nothing loads.
const NOTHING_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// Add the headers every answer carries, and `csp` unless the answer has
/// its own (a file's `sandbox`).
fn secure(resp: &mut Response, csp: Option<&HeaderValue>) {
    let h = resp.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        h.insert(name, HeaderValue::from_static(value));
    }
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        let csp = csp.cloned().unwrap_or(HeaderValue::from_static(NOTHING_CSP));
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
}
