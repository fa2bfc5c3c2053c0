//! The admin's desk, one page (`/admin`): the registry (`principals`:
//! who is registered, adding one from a card, removing one after a
//! confirmation) and what the vault says publicly about itself (`vault`:
//! its checkpoint and the witnesses' cosignatures on it, its readiness,
//! its limits). Every change is the CLI's own request (`custos principal
//! add|remove`), signed by the admin and its receipt checked. An admin
//! holds no case key: nothing here reads a case.

mod principals;
mod vault;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::html;

use crate::page::Ctx;
use crate::state::Desk;

/// Largest add form accepted: a card file is one line of a few hundred
/// bytes; the form's other fields are a few bytes more. Far below axum's
/// default, so a wrong file chosen by mistake is refused at once.
const MAX_ADD_FORM_BYTES: usize = 64 * 1024;

pub(crate) fn routes() -> Router<Arc<Desk>> {
    Router::new()
        .route("/admin", get(page))
        .route(
            "/admin/principals",
            post(principals::add).layer(DefaultBodyLimit::max(MAX_ADD_FORM_BYTES)),
        )
        .route(
            "/admin/principals/{key}/remove",
            get(principals::confirm_remove).post(principals::remove),
        )
}

/// The admin, or the page saying this part of the desk is not theirs.
macro_rules! admin {
    ($cx:expr) => {
        match $cx.as_role(custos_core::identity::Role::Admin).await {
            Ok(i) => i,
            Err(r) => return r,
        }
    };
}
pub(crate) use admin;

/// `GET /admin`.
async fn page(State(desk): State<Arc<Desk>>) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = admin!(cx);
    let s = cx.s;
    let (listed, status) = tokio::join!(
        desk.client.principals(identity.signing_key()),
        vault::Status::read(&desk)
    );
    let listed = match listed {
        Ok(l) => l,
        Err(e) => return cx.vault(&e),
    };
    let body = html! {
        nav.toc aria-label=(s.get("ad_sections")) { ul {
            li { a href="#principals" { (s.get("ad_principals")) } }
            li { a href="#add" { (s.get("ad_add")) } }
            li { a href="#vault" { (s.get("ad_vault")) } }
        } }
        (principals::table(s, &listed, &identity.key_id()))
        (principals::add_form(s))
        (vault::section(s, &desk, &status))
    };
    cx.page(s.get("ad_title"), "/admin", body)
}
