//! The desk's gate, from outside: the one-time token, the session cookie,
//! the Host check (DNS rebinding), the Origin check (cross-site forms),
//! the headers every answer carries, and the files' separate origin.

use super::{plain_client, DeskProcess, Session};
use crate::util::TestVault;

/// The files' origin, as the pages' CSP names it.
fn files_origin(csp: &str) -> String {
    csp.split(';')
        .find_map(|d| d.trim().strip_prefix("frame-src "))
        .expect("the CSP names the files' origin")
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desk_answers_only_its_session_its_host_and_its_own_pages_changes() {
    let v = TestVault::start().await;
    let home = v.tmp.path().join("desk-home");
    let desk = DeskProcess::start(&v, &v.lawyer, &home);
    let http = plain_client();

    // Nothing answers before the token is exchanged.
    let resp = http.get(format!("{}/inbox", desk.origin)).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert!(!resp.text().await.unwrap().contains("inbox"), "a refusal shows nothing");

    // A wrong token is refused and does not spend the right one.
    let wrong = desk.url.replace("token=", "token=00");
    assert_eq!(http.get(&wrong).send().await.unwrap().status(), 401);

    let session = Session::start(&desk).await;
    let port = desk.origin.rsplit(':').next().unwrap();
    assert!(
        session.cookie.starts_with(&format!("custos_desk_{port}=")),
        "the cookie is this desk's: {}",
        session.cookie
    );
    // The token works once.
    assert_eq!(http.get(&desk.url).send().await.unwrap().status(), 401);

    let page = session.get(&desk.at("/inbox")).await;
    assert_eq!(page.status(), 200);
    // The cookie alone opens nothing: every other port of 127.0.0.1 a
    // page of the browser visits receives it too. The pages' paths start
    // with a secret only they carry.
    let bare = session.get(&format!("{}/inbox", desk.origin)).await;
    assert_eq!(bare.status(), 401, "the cookie without the path's secret");
    let wrong = session
        .get(
            &desk
                .at("/inbox")
                .replacen(&desk.origin, &format!("{}/00", desk.origin), 1),
        )
        .await;
    assert_eq!(wrong.status(), 401, "a wrong secret segment");
    let h = page.headers().clone();
    let csp = h["content-security-policy"].to_str().unwrap().to_owned();
    for directive in [
        "script-src 'none'",
        "object-src 'none'",
        "form-action 'self'",
        "default-src 'self'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "same-origin");
    let body = page.text().await.unwrap();
    assert!(!body.contains("<script"), "no script in a desk page");

    // Without the cookie, or with another value, nothing.
    let no_cookie = http.get(desk.at("/inbox")).send().await.unwrap();
    assert_eq!(no_cookie.status(), 401);
    let forged = http
        .get(desk.at("/inbox"))
        .header("cookie", "custos_desk=0000")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    // A foreign Host (a rebound DNS name pointing at 127.0.0.1) is refused,
    // cookie or not.
    for host in [
        format!("evil.example:{port}"),
        format!("localhost:{port}"),
        "127.0.0.1".to_owned(),
    ] {
        let resp = http
            .get(desk.at("/inbox"))
            .header("host", &host)
            .header("cookie", &session.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 421, "Host {host}");
    }

    // A change from another origin, or with none, is refused even with the
    // cookie; from the desk's own pages it goes through.
    let files = files_origin(&csp);
    for origin in ["http://evil.example", "null", files.as_str()] {
        let resp = session
            .post(&desk.at("/lang"), origin, &[("lang", "ru"), ("back", "/inbox")])
            .await;
        assert_eq!(resp.status(), 403, "Origin {origin}");
    }
    let resp = session
        .http
        .post(desk.at("/lang"))
        .header("cookie", &session.cookie)
        .form(&[("lang", "ru"), ("back", "/inbox")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "no Origin at all");
    let page = session.get(&desk.at("/inbox")).await.text().await.unwrap();
    assert!(page.contains("lang=\"en\""), "the refused changes changed nothing");
    let resp = session
        .post(&desk.at("/lang"), &desk.origin, &[("lang", "ru"), ("back", "/inbox")])
        .await;
    assert_eq!(resp.status(), 303);
    let page = session.get(&desk.at("/inbox")).await.text().await.unwrap();
    assert!(page.contains("<html lang=\"ru\""), "the desk's own change went through");

    // The files' origin serves files only, read-only, to the session only.
    assert_ne!(files, desk.origin);
    let resp = session.get(&format!("{files}/inbox")).await;
    assert_eq!(resp.status(), 401, "no page on the files' origin");
    let resp = http.get(format!("{files}/cases/x/files/y")).send().await.unwrap();
    assert_eq!(resp.status(), 401, "no file without the session");
    // The cookie goes to every port of the host, so it is not enough:
    // a file's address carries a key only the desk's pages know.
    let resp = session.get(&format!("{files}/cases/x/files/y?k=00")).await;
    assert_eq!(resp.status(), 401, "no file without the files key");
    let resp = session.post(&format!("{files}/lang"), &files, &[("lang", "en")]).await;
    assert_eq!(resp.status(), 405, "nothing changes through the files' origin");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_with_a_passphrase_is_unlocked_in_the_desks_own_form() {
    let v = TestVault::start().await;
    let home = v.tmp.path().join("desk-home");
    std::fs::create_dir_all(&home).unwrap();
    let file = home.join("lawyer.identity");
    let pass = age::secrecy::SecretString::from("correct horse battery staple".to_owned());
    v.lawyer.save(&file, Some(pass)).unwrap();
    // No terminal and no CUSTOS_PASSPHRASE: the desk starts locked.
    let desk = DeskProcess::start_file(&v, &file, &home, &[]);
    let session = Session::start(&desk).await;
    let home_page = session.get(&desk.at("/")).await;
    assert_eq!(home_page.status(), 303);
    assert!(home_page.headers()["location"].to_str().unwrap().ends_with("/unlock"));
    let inbox = session.get(&desk.at("/inbox")).await;
    assert!(
        inbox.headers()["location"].to_str().unwrap().ends_with("/unlock"),
        "nothing of the vault before the unlock"
    );
    let form = session.get(&desk.at("/unlock")).await.text().await.unwrap();
    assert!(form.contains("type=\"password\""), "{form}");

    let wrong = session
        .post(&desk.at("/unlock"), &desk.origin, &[("passphrase", "wrong")])
        .await;
    assert!(wrong.headers()["location"].to_str().unwrap().ends_with("/unlock"));
    let again = session.get(&desk.at("/unlock")).await.text().await.unwrap();
    assert!(again.contains("role=\"alert\""), "the failure is said: {again}");
    assert_eq!(session.get(&desk.at("/inbox")).await.status(), 303, "still locked");

    let right = session
        .post(
            &desk.at("/unlock"),
            &desk.origin,
            &[("passphrase", "correct horse battery staple")],
        )
        .await;
    assert!(right.headers()["location"].to_str().unwrap().ends_with('/'));
    let inbox = session.get(&desk.at("/inbox")).await;
    assert_eq!(inbox.status(), 200);
    let page = inbox.text().await.unwrap();
    assert!(
        page.contains(v.lawyer.key_id().as_str()),
        "the desk names who is signed in"
    );
}

/// The addresses of a case's files on its page, by file name, and each
/// file's object id (files that are not previewed have no address).
fn file_urls(page: &str) -> Vec<(String, String, Option<String>)> {
    page.split("<li class=\"file\"")
        .skip(1)
        .map(|item| {
            let attr = |a: &str| item.split(a).nth(1).unwrap().split('"').next().unwrap().to_owned();
            let url = item
                .split("class=\"open\" href=\"")
                .nth(1)
                .map(|u| u.split('"').next().unwrap().replace("&amp;", "&"));
            (attr("data-name=\""), attr("data-object=\""), url)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_answer_ranges_from_their_own_origin_and_only_safe_kinds_inline() {
    let v = TestVault::start().await;
    let video = crate::util::bytes(7, 3 * 1024 * 1024 + 123);
    let page_html = b"<html><script>alert(1)</script></html>".to_vec();
    let submitted = v
        .submit(b"statement", &[("clip.webm", video.clone()), ("page.html", page_html)])
        .await;
    let home = v.tmp.path().join("desk-home");
    let desk = DeskProcess::start(&v, &v.lawyer, &home);
    let session = Session::start(&desk).await;
    let page = session.get(&desk.at(&format!("/cases/{}", submitted.case_id))).await;
    // The scratch folder, where fetched ciphertext waits (and an auditor's
    // bundles are unpacked), is its owner's alone, whatever the umask.
    let scratch: Vec<_> = std::fs::read_dir(home.join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("custos-desk-"))
        .collect();
    assert_eq!(scratch.len(), 1, "{scratch:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&scratch[0]).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(page.status(), 200);
    let urls = file_urls(&page.text().await.unwrap());
    let file = |name: &str| {
        urls.iter()
            .find(|(n, _, _)| n == name)
            .unwrap_or_else(|| panic!("{name} in {urls:?}"))
            .clone()
    };
    let url = |name: &str| file(name).2.unwrap_or_else(|| panic!("{name} has no address"));

    // The video: whole, and in ranges, each exactly those bytes of the
    // plaintext, from the files' own origin.
    let clip = url("clip.webm");
    assert!(!clip.starts_with(&desk.origin), "{clip}");
    let whole = session.get(&clip).await;
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["content-type"], "video/webm");
    assert!(whole.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("sandbox"));
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    assert_eq!(whole.bytes().await.unwrap().to_vec(), video);
    let total = video.len();
    for (range, from, to) in [
        ("bytes=0-99", 0, 99),
        ("bytes=2000000-2100000", 2_000_000, 2_100_000),
        (&format!("bytes={}-", total - 10) as &str, total - 10, total - 1),
        ("bytes=-7", total - 7, total - 1),
    ] {
        let resp = session
            .http
            .get(&clip)
            .header("cookie", &session.cookie)
            .header("range", range)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 206, "{range}");
        assert_eq!(
            resp.headers()["content-range"].to_str().unwrap(),
            format!("bytes {from}-{to}/{total}"),
            "{range}"
        );
        assert_eq!(
            resp.bytes().await.unwrap().to_vec(),
            video[from..=to].to_vec(),
            "{range}"
        );
    }

    // A range outside the file is 416, saying the length; several ranges
    // get the whole file.
    let get_range = |range: &'static str| {
        session
            .http
            .get(&clip)
            .header("cookie", &session.cookie)
            .header("range", range)
            .send()
    };
    let outside = get_range("bytes=999999999-").await.unwrap();
    assert_eq!(outside.status(), 416);
    assert_eq!(
        outside.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{total}")
    );
    let several = get_range("bytes=0-1,5-6").await.unwrap();
    assert_eq!(several.status(), 200);
    assert_eq!(several.bytes().await.unwrap().len(), total);

    // A page attached as evidence is never a page, nor a browser download
    // (which would land in the browser's folder, readable by others): it
    // has no address, and the files' origin will not serve it.
    let (_, object, address) = file("page.html");
    assert_eq!(address, None, "no link to it");
    let asked = clip.replace(&file("clip.webm").1, &object);
    let html = session.get(&asked).await;
    assert_eq!(html.status(), 404);
    let body = html.text().await.unwrap();
    assert!(!body.contains("<script>alert"), "{body}");
}
