//! The submitter's web page at `/`: one HTML page per language (Russian,
//! Kazakh, English), rendered once from `page.html` and `strings/*.json`, one
//! script (`app.js`, built from `web/` and committed so that cargo never needs
//! Node) and one stylesheet. Owns the page's security headers; does not take
//! part in the protocol, which the script speaks to the API like any client.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// The page template: `{{key}}` is a string of the page's language.
const TEMPLATE: &str = include_str!("page.html");
/// The bundled script (see `web/build.mjs`).
pub const APP_JS: &str = include_str!("app.js");
/// The stylesheet.
pub const STYLE_CSS: &str = include_str!("style.css");

/// The page's languages with their strings, in the order the language switch
/// shows them.
pub const LANGUAGES: [(&str, &str); 3] = [
    ("ru", include_str!("strings/ru.json")),
    ("kk", include_str!("strings/kk.json")),
    ("en", include_str!("strings/en.json")),
];

/// Served when the browser asks for none of the page's languages. Tor
/// Browser always asks for English (so as not to stand out), so the language
/// switch sits at the top of every page.
pub const DEFAULT_LANGUAGE: &str = "en";

/// Content-Security-Policy of the page: only its own script, style and API;
/// no inline script, no frames, no form posts anywhere, no plug-ins.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                       img-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'";

/// Headers on everything the page is made of. `no-store`: nothing of the
/// visit stays in the browser's cache on a device that may be searched.
const HEADERS: [(&str, &str); 7] = [
    ("content-security-policy", CSP),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("cross-origin-opener-policy", "same-origin"),
    (
        "permissions-policy",
        "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    ),
];

/// A language's strings.
pub fn strings(lang: &str) -> Option<BTreeMap<String, String>> {
    let (_, json) = LANGUAGES.iter().find(|(l, _)| *l == lang)?;
    Some(serde_json::from_str(json).expect("the committed string files are valid JSON"))
}

/// Render the page in `lang`; fails naming a placeholder that has no string.
pub fn render(lang: &str) -> Result<String, String> {
    let strings = strings(lang).ok_or_else(|| format!("no language {lang}"))?;
    // JSON inside <script>: no '<', so nothing can close the element early.
    let json = serde_json::to_string(&strings)
        .expect("strings serialise")
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let links: Vec<String> = LANGUAGES
        .iter()
        .map(|(l, _)| {
            let name = strings_name(l);
            let current = if *l == lang { " aria-current=\"page\"" } else { "" };
            format!(
                "<a href=\"/{l}/\" lang=\"{l}\" hreflang=\"{l}\"{current}>{}</a>",
                custos_core::bundle::report::esc(&name)
            )
        })
        .collect();
    let mut out = String::with_capacity(TEMPLATE.len() * 2);
    let mut rest = TEMPLATE;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .ok_or("unterminated placeholder in page.html")?;
        let key = &rest[start + 2..start + end];
        match key {
            "lang" => out.push_str(lang),
            "strings_json" => out.push_str(&json),
            "language_links" => out.push_str(&links.join(" ")),
            key => out.push_str(&custos_core::bundle::report::esc(
                strings
                    .get(key)
                    .ok_or_else(|| format!("{lang}: no string for {{{{{key}}}}}"))?,
            )),
        }
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn strings_name(lang: &str) -> String {
    strings(lang)
        .and_then(|s| s.get("language_name").cloned())
        .unwrap_or_else(|| lang.to_owned())
}

static PAGES: LazyLock<Vec<(&'static str, String)>> = LazyLock::new(|| {
    LANGUAGES
        .iter()
        .map(|(l, _)| (*l, render(l).expect("every language renders (tested)")))
        .collect()
});

/// The best of the page's languages for an `Accept-Language` header (RFC
/// 9110 section 12.5.4: weighted ranges; only the primary subtag counts).
pub fn negotiate(accept: Option<&str>) -> &'static str {
    let mut best: Option<(&'static str, f32)> = None;
    for item in accept.unwrap_or("").split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or("");
        let Some((lang, _)) = LANGUAGES.iter().find(|(l, _)| *l == primary) else {
            continue;
        };
        if q > 0.0 && best.is_none_or(|(_, bq)| q > bq) {
            best = Some((lang, q));
        }
    }
    best.map(|(l, _)| l).unwrap_or(DEFAULT_LANGUAGE)
}

