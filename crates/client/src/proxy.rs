//! Reaching a vault through a proxy (Tor's SOCKS port, above all), and
//! refusing to reach an onion address without one. Pure checks on the
//! URLs a caller gives; the client builds its connections from them.

use crate::ClientError;

/// The proxies a client may use, and why only these:
/// - `socks5h://HOST:PORT`: the proxy resolves names, so a vault's name
///   (an onion address above all) never reaches the local resolver.
///   Tor's SOCKS port (`127.0.0.1:9050`, Tor Browser's `:9150`). A user
///   name and password in the URL put this program's streams on their
///   own Tor circuit (Tor's `IsolateSOCKSAuth`).
/// - `http://` or `https://`: an HTTP proxy, which is handed the name
///   too (CONNECT), such as Tor's `HTTPTunnelPort`.
///
/// `socks5://` (and SOCKS4) resolve names on this machine first, so the
/// name of every vault contacted would leave through the ordinary
/// resolver: refused, with the spelling to use instead.
pub fn checked(proxy: &str) -> Result<reqwest::Url, ClientError> {
    let url = reqwest::Url::parse(proxy).map_err(|_| bad(proxy, "not a URL"))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad(proxy, "it names no host"));
    }
    // reqwest hands the proxy on as an `http::Uri`, and drops one that does
    // not parse as such without a word, connecting directly: a host with
    // characters `url` takes but `http` does not (braces, a Cyrillic letter
    // in a SOCKS host) would send everything around the proxy.
    let host_ok = url
        .host_str()
        .is_some_and(|h| h.bytes().all(|b| b.is_ascii_alphanumeric() || b".-_:[]".contains(&b)));
    if !host_ok || url.as_str().parse::<http::Uri>().is_err() {
        return Err(bad(proxy, "its host is not a plain name or address"));
    }
    match url.scheme() {
        "socks5h" | "http" | "https" => Ok(url),
        "socks5" | "socks4" | "socks4a" => Err(bad(
            proxy,
            "it would look names up on this machine, which leaks the vault's name; use socks5h:// (the proxy resolves names)",
        )),
        _ => Err(bad(proxy, "use socks5h://HOST:PORT (Tor: socks5h://127.0.0.1:9050) or http://HOST:PORT")),
    }
}

fn bad(proxy: &str, why: &str) -> ClientError {
    // The URL may hold a password: say only its scheme and host.
    let shown = reqwest::Url::parse(proxy)
        .ok()
        .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or("")))
        .unwrap_or_else(|| "the proxy".to_owned());
    ClientError::Usage(format!("cannot use {shown} as a proxy: {why}"))
}

/// Whether `base` names an onion service (`*.onion`, any case, with or
/// without the final dot).
pub fn is_onion(base: &str) -> bool {
    reqwest::Url::parse(base)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_end_matches('.').to_ascii_lowercase()))
        .is_some_and(|h| h.ends_with(".onion"))
}

/// The refusal of an onion address without a proxy, saying how to set one.
pub fn onion_needs_proxy(base: &str) -> ClientError {
    ClientError::Usage(format!(
        "{base} is an onion address, reachable only through Tor: set a proxy with --proxy or CUSTOS_PROXY, \
         socks5h://127.0.0.1:9050 for Tor, socks5h://127.0.0.1:9150 for a running Tor Browser"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Client;

    #[test]
    fn only_proxies_that_resolve_names_themselves_are_taken() {
        for good in [
            "socks5h://127.0.0.1:9050",
            "http://127.0.0.1:8118",
            "socks5h://u:p@[::1]:9150",
        ] {
            assert!(checked(good).is_ok(), "{good}");
        }
        for bad in [
            "socks5://127.0.0.1:9050",
            "socks4a://127.0.0.1:9050",
            "ftp://x",
            "127.0.0.1:9050",
            "socks5h://",
            "socks5h://tor{proxy:9050",
            "socks5h://pr\u{43e}xy:9050",
        ] {
            assert!(checked(bad).is_err(), "{bad}");
        }
        let said = checked("socks5://user:secret@127.0.0.1:9050").unwrap_err().to_string();
        assert!(said.contains("socks5h://") && !said.contains("secret"), "{said}");
    }

    #[test]
    fn onion_addresses_are_known_in_any_spelling() {
        let onion = "http://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion";
        for base in [onion.to_owned(), onion.to_uppercase(), format!("{onion}.:8080/")] {
            assert!(is_onion(&base), "{base}");
        }
        for base in [
            "http://vault.example.org",
            "http://onion.example",
            "http://127.0.0.1:8630",
            "not a url",
        ] {
            assert!(!is_onion(base), "{base}");
        }
        let refused = Client::new(onion).unwrap_err().to_string();
        assert!(refused.contains("socks5h://127.0.0.1:9050"), "{refused}");
        assert!(Client::through(onion, Some("socks5h://127.0.0.1:9050")).is_ok());
    }
}
