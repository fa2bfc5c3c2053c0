//! The frame every desk page shares (skip link, navigation for the
//! identity's role, the language switch, the message a form left), the
//! style sheet, the home page that sends each role to its own, and the
//! small formatting every page needs (times, sizes). Pages are HTML
//! written with maud, which escapes every value it is given.

use std::sync::Arc;

use axum::extract::{Form, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

use crate::error::Failure;
use crate::state::Desk;
use crate::strings::{self, Strings, LANGUAGES};
use custos_core::bundle::disclosure::Language;
use custos_core::identity::{Identity, Principal, Role};

/// What a page's handler starts from: the language, its words, and who
/// is at the desk.
pub(crate) struct Ctx {
    pub(crate) desk: Arc<Desk>,
    pub(crate) language: Language,
    pub(crate) s: &'static Strings,
    pub(crate) me: Option<Principal>,
}

impl Ctx {
    pub(crate) async fn of(desk: &Arc<Desk>) -> Ctx {
        let language = desk.language().await;
        Ctx {
            desk: desk.clone(),
            language,
            s: strings::of(language),
            me: desk.me().await,
        }
    }

    /// The unlocked identity, or a redirect to the unlock form.
    pub(crate) async fn identity(&self) -> Result<Arc<Identity>, Response> {
        self.desk
            .identity()
            .await
            .ok_or_else(|| Redirect::to("/unlock").into_response())
    }

    /// The identity, when it has `role` in the registry; otherwise a page
    /// saying this part of the desk is not for it.
    pub(crate) async fn as_role(&self, role: Role) -> Result<Arc<Identity>, Response> {
        let identity = self.identity().await?;
        if self.me.as_ref().is_some_and(|p| p.role == role) {
            Ok(identity)
        } else {
            Err(self
                .fail(StatusCode::FORBIDDEN, self.s.get("not_your_role"))
                .into_response())
        }
    }

    /// A failure page.
    pub(crate) fn fail(&self, status: StatusCode, text: impl Into<String>) -> Failure {
        Failure {
            status,
            language: self.language,
            text: text.into(),
        }
    }

    /// What the vault or the client refused.
    pub(crate) fn vault(&self, e: &custos_client::ClientError) -> Response {
        Failure::from_client(self.language, e).into_response()
    }

    /// A page of the desk: `title` is its heading; `path` the address it
    /// is at (the language switch comes back to it).
    pub(crate) fn page(&self, title: &str, path: &str, body: Markup) -> Response {
        self.page_refreshing(title, path, body, None)
    }

    /// The same page, reloading itself every `refresh` seconds while
    /// something runs (a refresh of the inbox, an audit): a meta refresh,
    /// since the desk's pages run no script.
    pub(crate) fn page_refreshing(&self, title: &str, path: &str, body: Markup, refresh: Option<u32>) -> Response {
        let flash = self.desk.take_flash();
        let role = self.me.as_ref().map(|p| p.role);
        let nav: Vec<(&str, &str)> = match role {
            Some(Role::Lawyer) => vec![("/inbox", self.s.get("nav_inbox"))],
            Some(Role::Auditor) => vec![
                ("/audit", self.s.get("nav_audit")),
                ("/verify", self.s.get("nav_verify")),
            ],
            Some(Role::Admin) => vec![("/admin", self.s.get("nav_admin"))],
            None => vec![],
        };
        let markup = html! {
            (DOCTYPE)
            html lang=(self.language.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · " (self.s.get("desk_name")) }
                    link rel="stylesheet" href="/style.css";
                    @if let Some(seconds) = refresh {
                        meta http-equiv="refresh" content=(seconds);
                    }
                }
                body {
                    a.skip href="#main" { (self.s.get("skip_to_content")) }
                    header {
                        p.brand { (self.s.get("desk_name")) }
                        @if let Some(me) = &self.me {
                            p.who { (self.s.fill("signed_in_as", &[("name", &me.name), ("role", role_name(self.s, me.role)), ("key", me.key_id.as_str())])) }
                        }
                        @if !nav.is_empty() {
                            nav aria-label=(self.s.get("nav_label")) {
                                ul { @for (href, text) in &nav {
                                    li { a href=(href) aria-current=[(path.starts_with(href)).then_some("page")] { (text) } }
                                } }
                            }
                        }
                        (language_switch(self.s, self.language, path))
                    }
                    main #main tabindex="-1" {
                        h1 { (title) }
                        @if let Some(f) = flash {
                            p.flash.failed[f.failed] role=(if f.failed { "alert" } else { "status" }) { (f.text) }
                        }
                        (body)
                    }
                }
            }
        };
        html_response(markup)
    }
}

