//! The passphrase form, for a desk started without a terminal to ask at.
//! The passphrase goes from the form to the identity file's decryption in
//! this process and is dropped (zeroized) there; the browser keeps nothing
//! (the field is a password field, the form is posted once, the answer is
//! a redirect).

use std::sync::Arc;

use age::secrecy::SecretString;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;

use crate::page::Ctx;
use crate::state::Desk;
use custos_core::identity::Identity;

/// `GET /unlock`.
pub(crate) async fn form(State(desk): State<Arc<Desk>>) -> Response {
    let cx = Ctx::of(&desk).await;
    if desk.identity().await.is_some() {
        return Redirect::to("/").into_response();
    }
    cx.page(
        cx.s.get("unlock_title"),
        "/unlock",
        html! {
            p { (cx.s.fill("unlock_intro", &[("file", &desk.identity_path.display().to_string())])) }
            form method="post" action="/unlock" {
                label for="passphrase" { (cx.s.get("unlock_passphrase")) }
                input #passphrase type="password" name="passphrase" autocomplete="off" required autofocus;
                button type="submit" { (cx.s.get("unlock_button")) }
            }
        },
    )
}

/// The form's one field.
#[derive(Deserialize)]
pub(crate) struct Passphrase {
    passphrase: crate::page::SecretText,
}

/// `POST /unlock`.
pub(crate) async fn submit(State(desk): State<Arc<Desk>>, Form(form): Form<Passphrase>) -> Response {
    let cx = Ctx::of(&desk).await;
    if desk.identity().await.is_some() {
        return Redirect::to("/").into_response();
    }
    let path = desk.identity_path.clone();
    // scrypt is meant to be slow: off the async threads.
    let loaded = tokio::task::spawn_blocking(move || {
        Identity::load(&path, || Ok(SecretString::from(form.passphrase.0.as_str().to_owned())))
    })
    .await;
    match loaded {
        Ok(Ok(identity)) => {
            desk.unlocked(identity).await;
            crate::lawyer::unlocked(&desk).await;
            Redirect::to("/").into_response()
        }
        Ok(Err(e)) => {
            desk.flash(true, cx.s.fill("unlock_failed", &[("error", &e.to_string())]));
            Redirect::to("/unlock").into_response()
        }
        Err(_) => cx
            .fail(StatusCode::INTERNAL_SERVER_ERROR, cx.s.get("unlock_failed_task"))
            .into_response(),
    }
}