fn respond(content_type: &'static str, body: &'static str, vary: bool) -> Response {
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    for (name, value) in HEADERS {
        h.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    if vary {
        h.insert(header::VARY, HeaderValue::from_static("accept-language"));
    }
    resp
}

fn page(lang: &str) -> &'static str {
    PAGES
        .iter()
        .find(|(l, _)| *l == lang)
        .map(|(_, p)| p.as_str())
        .expect("a known language")
}

async fn index(headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    respond("text/html; charset=utf-8", page(negotiate(accept)), true)
}

/// The page's routes, to merge into the API router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let mut r = Router::new()
        .route("/", get(index))
        .route(
            "/assets/app.js",
            get(|| async { respond("text/javascript; charset=utf-8", APP_JS, false) }),
        )
        .route(
            "/assets/style.css",
            get(|| async { respond("text/css; charset=utf-8", STYLE_CSS, false) }),
        );
    for (lang, _) in LANGUAGES {
        let handler = move || async move { respond("text/html; charset=utf-8", page(lang), false) };
        r = r
            .route(&format!("/{lang}/"), get(handler))
            .route(&format!("/{lang}"), get(handler));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_string_and_renders() {
        let en = strings("en").unwrap();
        for (lang, _) in LANGUAGES {
            let s = strings(lang).unwrap();
            let keys: Vec<_> = s.keys().collect();
            assert_eq!(keys, en.keys().collect::<Vec<_>>(), "{lang} has other keys than en");
            let page = render(lang).unwrap();
            assert!(!page.contains("{{"), "{lang}: a placeholder is left");
            assert!(page.contains(&format!("<html lang=\"{lang}\">")));
        }
    }

    /// No English left in the Russian and Kazakh pages: every string differs
    /// from the English one and has Cyrillic letters in it.
    #[test]
    fn russian_and_kazakh_are_translated() {
        let en = strings("en").unwrap();
        for lang in ["ru", "kk"] {
            for (k, v) in strings(lang).unwrap() {
                assert_ne!(Some(&v), en.get(&k), "{lang}.{k} is the English text");
                assert!(
                    v.chars().any(|c| ('\u{0400}'..='\u{04FF}').contains(&c)),
                    "{lang}.{k} has no Cyrillic: {v}"
                );
            }
        }
    }

    /// The script fills `{name}` placeholders: a translation that drops or
    /// misspells one would leave out the file or the limit it names.
    #[test]
    fn every_language_has_the_same_placeholders() {
        fn placeholders(s: &str) -> Vec<&str> {
            let mut out: Vec<&str> = s
                .split('{')
                .skip(1)
                .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
                .collect();
            out.sort_unstable();
            out
        }
        let en = strings("en").unwrap();
        assert_eq!(placeholders(&en["error_file_too_large"]), ["files", "limit"]);
        for (lang, _) in LANGUAGES {
            for (k, v) in strings(lang).unwrap() {
                assert_eq!(placeholders(&v), placeholders(&en[&k]), "{lang}.{k}: {v}");
            }
        }
    }

    #[test]
    fn strings_cannot_break_out_of_the_page() {
        assert_eq!(
            custos_core::bundle::report::esc("<a href=\"x\">'&"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;"
        );
        let page = render("en").unwrap();
        let json_start = page.find("id=\"strings\">").unwrap();
        let json_end = json_start + page[json_start..].find("</script>").unwrap();
        assert!(!page[json_start + 13..json_end].contains('<'));
    }

    #[test]
    fn languages_are_negotiated_by_weight() {
        assert_eq!(negotiate(Some("ru-RU,ru;q=0.9,en;q=0.8")), "ru");
        assert_eq!(negotiate(Some("en-US,en;q=0.9,kk;q=0.95")), "en");
        assert_eq!(negotiate(Some("de,kk;q=0.5,ru;q=0.4")), "kk");
        assert_eq!(negotiate(Some("ru;q=0, en;q=0.1")), "en");
        assert_eq!(negotiate(Some("de-DE")), DEFAULT_LANGUAGE);
        assert_eq!(negotiate(None), DEFAULT_LANGUAGE);
        assert_eq!(negotiate(Some(";;,q=,,")), DEFAULT_LANGUAGE);
    }
}