/// Text a form sends that must not outlive its use (a passphrase, a
/// reply, a note): zeroized when dropped.
pub(crate) struct SecretText(pub(crate) zeroize::Zeroizing<String>);

impl<'de> Deserialize<'de> for SecretText {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(|s| SecretText(zeroize::Zeroizing::new(s)))
    }
}

/// An HTML answer.
pub(crate) fn html_response(markup: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

/// The switch: one button per language, each named in its own language.
fn language_switch(s: &Strings, current: Language, back: &str) -> Markup {
    html! {
        form.lang method="post" action="/lang" {
            input type="hidden" name="back" value=(back);
            span #lang-label { (s.get("language")) }
            @for l in LANGUAGES {
                button type="submit" name="lang" value=(l.code()) lang=(l.code())
                    aria-describedby="lang-label" aria-pressed=(if l == current { "true" } else { "false" }) {
                    (strings::of(l).language_name())
                }
            }
        }
    }
}

/// A role's name in the desk's language.
pub(crate) fn role_name(s: &Strings, role: Role) -> &str {
    match role {
        Role::Lawyer => s.get("role_lawyer"),
        Role::Auditor => s.get("role_auditor"),
        Role::Admin => s.get("role_admin"),
    }
}

/// `/`: each role's own first page.
pub(crate) async fn home(State(desk): State<Arc<Desk>>) -> Response {
    let cx = Ctx::of(&desk).await;
    if cx.desk.identity().await.is_none() {
        return Redirect::to("/unlock").into_response();
    }
    match cx.me.as_ref().map(|p| p.role) {
        Some(Role::Lawyer) => Redirect::to("/inbox").into_response(),
        Some(Role::Auditor) => Redirect::to("/audit").into_response(),
        Some(Role::Admin) => Redirect::to("/admin").into_response(),
        None => cx.page(
            cx.s.get("unregistered_title"),
            "/",
            html! { p { (cx.s.get("unregistered")) } },
        ),
    }
}

/// The style sheet.
pub(crate) async fn style() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
        .into_response()
}

/// The language switch's form.
#[derive(Debug, Deserialize)]
pub(crate) struct LanguageForm {
    lang: String,
    back: String,
}

/// `POST /lang`: change the language, back to the same page.
pub(crate) async fn set_language(State(desk): State<Arc<Desk>>, Form(form): Form<LanguageForm>) -> Response {
    if let Ok(l) = form.lang.parse::<Language>() {
        desk.set_language(l).await;
    }
    Redirect::to(&local_path(&form.back)).into_response()
}

/// `back` if it is a path of this desk, else `/`: a redirect never leaves
/// the desk.
pub(crate) fn local_path(back: &str) -> String {
    // Browsers drop tabs and line breaks from a URL (`/\t/evil` becomes
    // `//evil`), so no whitespace or control character at all.
    let plain = !back.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\');
    if plain && back.starts_with('/') && !back.starts_with("//") {
        back.to_owned()
    } else {
        "/".to_owned()
    }
}

/// An RFC 3339 time as the desk shows it: date and minutes, UTC.
pub(crate) fn when(rfc3339: &str) -> String {
    match time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339) {
        Ok(t) => {
            let t = t.to_offset(time::UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        }
        Err(_) => rfc3339.to_owned(),
    }
}

