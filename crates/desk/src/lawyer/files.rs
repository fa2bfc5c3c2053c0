//! A case's files in the desk: the ciphertext is fetched once (checked
//! against its hash and its access receipt) into the desk's private
//! scratch folder; plaintext is made from it on demand, in memory, never
//! on disk. Previews are served inline only for kinds the browser shows
//! without running anything of the file's (images, PDF in its own viewer,
//! audio, video), under `Content-Security-Policy: sandbox`; everything
//! else is download-only. Media answers range requests by seeking in the
//! age stream, so a two-hour video seeks at once and memory stays flat.
//! Saving writes one file, readable by its owner only, into a folder the
//! lawyer names.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Form, Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::page::Ctx;
use crate::state::Desk;
use custos_client::flows::{self, OpenedCase};
use custos_client::ClientError;
use custos_core::envelope::Label;
use custos_core::identity::{Identity, Role};
use custos_core::wire::CaseObject;

/// Largest file read whole into memory to be shown as text (a statement,
/// the form, a message): a few pages are kilobytes.
pub(crate) const MAX_TEXT_BYTES: u64 = 1024 * 1024;

/// Plaintext is sent in pieces of this size (age's own chunk)...
const PIECE: usize = 64 * 1024;
/// ... with at most this many waiting to be sent: the memory one answer
/// holds, whatever the file's size.
const PIECES_IN_FLIGHT: usize = 4;

/// A file's own policy: a sandboxed document with no script and nothing
/// loaded from anywhere, framed by the desk's pages only. (Chromium's PDF
/// viewer ignores `sandbox`; the files' separate origin is what isolates
/// a PDF, see `guard`.)
fn file_csp(desk_origin: &str) -> String {
    format!("sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'; frame-ancestors {desk_origin}")
}

