//! The desk's secrets and what they are checked against: the one-time
//! token of the address `custos desk` prints, the session it is exchanged
//! for, the secret segment of every page's path, the key in every file's
//! address, and the addresses and origins requests must name. The
//! middleware that applies them is `guard`.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};

/// Largest page the desk draws: a case's page with its messages; far
/// above any real one, and a bound on what one answer may hold.
const MAX_PAGE_BYTES: usize = 64 * 1024 * 1024;
use rand::RngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The session cookie's name, before the desk's port: cookies are kept
/// per host, not per port, so two desks open in one browser (two
/// identities) need two names.
const COOKIE: &str = "custos_desk";

/// The desk's pages: only its own style sheet; images, media and frames
/// from the files' origin; no script at all; forms post only to the desk;
/// no one frames it.
fn page_csp(files_origin: &str) -> String {
    format!(
        "default-src 'self'; script-src 'none'; object-src 'none'; img-src {files_origin}; \
         media-src {files_origin}; frame-src {files_origin}; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// 256 random bits, shown as hex: the one-time token and the session.
#[derive(Clone)]
pub(crate) struct Token(Zeroizing<String>);

impl Token {
    pub(crate) fn new() -> Token {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut bytes[..]);
        Token(Zeroizing::new(hex::encode(&bytes[..])))
    }

    /// The token's text, for the URL or the cookie.
    pub(crate) fn reveal(&self) -> &str {
        &self.0
    }

    pub(crate) fn matches(&self, given: &str) -> bool {
        self.0.as_bytes().ct_eq(given.as_bytes()).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

/// The one-time token and the session it was exchanged for.
#[derive(Debug)]
pub(crate) struct Gate {
    pub(crate) cookie: String,
    pub(crate) host: String,
    /// The desk's own origin: changes must come from it, files may be
    /// framed by it.
    pub(crate) origin: String,
    pub(crate) files_host: String,
    /// The files' origin, for links and the pages' CSP.
    pub(crate) files_origin: String,
    /// Asked of every request to the files' origin (`?k=`), besides the
    /// cookie: a file's address is known only to the desk's own pages.
    /// The cookie alone would not do: cookies go to every port of the
    /// host, so any page served from another local port is "same-site"
    /// and sends it.
    pub(crate) files_key: Token,
    /// The first segment of every page's path.
    page_key: Token,
    pub(crate) page_csp: HeaderValue,
    token: std::sync::Mutex<Option<Token>>,
    session: std::sync::Mutex<Option<Token>>,
}

impl Gate {
    pub(crate) fn new(addr: SocketAddr, files: SocketAddr, token: Token) -> Gate {
        let files_origin = format!("http://{files}");
        Gate {
            cookie: format!("{COOKIE}_{}", addr.port()),
            host: addr.to_string(),
            origin: format!("http://{addr}"),
            files_host: files.to_string(),
            page_csp: HeaderValue::from_str(&page_csp(&files_origin)).expect("a header value"),
            files_key: Token::new(),
            page_key: Token::new(),
            files_origin,
            token: std::sync::Mutex::new(Some(token)),
            session: std::sync::Mutex::new(None),
        }
    }

    /// Spend the one-time token: the new session, if `given` is it and it
    /// was not spent before.
    pub(crate) fn exchange(&self, given: &str) -> Option<Token> {
        let mut token = self.token.lock().unwrap_or_else(|e| e.into_inner());
        if !token.as_ref().is_some_and(|t| t.matches(given)) {
            return None;
        }
        *token = None;
        let session = Token::new();
        *self.session.lock().unwrap_or_else(|e| e.into_inner()) = Some(session.clone());
        Some(session)
    }

    /// `/SECRET`: what every page's path starts with.
    pub(crate) fn prefix(&self) -> String {
        format!("/{}", self.page_key.reveal())
    }

    /// The path a handler knows (`/inbox?q=1`) of a request's URI, if it
    /// starts with this session's secret segment.
    pub(crate) fn inside(&self, uri: &Uri) -> Option<Uri> {
        let path = uri.path().strip_prefix('/')?;
        let (first, rest) = path.split_once('/').unwrap_or((path, ""));
        if !self.page_key.matches(first) {
            return None;
        }
        let inner = match uri.query() {
            Some(q) => format!("/{rest}?{q}"),
            None => format!("/{rest}"),
        };
        inner.parse().ok()
    }

    /// Put this session's secret on an answer's redirect and on the
    /// links and forms of its HTML. Only attribute values maud wrote can
    /// hold `href="/` or `action="/`: it escapes every `"` of case text.
    pub(crate) async fn link_into_session(&self, resp: Response) -> Response {
        let prefix = self.prefix();
        let (mut parts, body) = resp.into_parts();
        if let Some(location) = parts.headers.get(header::LOCATION).and_then(|l| l.to_str().ok()) {
            if location.starts_with('/') && !location.starts_with("//") {
                if let Ok(v) = HeaderValue::from_str(&format!("{prefix}{location}")) {
                    parts.headers.insert(header::LOCATION, v);
                }
            }
        }
        let html = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|t| t.to_str().ok())
            .is_some_and(|t| t.starts_with("text/html"));
        if !html {
            return Response::from_parts(parts, body);
        }
        let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE_BYTES).await else {
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "the page was too large").into_response();
        };
        let page = String::from_utf8_lossy(&bytes)
            .replace("href=\"/", &format!("href=\"{prefix}/"))
            .replace("action=\"/", &format!("action=\"{prefix}/"));
        parts.headers.remove(header::CONTENT_LENGTH);
        Response::from_parts(parts, Body::from(page))
    }

    pub(crate) fn in_session(&self, headers: &HeaderMap) -> bool {
        let session = self.session.lock().unwrap_or_else(|e| e.into_inner());
        let Some(session) = session.as_ref() else {
            return false;
        };
        // Any cookie of the name may be the one: a page on another port
        // can set a second one (cookies ignore ports) to shadow ours.
        cookies(headers, &self.cookie).any(|c| session.matches(c))
    }
}