/// A size in the desk's language.
pub(crate) fn size(s: &Strings, bytes: u64) -> String {
    const UNITS: [&str; 4] = ["size_bytes", "size_kb", "size_mb", "size_gb"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    let n = if unit == 0 {
        bytes.to_string()
    } else {
        format!("{value:.1}")
    };
    s.fill(UNITS[unit], &[("n", &n)])
}

/// A case's events as a table: log index, time, action, who, objects.
/// `names` gives principals' names; a submitter's key shows as the
/// submitter.
pub(crate) fn timeline_table(
    s: &Strings,
    events: &[(u64, custos_core::custody::Event)],
    names: &std::collections::BTreeMap<custos_core::identity::KeyId, String>,
    codenames: &std::collections::BTreeSet<custos_core::identity::KeyId>,
) -> Markup {
    html! {
        table.timeline {
            caption.visually-hidden { (s.get("timeline_caption")) }
            thead { tr {
                th scope="col" { (s.get("tl_index")) }
                th scope="col" { (s.get("tl_time")) }
                th scope="col" { (s.get("tl_action")) }
                th scope="col" { (s.get("tl_actor")) }
                th scope="col" { (s.get("tl_objects")) }
            } }
            tbody {
                @for (index, e) in events {
                    tr data-action=(e.action.name()) {
                        td { (index) }
                        td { (when(&e.time)) }
                        td { (s.get(&format!("action_{}", e.action.name()))) }
                        td { (actor_name(s, &e.actor, names, codenames)) }
                        td { @for o in &e.objects { code title=(o) { (o.get(..12).unwrap_or(o)) } " " } }
                    }
                }
            }
        }
    }
}

/// Who acted, as the log proves it: the vault, a codename of the case
/// (one of its submitter keys), a principal registered now, or a key the
/// registry no longer holds (a principal since removed), said as such.
fn actor_name(
    s: &Strings,
    actor: &str,
    names: &std::collections::BTreeMap<custos_core::identity::KeyId, String>,
    codenames: &std::collections::BTreeSet<custos_core::identity::KeyId>,
) -> String {
    if actor == "vault" {
        return s.get("actor_vault").to_owned();
    }
    // Which of the case's codenames acted is not said: a withdrawal by a
    // codename never seen before would point at the duress one.
    if codenames.iter().any(|k| k.as_str() == actor) {
        return s.get("actor_codename").to_owned();
    }
    match names.iter().find(|(k, _)| k.as_str() == actor) {
        Some((_, n)) => format!("{n} ({actor})"),
        None => s.fill("actor_other", &[("key", actor)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_never_leaves_the_desk() {
        assert_eq!(local_path("/cases/abc?x=1"), "/cases/abc?x=1");
        for outside in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "inbox",
            "",
        ] {
            assert_eq!(local_path(outside), "/", "{outside}");
        }
    }

    #[test]
    fn a_codename_is_never_named_and_a_removed_principal_is_not_taken_for_one() {
        use custos_core::identity::KeyId;
        let s = crate::strings::of(Language::En);
        let key = |c: char| -> KeyId { std::iter::repeat_n(c, 16).collect::<String>().parse().unwrap() };
        let names = [(key('a'), "Lawyer A".to_owned())].into_iter().collect();
        let codenames = [key('c')].into_iter().collect();
        assert_eq!(actor_name(s, "vault", &names, &codenames), "the vault");
        assert_eq!(
            actor_name(s, key('a').as_str(), &names, &codenames),
            format!("Lawyer A ({})", key('a'))
        );
        let codename = actor_name(s, key('c').as_str(), &names, &codenames);
        assert!(
            !codename.contains(key('c').as_str()),
            "which codename acted is not said: {codename}"
        );
        let removed = actor_name(s, key('d').as_str(), &names, &codenames);
        assert!(
            removed.contains("not in the registry") && !removed.contains("codename"),
            "{removed}"
        );
    }

    #[test]
    fn times_show_minutes_in_utc() {
        assert_eq!(when("2026-05-03T10:20:30Z"), "2026-05-03 10:20 UTC");
        assert_eq!(when("2026-05-03T12:20:30+02:00"), "2026-05-03 10:20 UTC");
        assert_eq!(when("not a time"), "not a time");
    }
}
