//! Where a browser may be sent back to after signing in (`next` of the console's sign-in, the
//! authorization request the OAuth sign-in returns to): only a path of this site. Anything
//! else would make sign-in an open redirector, and a value that is not a valid `Location`
//! header must never reach one (axum's `Redirect` panics on it).
//!
//! Browsers drop tabs and line breaks from URLs and read `\` as `/`, so `/\t/evil.example` and
//! `/\evil.example` lead to `//evil.example`, another site. Hence: a leading `/`, never `//` or
//! `/\`, no backslash, no control or white-space character anywhere, and none in the path
//! once percent-decoded either (a later hop that decodes must not find one). The query may
//! carry encoded spaces (`%20`): that is data, not where the browser goes.

use axum::response::Redirect;
use percent_encoding::percent_decode_str;

/// Longest `next` kept: an authorization request's path and query (its query may be 8 KiB);
/// console URLs are far shorter.
const MAX_LEN: usize = 8 * 1024 + 64;

/// `next` when it is a path of this site that is safe to send a browser to.
pub fn checked(next: &str) -> Option<&str> {
    let path = next.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode_str(path).decode_utf8_lossy();
    (next.len() <= MAX_LEN && local(next) && local(&decoded)).then_some(next)
}

/// 303 to `next` when it passes [`checked`], to `fallback` otherwise.
pub fn back_to(next: &str, fallback: &'static str) -> Redirect {
    Redirect::to(checked(next).unwrap_or(fallback))
}

/// An absolute path without another authority and without characters browsers drop.
fn local(url: &str) -> bool {
    let mut chars = url.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/' | '\\'))
        && !url
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::checked;

    #[test]
    fn paths_of_this_site_pass() {
        for good in [
            "/",
            "/servers",
            "/servers/3f0c/usage?bucket=day&tool=a%20b",
            "/oauth/authorize?client_id=x&state=a%09b",
            "/servers/caf%C3%A9",
        ] {
            assert_eq!(checked(good), Some(good), "{good}");
        }
    }

    #[test]
    fn other_sites_and_what_browsers_rewrite_are_refused() {
        for bad in [
            "",
            "servers",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example",
            "/%09/evil.example",
            "/%0a/x",
            "/%0D%0A/x",
            "/%5C/evil.example",
            "/%2F/evil.example",
            "/ /evil.example",
            "/x\u{1}",
            "/x\n",
            "/x\u{85}",
            "/x\u{3000}y",
            "https://evil.example",
            "javascript:alert(1)",
        ] {
            assert_eq!(checked(bad), None, "{bad:?}");
        }
        assert_eq!(checked(&format!("/{}", "a".repeat(9000))), None);
    }
}