/// The values of the cookies named `name` the request sent.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_works_once_and_gives_a_different_session() {
        let token = Token::new();
        let text = token.reveal().to_owned();
        let gate = Gate::new("127.0.0.1:9".parse().unwrap(), "127.0.0.1:10".parse().unwrap(), token);
        assert!(gate.exchange("0").is_none());
        let session = gate.exchange(&text).expect("the first use works");
        assert_ne!(session.reveal(), text);
        assert!(gate.exchange(&text).is_none(), "a second use is refused");
    }

    #[test]
    fn the_session_is_read_from_its_own_cookie_only() {
        let token = Token::new();
        let text = token.reveal().to_owned();
        let gate = Gate::new("127.0.0.1:9".parse().unwrap(), "127.0.0.1:10".parse().unwrap(), token);
        let session = gate.exchange(&text).unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other={}", session.reveal()).parse().unwrap());
        assert!(!gate.in_session(&h));
        h.insert(
            header::COOKIE,
            format!("a=b; {COOKIE}_9={}", session.reveal()).parse().unwrap(),
        );
        assert!(gate.in_session(&h));
        h.insert(
            header::COOKIE,
            format!("{COOKIE}_10={}", session.reveal()).parse().unwrap(),
        );
        assert!(!gate.in_session(&h), "another desk's cookie");
        h.insert(header::COOKIE, format!("{COOKIE}_9=00").parse().unwrap());
        assert!(!gate.in_session(&h));
        // A second cookie of the name, set by another port to shadow ours.
        h.insert(
            header::COOKIE,
            format!("{COOKIE}_9=00; {COOKIE}_9={}", session.reveal())
                .parse()
                .unwrap(),
        );
        assert!(gate.in_session(&h));
    }

    #[test]
    fn a_page_path_needs_the_secret_segment_which_comes_off() {
        let gate = Gate::new(
            "127.0.0.1:9".parse().unwrap(),
            "127.0.0.1:10".parse().unwrap(),
            Token::new(),
        );
        let p = gate.prefix();
        let inner = |s: &str| gate.inside(&s.parse().unwrap()).map(|u| u.to_string());
        assert_eq!(inner(&format!("{p}/inbox?q=a")).as_deref(), Some("/inbox?q=a"));
        assert_eq!(inner(&format!("{p}/")).as_deref(), Some("/"));
        assert_eq!(inner(&p).as_deref(), Some("/"));
        assert_eq!(inner("/inbox"), None);
        assert_eq!(inner(&format!("{p}x/inbox")), None);
        assert_eq!(inner(&format!("/x{}/inbox", &p[1..])), None);
    }
}
