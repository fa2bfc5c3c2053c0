//! The ids a client puts in a request's path or in a file's name, case ids
//! and object ids, held to the one spelling the core gives them
//! (`custos_core::protocol`). A caller's malformed id is a usage error,
//! before anything is signed or sent; a host's is a verification failure,
//! before anything is written. Key ids are a type (`KeyId`) that cannot
//! hold another spelling, so they need nothing here.

use crate::{terminal, ClientError};
use custos_core::protocol::{is_case_id, is_lower_hex};
use custos_core::wire::CaseDetail;

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Hex digits of an object id: the SHA-256 of its ciphertext.
const OBJECT_ID_HEX_LEN: usize = 64;

/// Hex digits of an upload id in a tus upload's path (16 random bytes,
/// which the vault draws).
const UPLOAD_ID_HEX_LEN: usize = 32;

/// How much of a malformed id an error quotes: enough to recognise it,
/// never a host's whole answer.
const QUOTED_CHARS: usize = 64;

/// Whether `s` is an object id: 64 lower-case hex digits.
pub(crate) fn is_object_id(s: &str) -> bool {
    is_lower_hex(s, OBJECT_ID_HEX_LEN)
}

/// `id` as an error may print it: cut short, its control characters escaped.
fn quoted(id: &str) -> String {
    terminal::escaped(&id.chars().take(QUOTED_CHARS).collect::<String>())
}

/// A case id a caller gave, checked before it goes into a request's path
/// (where `X%2Fobjects%2FY`, a `?` or a `/` would make it another request)
/// or a folder's name.
pub(crate) fn case_id_arg(case_id: &str) -> Result<()> {
    if is_case_id(case_id) {
        return Ok(());
    }
    Err(ClientError::Usage(format!(
        "\"{}\" is not a case id (24 lower-case hex digits, as `custos cases` lists them)",
        quoted(case_id)
    )))
}

/// An object id a caller gave, checked before it goes into a request's path.
pub(crate) fn object_id_arg(object_id: &str) -> Result<()> {
    if is_object_id(object_id) {
        return Ok(());
    }
    Err(ClientError::Usage(format!(
        "\"{}\" is not an object id (64 lower-case hex digits, as `custos get --json` lists them)",
        quoted(object_id)
    )))
}

/// An object id a host gave (in a case's record, or in the log), checked
/// before it names a file: `../../.bashrc` would name one outside the
/// folder it goes in.
pub(crate) fn host_object_id(object_id: &str) -> Result<()> {
    if is_object_id(object_id) {
        return Ok(());
    }
    Err(ClientError::Verify(format!(
        "the vault named an object \"{}\", which is not an object id (64 lower-case hex digits); refusing to go on",
        quoted(object_id)
    )))
}

/// The host's record of the case asked for: of that case, and every object
/// in it named by an object id. Checked as the record is parsed, before
/// any workflow makes a path of one of its ids.
pub(crate) fn check_case_detail(detail: &CaseDetail, asked: &str) -> Result<()> {
    if detail.case_id != asked {
        return Err(ClientError::Verify(format!(
            "asked for case {asked}, the vault answered with \"{}\"",
            quoted(&detail.case_id)
        )));
    }
    detail.objects.iter().try_for_each(|o| host_object_id(&o.object_id))
}

/// The tus upload a vault created for `case_id`, from its `Location`:
/// exactly `/v1/cases/CASE/uploads/ID`. Anything else (`@host/...`, a
/// query, another case) would send the upload's signed requests somewhere
/// other than that upload.
pub(crate) fn upload_path(case_id: &str, location: &str) -> Option<String> {
    let id = location.strip_prefix(&format!("/v1/cases/{case_id}/uploads/"))?;
    is_lower_hex(id, UPLOAD_ID_HEX_LEN).then(|| location.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASE: &str = "0123456789abcdef01234567";

    #[test]
    fn a_caller_id_that_would_change_the_request_is_refused() {
        case_id_arg(CASE).unwrap();
        for bad in [
            "X%2Fobjects%2FY",
            "0123456789abcdef01234567/export",
            "0123456789abcdef01234567?x=1",
            "../0123456789abcdef012345",
            "0123456789ABCDEF01234567",
            "",
        ] {
            let e = case_id_arg(bad).unwrap_err();
            assert!(matches!(e, ClientError::Usage(_)), "{bad}: {e:?}");
            assert!(e.to_string().contains("not a case id"), "{e}");
        }
        object_id_arg(&"ab".repeat(32)).unwrap();
        for bad in ["ab".repeat(31), "AB".repeat(32), format!("{}/x", "ab".repeat(32))] {
            assert!(matches!(object_id_arg(&bad), Err(ClientError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn a_host_object_id_that_names_another_file_is_refused() {
        host_object_id(&"0f".repeat(32)).unwrap();
        let e = host_object_id("../../../.bashrc").unwrap_err();
        assert!(matches!(e, ClientError::Verify(_)), "{e:?}");
        assert!(e.to_string().contains("\"../../../.bashrc\""), "{e}");
        // A long or hostile id is quoted short and escaped.
        let e = host_object_id(&format!("\u{1b}[2J{}", "a".repeat(500))).unwrap_err();
        let shown = e.to_string();
        assert!(
            shown.contains("\\u{1b}[2J") && !shown.contains('\u{1b}') && shown.len() < 300,
            "{shown}"
        );
    }

    #[test]
    fn a_record_of_another_case_or_with_a_climbing_object_is_refused() {
        let object = |id: &str| custos_core::wire::CaseObject {
            object_id: id.into(),
            size: 1,
            label: String::new(),
            index: 0,
            added_by: None,
        };
        let mut detail: CaseDetail = serde_json::from_value(serde_json::json!({
            "case_id": CASE, "status": "open", "created": "", "case_recipient": "",
            "objects": [], "envelope": null, "holders": [],
        }))
        .unwrap();
        detail.objects = vec![object(&"ab".repeat(32))];
        check_case_detail(&detail, CASE).unwrap();
        assert!(matches!(
            check_case_detail(&detail, "76543210fedcba9876543210"),
            Err(ClientError::Verify(_))
        ));
        detail.objects.push(object("objects/../../x"));
        assert!(matches!(check_case_detail(&detail, CASE), Err(ClientError::Verify(_))));
    }

    #[test]
    fn only_the_case_s_own_upload_path_is_taken() {
        let good = format!("/v1/cases/{CASE}/uploads/{}", "0a".repeat(16));
        assert_eq!(upload_path(CASE, &good).as_deref(), Some(good.as_str()));
        for bad in [
            format!("@evil.example/v1/cases/{CASE}/uploads/{}", "0a".repeat(16)),
            format!("/v1/cases/{CASE}/uploads/{}?x", "0a".repeat(16)),
            format!("/v1/cases/76543210fedcba9876543210/uploads/{}", "0a".repeat(16)),
            format!("/v1/cases/{CASE}/uploads/../../{}", "0a".repeat(13)),
            format!("https://elsewhere.example/v1/cases/{CASE}/uploads/{}", "0a".repeat(16)),
        ] {
            assert_eq!(upload_path(CASE, &bad), None, "{bad}");
        }
    }
}
