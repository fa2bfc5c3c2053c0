//! The registry on the admin's page: the principals as the vault lists
//! them (as `custos principal list`), adding one from its card (a `.pub`
//! file chosen in the browser, or the card line pasted) with a role and,
//! for a lawyer, the intake flag (as `custos principal add`), and
//! removing one after a page that says what removal does (as `custos
//! principal remove`). Each change's receipt is checked against the
//! pinned log key before the page says it is done.

use std::sync::Arc;

use axum::extract::multipart::{Field, Multipart};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};

use super::admin;
use crate::page::{role_name, Ctx};
use crate::state::Desk;
use crate::strings::Strings;
use custos_client::{flows, ClientError};
use custos_core::custody::Action;
use custos_core::identity::{Card, KeyId, Principal, Role};
use custos_core::wire::PrincipalBody;

/// Largest card accepted, from the file or the text box: a card is one
/// line of about 170 bytes and a name of at most 64 characters.
const MAX_CARD_BYTES: usize = 4096;

/// The registry as a table, admins first.
pub(super) fn table(s: &Strings, listed: &[Principal], me: &KeyId) -> Markup {
    let mut listed: Vec<&Principal> = listed.iter().collect();
    let order = |r: Role| Role::ALL.iter().rev().position(|x| *x == r);
    listed.sort_by(|a, b| (order(a.role), &a.name).cmp(&(order(b.role), &b.name)));
    html! {
        section #principals aria-labelledby="principals-h" {
            h2 #principals-h { (s.get("ad_principals")) }
            p { (s.get("ad_principals_intro")) }
            table #registry {
                caption.visually-hidden { (s.get("ad_principals")) }
                thead { tr {
                    th scope="col" { (s.get("ad_col_name")) }
                    th scope="col" { (s.get("ad_col_key")) }
                    th scope="col" { (s.get("ad_col_role")) }
                    th scope="col" { (s.get("ad_col_intake")) }
                    th scope="col" { span.visually-hidden { (s.get("ad_col_remove")) } }
                } }
                tbody { @for p in &listed {
                    tr data-key=(p.key_id.as_str()) data-role=(p.role.as_str()) data-intake=(p.intake) {
                        th scope="row" { (p.name) @if p.key_id == *me { " " (s.get("you")) } }
                        td { code { (p.key_id.as_str()) } }
                        td { (role_name(s, p.role)) }
                        td { (s.get(if p.intake { "ad_yes" } else { "ad_no" })) }
                        td { a.remove href=(remove_path(&p.key_id)) aria-label=(s.fill("ad_remove_who", &[("name", &p.name)])) { (s.get("ad_remove")) } }
                    }
                } }
            }
        }
    }
}

fn remove_path(key: &KeyId) -> String {
    format!("/admin/principals/{key}/remove")
}

/// The form that registers a principal.
pub(super) fn add_form(s: &Strings) -> Markup {
    html! {
        section #add aria-labelledby="add-h" {
            h2 #add-h { (s.get("ad_add")) }
            p { (s.get("ad_add_intro")) }
            form method="post" action="/admin/principals" enctype="multipart/form-data" {
                fieldset {
                    legend { (s.get("ad_card")) }
                    label for="card-file" { (s.get("ad_card_file")) }
                    input #card-file type="file" name="card_file" accept=".pub,text/plain";
                    label for="card-text" { (s.get("ad_card_text")) }
                    textarea #card-text name="card_text" rows="2" spellcheck="false" aria-describedby="card-hint" {}
                    p.hint #card-hint { (s.get("ad_card_hint")) }
                }
                label for="role" { (s.get("ad_role")) }
                select #role name="role" required {
                    option value="" { (s.get("ad_role_choose")) }
                    @for r in Role::ALL { option value=(r.as_str()) { (role_name(s, r)) } }
                }
                div.check {
                    input #intake type="checkbox" name="intake" value="1" aria-describedby="intake-hint";
                    label for="intake" { (s.get("ad_intake")) }
                }
                p.hint #intake-hint { (s.get("ad_intake_hint")) }
                button #add-principal type="submit" { (s.get("ad_add_button")) }
            }
        }
    }
}