/// How the desk may show a file: the media types a browser displays
/// without running anything of the file's. Anything else is a download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preview {
    Image(&'static str),
    Pdf,
    Audio(&'static str),
    Video(&'static str),
    None,
}

impl Preview {
    /// From the label's media type, else the name's extension. A label
    /// that lies (a page called `x.png`) is still served as an image,
    /// with `nosniff`, so the browser never runs it.
    pub(crate) fn of(label: &Label) -> Preview {
        let by_type = label
            .media_type
            .as_deref()
            .map(|t| t.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let ext = label
            .name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        match (by_type.as_deref(), ext.as_str()) {
            (Some("image/png"), _) | (None | Some(""), "png") => Preview::Image("image/png"),
            (Some("image/jpeg"), _) | (None | Some(""), "jpg" | "jpeg") => Preview::Image("image/jpeg"),
            (Some("image/gif"), _) | (None | Some(""), "gif") => Preview::Image("image/gif"),
            (Some("image/webp"), _) | (None | Some(""), "webp") => Preview::Image("image/webp"),
            (Some("application/pdf"), _) | (None | Some(""), "pdf") => Preview::Pdf,
            (Some("audio/mpeg"), _) | (None | Some(""), "mp3") => Preview::Audio("audio/mpeg"),
            (Some("audio/ogg"), _) | (None | Some(""), "ogg" | "oga" | "opus") => Preview::Audio("audio/ogg"),
            (Some("audio/wav" | "audio/x-wav"), _) | (None | Some(""), "wav") => Preview::Audio("audio/wav"),
            (Some("audio/mp4"), _) | (None | Some(""), "m4a") => Preview::Audio("audio/mp4"),
            (Some("video/mp4"), _) | (None | Some(""), "mp4" | "m4v") => Preview::Video("video/mp4"),
            (Some("video/webm"), _) | (None | Some(""), "webm") => Preview::Video("video/webm"),
            (Some("video/ogg"), _) | (None | Some(""), "ogv") => Preview::Video("video/ogg"),
            _ => Preview::None,
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Preview::Image(t) | Preview::Audio(t) | Preview::Video(t) => t,
            Preview::Pdf => "application/pdf",
            Preview::None => "application/octet-stream",
        }
    }
}

/// The case as the desk last opened it, opened now if it was not.
pub(crate) async fn opened(
    desk: &Arc<Desk>,
    identity: &Identity,
    case_id: &str,
) -> Result<Arc<OpenedCase>, ClientError> {
    if let Some(c) = desk.opened.lock().unwrap_or_else(|e| e.into_inner()).get(case_id) {
        return Ok(c.clone());
    }
    let c = Arc::new(flows::open_case(&desk.client, identity, &desk.log, case_id).await?);
    remember(desk, c.clone());
    Ok(c)
}

/// Keep a case as opened now.
pub(crate) fn remember(desk: &Desk, c: Arc<OpenedCase>) {
    desk.opened
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(c.detail.case_id.clone(), c);
}

/// The object's ciphertext in the scratch folder, fetched (and its access
/// logged) the first time only.
pub(crate) async fn ciphertext(
    desk: &Arc<Desk>,
    identity: &Arc<Identity>,
    case_id: &str,
    obj: &CaseObject,
) -> Result<PathBuf, ClientError> {
    let path = desk.scratch.path().join(format!("{}.age", obj.object_id));
    // One fetch per object, whoever asks: a player's range requests, a
    // preview and "open" at once would each download the whole object
    // (and each download is a logged access).
    let lock = desk.fetching(&obj.object_id);
    let held = lock.lock_owned().await;
    if path.exists() {
        return Ok(path);
    }
    // The fetch runs on its own, so that a browser that stops waiting
    // does not cut it halfway; the next request finds it done.
    let (desk, identity, case_id, obj) = (desk.clone(), identity.clone(), case_id.to_owned(), obj.clone());
    let fetched = tokio::spawn(async move {
        let _held = held;
        // Fetched beside, then renamed: a file at `path` is always whole
        // and checked. A failed fetch removes its part file itself.
        let part = desk
            .scratch
            .path()
            .join(format!("{}.{}.part", obj.object_id, crate::gate::Token::new().reveal()));
        flows::fetch_ciphertext(&desk.client, &identity, &desk.log, &case_id, &obj, &part).await?;
        tokio::fs::rename(&part, &path).await?;
        Ok::<_, ClientError>(path)
    });
    fetched
        .await
        .map_err(|e| ClientError::Verify(format!("fetch task failed: {e}")))?
}

/// A small file's plaintext, in memory.
pub(crate) async fn text(
    desk: &Arc<Desk>,
    identity: &Arc<Identity>,
    case: &OpenedCase,
    obj: &CaseObject,
) -> Result<Zeroizing<Vec<u8>>, ClientError> {
    if obj.size > MAX_TEXT_BYTES + 64 * 1024 {
        return Err(ClientError::Usage("too large to show as text".into()));
    }
    let path = ciphertext(desk, identity, &case.detail.case_id, obj).await?;
    let key = case.case_key.identity().clone();
    tokio::task::spawn_blocking(move || -> Result<Zeroizing<Vec<u8>>, ClientError> {
        let mut out = Zeroizing::new(Vec::new());
        let file = std::fs::File::open(&path)?;
        custos_core::envelope::decrypt_stream(std::io::BufReader::new(file), &mut *out, &key)?;
        Ok(out)
    })
    .await
    .map_err(|e| ClientError::Verify(format!("decryption task failed: {e}")))?
}

/// A file of a case, its ciphertext fetched: the case as opened, the
/// file's place in its objects, and the ciphertext's path; or the page
/// saying why not.
async fn fetched(
    cx: &Ctx,
    identity: &Arc<Identity>,
    case_id: &str,
    object_id: &str,
) -> Result<(Arc<OpenedCase>, usize, PathBuf), Response> {
    let case = opened(&cx.desk, identity, case_id).await.map_err(|e| cx.vault(&e))?;
    let Some(at) = case.objects.iter().position(|(o, _)| o.object_id == object_id) else {
        return Err(cx.fail(StatusCode::NOT_FOUND, cx.s.get("no_such_file")).into_response());
    };
    let path = ciphertext(&cx.desk, identity, case_id, &case.objects[at].0)
        .await
        .map_err(|e| cx.vault(&e))?;
    Ok((case, at, path))
}

/// [`fetched`], for whoever is signed in as a lawyer (else the page saying
/// this is a lawyer's).
async fn lawyers_file(cx: &Ctx, case_id: &str, object_id: &str) -> Result<(Arc<OpenedCase>, usize, PathBuf), Response> {
    let identity = cx.as_role(Role::Lawyer).await?;
    fetched(cx, &identity, case_id, object_id).await
}

/// `GET /cases/{case}/files/{object}` on the files' origin: the file,
/// inline if it can be previewed, else as a download; ranges answered.
pub(crate) async fn view(
    State(desk): State<Arc<Desk>>,
    UrlPath((case_id, object_id)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let (case, at, path) = match lawyers_file(&cx, &case_id, &object_id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let label = &case.objects[at].1;
    let preview = Preview::of(label);
    if preview == Preview::None {
        // Only "save" writes such a file (see the case page).
        return cx
            .fail(StatusCode::NOT_FOUND, cx.s.get("no_preview_save_it"))
            .into_response();
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let key = case.case_key.identity().clone();
    let opened = tokio::task::spawn_blocking(move || open_range(&path, &key, range.as_deref())).await;
    let plain = match opened {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => return cx.vault(&e),
        Err(e) => {
            return cx
                .fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                .into_response()
        }
    };
    let (status, total, start, len) = (plain.status, plain.total, plain.start, plain.len);
    let mut resp = Response::new(stream(plain));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(preview.content_type()));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&file_csp(&desk.gate.origin)) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    let name = label.safe_file_name();
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename*=UTF-8''{}", percent(&name))) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if status == StatusCode::RANGE_NOT_SATISFIABLE {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + len - 1;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// `GET /cases/{case}/files/{object}/metadata`: what the decrypted file
/// itself says of who sent it and where (custos-meta's findings), beside
/// what its label says the sender chose. The file is fetched (a logged
/// access, as a preview is) and read from the age stream in memory; a
/// video only through its metadata boxes.
pub(crate) async fn findings(
    State(desk): State<Arc<Desk>>,
    UrlPath((case_id, object_id)): UrlPath<(String, String)>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let (case, at, path) = match lawyers_file(&cx, &case_id, &object_id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let key = case.case_key.identity().clone();
    let examined = tokio::task::spawn_blocking(move || -> Result<custos_client::metadata::Report, ClientError> {
        let file = std::io::BufReader::new(std::fs::File::open(&path)?);
        let decrypt = |_| ClientError::from(custos_core::envelope::EnvelopeError::Decrypt);
        let mut reader = age::Decryptor::new_buffered(file)
            .map_err(decrypt)?
            .decrypt(std::iter::once(&key as &dyn age::Identity))
            .map_err(decrypt)?;
        let len = reader.seek(SeekFrom::End(0))?;
        reader.seek(SeekFrom::Start(0))?;
        custos_client::metadata::examine_reader(&mut reader, len)
    })
    .await;
    let report = match examined {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return cx.vault(&e),
        Err(e) => {
            return cx
                .fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                .into_response()
        }
    };
    let s = cx.s;
    let label = &case.objects[at].1;
    let name = label.safe_file_name();
    let body = maud::html! {
        p { (s.get("findings_intro")) }
        @if report.findings.is_empty() {
            p.findings-none { (s.get("findings_none")) }
        } @else {
            dl.findings {
                @for f in &report.findings {
                    dt { (s.get(&format!("finding_{}", f.kind.as_str()))) }
                    dd { (f.value) }
                }
            }
        }
        @if let Some(note) = &report.note {
            p.muted { (s.fill("findings_note", &[("note", note)])) }
        }
        @if let Some(cleaned) = label.cleaned {
            p.cleaned { (s.get(if cleaned { "file_cleaned_yes" } else { "file_cleaned_no" })) }
        }
        p { a href=(format!("/cases/{case_id}#files")) { (s.get("findings_back")) } }
    };
    cx.page(
        &s.fill("findings_title", &[("name", &name)]),
        &format!("/cases/{case_id}/files/{object_id}/metadata"),
        body,
    )
}

/// Percent-encoding for a file name in `filename*`.
fn percent(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A file's plaintext, opened and positioned for one answer.
struct Plain {
    status: StatusCode,
    /// The plaintext's whole length.
    total: u64,
    /// Where the answer starts in it, and how many bytes it carries.
    start: u64,
    len: u64,
    reader: age::stream::StreamReader<std::io::BufReader<std::fs::File>>,
}

/// Open the ciphertext and seek in the age stream to what the request
/// asks: all of the file, or one range. Blocking.
fn open_range(path: &Path, key: &age::x25519::Identity, range: Option<&str>) -> Result<Plain, ClientError> {
    let file = std::io::BufReader::new(std::fs::File::open(path)?);
    let decryptor = age::Decryptor::new_buffered(file).map_err(|_| custos_core::envelope::EnvelopeError::Decrypt)?;
    let mut reader = decryptor
        .decrypt(std::iter::once(key as &dyn age::Identity))
        .map_err(|_| custos_core::envelope::EnvelopeError::Decrypt)?;
    let total = reader.seek(SeekFrom::End(0))?;
    // A range the desk does not answer (several, or another unit) gets the
    // whole file, as HTTP allows; one outside the file gets 416.
    let (status, start, len) = match range.filter(|r| is_single_byte_range(r)).map(|r| parse_range(r, total)) {
        Some(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Some(None) => (StatusCode::RANGE_NOT_SATISFIABLE, 0, 0),
        None => (StatusCode::OK, 0, total),
    };
    reader.seek(SeekFrom::Start(start))?;
    Ok(Plain {
        status,
        total,
        start,
        len,
        reader,
    })
}

/// The answer's body: `len` bytes read from the plaintext on a blocking
/// thread, [`PIECE`] at a time, through a short channel, so memory stays
/// at a few pieces whatever the file's size. A browser that stops
/// reading (a video seeking elsewhere) ends the thread.
fn stream(plain: Plain) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(PIECES_IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let Plain { mut reader, len, .. } = plain;
        let mut left = len;
        while left > 0 {
            let mut piece = vec![0u8; PIECE.min(left as usize)];
            let sent = match reader.read_exact(&mut piece) {
                Ok(()) => {
                    left -= piece.len() as u64;
                    tx.blocking_send(Ok(piece))
                }
                Err(e) => {
                    left = 0;
                    tx.blocking_send(Err(e))
                }
            };
            if sent.is_err() {
                break;
            }
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    }))
}

/// Whether a Range header asks for one range of bytes.
fn is_single_byte_range(header: &str) -> bool {
    header.starts_with("bytes=") && !header.contains(',')
}

/// One `bytes=` range of a file of `total` bytes, as (first, last), if
/// it is one the desk answers (a single range within the file).
fn parse_range(header: &str, total: u64) -> Option<(u64, u64)> {
    let spec = header.strip_prefix("bytes=")?.trim();
    if spec.contains(',') || total == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", suffix) => {
            let n: u64 = suffix.parse().ok()?;
            (total.saturating_sub(n), total - 1)
        }
        (a, "") => (a.parse().ok()?, total - 1),
        (a, b) => (a.parse().ok()?, b.parse::<u64>().ok()?.min(total - 1)),
    };
    (start <= end && start < total).then_some((start, end))
}

/// The save form: the folder to write into.
#[derive(Debug, Deserialize)]
pub(crate) struct SaveForm {
    folder: String,
}

/// `POST /cases/{case}/files/{object}/save`: decrypt the file into the
/// folder given, readable by its owner only; an existing file of that
/// name is never overwritten.
pub(crate) async fn save(
    State(desk): State<Arc<Desk>>,
    UrlPath((case_id, object_id)): UrlPath<(String, String)>,
    Form(form): Form<SaveForm>,
) -> Response {
    let cx = Ctx::of(&desk).await;
    let identity = match cx.as_role(Role::Lawyer).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let back = Redirect::to(&format!("/cases/{case_id}#files")).into_response();
    let folder = PathBuf::from(form.folder.trim());
    if !folder.is_absolute() {
        desk.flash(true, cx.s.get("save_needs_absolute"));
        return back;
    }
    let (case, at, path) = match fetched(&cx, &identity, &case_id, &object_id).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let dest = folder.join(case.objects[at].1.safe_file_name());
    let key = case.case_key.identity().clone();
    let written = {
        let dest = dest.clone();
        tokio::task::spawn_blocking(move || write_plain(&path, &key, &folder, &dest)).await
    };
    match written {
        Ok(Ok(())) => desk.flash(false, cx.s.fill("saved", &[("path", &dest.display().to_string())])),
        Ok(Err(e)) => desk.flash(true, cx.s.fill("save_failed", &[("error", &e.to_string())])),
        Err(e) => desk.flash(true, cx.s.fill("save_failed", &[("error", &e.to_string())])),
    }
    back
}

/// Decrypt `ciphertext` into the new file `dest` in `folder` (made
/// private if it is new); a file that fails to decrypt is removed.
fn write_plain(ciphertext: &Path, key: &age::x25519::Identity, folder: &Path, dest: &Path) -> Result<(), ClientError> {
    // Every folder made for it is readable by its owner only: a folder
    // named after a case says that the case exists.
    let mut missing: Vec<&Path> = folder.ancestors().take_while(|a| !a.exists()).collect();
    missing.reverse();
    for dir in missing {
        custos_durable::create_private_dir(dir)?;
    }
    let file = custos_core::identity::private_file(dest).map_err(|e| match e {
        custos_core::identity::IdentityError::Exists(_) => ClientError::Usage(format!(
            "{} exists already; the desk never overwrites a file",
            dest.display()
        )),
        e => ClientError::Usage(e.to_string()),
    })?;
    let mut out = std::io::BufWriter::new(file);
    let decrypted =
        custos_core::envelope::decrypt_stream(std::io::BufReader::new(std::fs::File::open(ciphertext)?), &mut out, key)
            .map_err(ClientError::from)
            .and_then(|()| {
                let f = out.into_inner().map_err(|e| e.into_error())?;
                f.sync_all()?;
                Ok(())
            });
    if decrypted.is_err() {
        let _ = std::fs::remove_file(dest);
    }
    decrypted
}

#[cfg(test)]
mod tests {
    use super::*;
    use custos_core::envelope::ObjectKind;

    fn label(name: &str, media_type: Option<&str>) -> Label {
        Label {
            name: name.into(),
            media_type: media_type.map(Into::into),
            kind: ObjectKind::Evidence,
            description: None,
            cleaned: None,
        }
    }

    #[test]
    fn only_kinds_a_browser_shows_without_running_them_preview() {
        assert_eq!(Preview::of(&label("a.png", None)), Preview::Image("image/png"));
        assert_eq!(
            Preview::of(&label("a", Some("image/jpeg"))),
            Preview::Image("image/jpeg")
        );
        assert_eq!(Preview::of(&label("report.PDF", Some(""))), Preview::Pdf);
        assert_eq!(Preview::of(&label("talk.webm", None)), Preview::Video("video/webm"));
        for (name, t) in [
            ("a.svg", Some("image/svg+xml")),
            ("a.svg", None),
            ("a.html", Some("text/html")),
            ("a.png", Some("text/html")),
            ("a.txt", None),
            ("a.docx", None),
        ] {
            assert_eq!(Preview::of(&label(name, t)), Preview::None, "{name} {t:?}");
        }
    }

    #[test]
    fn only_single_byte_ranges_are_answered_as_ranges() {
        assert!(is_single_byte_range("bytes=0-9"));
        assert!(!is_single_byte_range("bytes=0-1,4-5"));
        assert!(!is_single_byte_range("items=0-1"));
    }

    #[test]
    fn ranges_are_single_and_within_the_file() {
        assert_eq!(parse_range("bytes=0-", 10), Some((0, 9)));
        assert_eq!(parse_range("bytes=2-4", 10), Some((2, 4)));
        assert_eq!(parse_range("bytes=2-40", 10), Some((2, 9)));
        assert_eq!(parse_range("bytes=-3", 10), Some((7, 9)));
        assert_eq!(parse_range("bytes=10-", 10), None);
        assert_eq!(parse_range("bytes=4-2", 10), None);
        assert_eq!(parse_range("bytes=0-1,4-5", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
    }
}
