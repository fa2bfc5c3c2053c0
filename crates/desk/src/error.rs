//! A refusal or failure as the desk shows it: a page in the desk's
//! language with one clear sentence, and the matching status. The vault's
//! and the client's messages are shown as they are (they name what failed
//! and never hold case content).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use custos_client::ClientError;
use custos_core::bundle::disclosure::Language;
use maud::{html, DOCTYPE};

use crate::strings;

/// A page that says what went wrong.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) language: Language,
    pub(crate) text: String,
}

impl Failure {
    /// What the vault or the client said, with the status it implies.
    pub(crate) fn from_client(language: Language, e: &ClientError) -> Failure {
        let status = match e {
            ClientError::Usage(_) => StatusCode::BAD_REQUEST,
            ClientError::Verify(_) => StatusCode::BAD_GATEWAY,
            e if e.code() == Some("not_found") => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_GATEWAY,
        };
        Failure {
            status,
            language,
            text: e.to_string(),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let mut resp = failure_page(self.language, &self.text);
        *resp.status_mut() = self.status;
        resp
    }
}

/// The page a failure is shown on (no navigation: it may come before the
/// identity is known).
fn failure_page(language: Language, text: &str) -> Response {
    let s = strings::of(language);
    (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html! {
            (DOCTYPE)
            html lang=(language.code()) {
                head {
                    meta charset="utf-8";
                    title { (s.get("failure_title")) " · " (s.get("desk_name")) }
                    link rel="stylesheet" href="/style.css";
                }
                body { main #main {
                    h1 { (s.get("failure_title")) }
                    p.flash.failed role="alert" { (text) }
                    p { a href="/" { (s.get("back_home")) } }
                } }
            }
        }
        .into_string(),
    )
        .into_response()
}