/// The add form as it arrived.
#[derive(Default)]
struct AddForm {
    file: Vec<u8>,
    text: Vec<u8>,
    role: String,
    intake: bool,
}

impl AddForm {
    async fn read(multipart: &mut Multipart, s: &Strings) -> Result<AddForm, String> {
        let broken =
            |e: axum::extract::multipart::MultipartError| s.fill("ad_form_broken", &[("error", &e.body_text())]);
        let mut form = AddForm::default();
        while let Some(field) = multipart.next_field().await.map_err(broken)? {
            match field.name().unwrap_or("") {
                "card_file" => form.file = read_field(field, s).await?,
                "card_text" => form.text = read_field(field, s).await?,
                "role" => form.role = String::from_utf8_lossy(&read_field(field, s).await?).into_owned(),
                "intake" => form.intake = !read_field(field, s).await?.is_empty(),
                _ => {}
            }
        }
        Ok(form)
    }

    /// The card, from the file or the text; both must then be the same.
    fn card(&self, s: &Strings) -> Result<Card, String> {
        let parse = |bytes: &[u8]| -> Result<Option<Card>, String> {
            let text = std::str::from_utf8(bytes).map_err(|_| s.get("ad_card_not_text").to_owned())?;
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<Card>()
                .map(Some)
                .map_err(|e| s.fill("ad_card_bad", &[("error", &e.to_string())]))
        };
        match (parse(&self.file)?, parse(&self.text)?) {
            (Some(a), Some(b)) if a != b => Err(s.get("ad_card_two").to_owned()),
            (Some(card), _) | (None, Some(card)) => Ok(card),
            (None, None) => Err(s.get("ad_card_missing").to_owned()),
        }
    }

    /// The request: a role, and intake for a lawyer only (the vault
    /// refuses it for others; saying so here names the field).
    fn body(&self, s: &Strings) -> Result<PrincipalBody, String> {
        let card = self.card(s)?;
        let role: Role = self.role.parse().map_err(|_| s.get("ad_role_missing").to_owned())?;
        if self.intake && role != Role::Lawyer {
            return Err(s.get("ad_intake_lawyers_only").to_owned());
        }
        Ok(PrincipalBody {
            card,
            role,
            intake: self.intake,
        })
    }
}

/// A field's bytes, at most [`MAX_CARD_BYTES`].
async fn read_field(mut field: Field<'_>, s: &Strings) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| s.fill("ad_form_broken", &[("error", &e.body_text())]))?
    {
        if bytes.len() + chunk.len() > MAX_CARD_BYTES {
            return Err(s.fill("ad_card_too_big", &[("n", &MAX_CARD_BYTES.to_string())]));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// `POST /admin/principals`: register a principal.
pub(super) async fn add(State(desk): State<Arc<Desk>>, mut multipart: Multipart) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = admin!(cx);
    let s = cx.s;
    let result = async {
        let body = AddForm::read(&mut multipart, s).await?.body(s)?;
        let (key, name, role, intake) = (body.card.key_id(), body.card.name.clone(), body.role, body.intake);
        let done = async {
            let receipt = desk.client.add_principal(identity.signing_key(), &body).await?;
            flows::check_receipt(&receipt, &desk.log, Action::PrincipalAdded)?;
            Ok::<_, ClientError>(())
        };
        done.await
            .map_err(|e| s.fill("action_failed", &[("error", &e.to_string())]))?;
        let role = role_name(s, role);
        let said = [("name", name.as_str()), ("key", key.as_str()), ("role", role)];
        Ok::<_, String>(s.fill(if intake { "ad_added_intake" } else { "ad_added" }, &said))
    }
    .await;
    match result {
        Ok(text) => {
            desk.flash(false, text);
            Redirect::to("/admin#principals").into_response()
        }
        Err(text) => {
            desk.flash(true, text);
            Redirect::to("/admin#add").into_response()
        }
    }
}

/// The principal `key` names, as the vault lists it.
async fn find(cx: &Ctx, identity: &custos_core::identity::Identity, key: &str) -> Result<Principal, Response> {
    let listed = cx
        .desk
        .client
        .principals(identity.signing_key())
        .await
        .map_err(|e| cx.vault(&e))?;
    listed.into_iter().find(|p| p.key_id.as_str() == key).ok_or_else(|| {
        cx.fail(StatusCode::NOT_FOUND, cx.s.fill("ad_no_such", &[("key", key)]))
            .into_response()
    })
}

/// `GET /admin/principals/{key}/remove`: what removal does, and the
/// button that does it.
pub(super) async fn confirm_remove(State(desk): State<Arc<Desk>>, UrlPath(key): UrlPath<String>) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = admin!(cx);
    let s = cx.s;
    let p = match find(&cx, &identity, &key).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let me = p.key_id == identity.key_id();
    let body = html! {
        dl.summary #remove-who {
            dt { (s.get("ad_col_name")) } dd { (p.name) }
            dt { (s.get("ad_col_key")) } dd { code { (p.key_id.as_str()) } }
            dt { (s.get("ad_col_role")) } dd { (role_name(s, p.role)) }
        }
        p.flash.failed role="alert" { (s.get("ad_remove_warning")) }
        @if p.role == Role::Lawyer { p { (s.get("ad_remove_lawyer")) } }
        @if me { p.flash.failed #remove-self { (s.get("ad_remove_self")) } }
        form method="post" action=(remove_path(&p.key_id)) {
            button #confirm-remove type="submit" { (s.fill("ad_remove_confirm", &[("name", &p.name)])) }
            " "
            a #cancel-remove href="/admin#principals" { (s.get("ad_remove_cancel")) }
        }
    };
    cx.page(
        &s.fill("ad_remove_title", &[("name", &p.name)]),
        &remove_path(&p.key_id),
        body,
    )
}

/// `POST /admin/principals/{key}/remove`: remove, after the confirmation
/// page.
pub(super) async fn remove(State(desk): State<Arc<Desk>>, UrlPath(key): UrlPath<String>) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = admin!(cx);
    let s = cx.s;
    let result = async {
        let key: KeyId = key
            .parse()
            .map_err(|e: custos_core::identity::IdentityError| ClientError::Usage(e.to_string()))?;
        let receipt = desk.client.remove_principal(identity.signing_key(), &key).await?;
        flows::check_receipt(&receipt, &desk.log, Action::PrincipalRemoved)?;
        Ok::<_, ClientError>(key)
    }
    .await;
    match result {
        Ok(key) => desk.flash(false, s.fill("ad_removed", &[("key", key.as_str())])),
        Err(e) => desk.flash(true, s.fill("action_failed", &[("error", &e.to_string())])),
    }
    Redirect::to("/admin#principals").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_core::bundle::disclosure::Language;
    use custos_core::identity::Identity;

    fn form(file: &str, text: &str, role: &str, intake: bool) -> AddForm {
        AddForm {
            file: file.as_bytes().to_vec(),
            text: text.as_bytes().to_vec(),
            role: role.into(),
            intake,
        }
    }

    #[test]
    fn a_card_comes_from_the_file_or_the_text_and_intake_is_for_lawyers() {
        let s = crate::strings::of(Language::En);
        let a = Identity::generate("A").unwrap().card().to_string();
        let b = Identity::generate("B").unwrap().card().to_string();
        let from_file = form(&format!("{a}\n"), "", "lawyer", true).body(s).unwrap();
        assert_eq!(from_file.card.name, "A");
        assert!(from_file.intake);
        let from_text = form("", &format!("  {b}\r\n"), "auditor", false).body(s).unwrap();
        assert_eq!((from_text.card.name.as_str(), from_text.role), ("B", Role::Auditor));
        assert!(form(&a, &a, "admin", false).body(s).is_ok(), "the same card twice");
        for (bad, why) in [
            (form(&a, &b, "lawyer", false), "ad_card_two"),
            (form("", " ", "lawyer", false), "ad_card_missing"),
            (form(&a, "", "", false), "ad_role_missing"),
            (form(&a, "", "auditor", true), "ad_intake_lawyers_only"),
            (form("custos-card-v1 nonsense", "", "lawyer", false), "ad_card_bad"),
        ] {
            let e = bad.body(s).unwrap_err();
            assert!(e.starts_with(s.get(why).split('{').next().unwrap()), "{why}: {e}");
        }
    }
}
