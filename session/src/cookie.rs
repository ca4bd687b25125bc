//! The session cookie: finding the ids a request presents, and building the
//! `Set-Cookie` a response carries.
//!
//! Values pass through [`encode_value`] and [`decode_value`], which sign or
//! encrypt them with the `cookie` crate's primitives when the configuration
//! says so ([`Protection`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use cookie::{Cookie, CookieJar, Key};

use crate::config::SessionConfig;
use crate::error::Error;
use crate::event::InvalidCookie;
use crate::id::SessionId;

/// At most this many cookies of the session's name are tried per request.
/// Browsers send several when an old path or a sibling subdomain left one
/// behind; more than a handful is an attack, not a browser.
pub(crate) const MAX_PRESENTED: usize = 4;

/// The values of the cookies named `name` in a request's `Cookie` header
/// lines, in the order the browser sent them, at most [`MAX_PRESENTED`].
///
/// Headers are read as bytes: a neighbour cookie with bytes outside ASCII
/// (another application's, on the same host) does not hide the session.
pub(crate) fn presented<'a>(
    name: &str,
    cookie_headers: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<String> {
    cookie_headers
        .into_iter()
        .flat_map(|header| header.split(|&byte| byte == b';'))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&byte| byte == b'=')?;
            let (found, value) = (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii());
            (found == name.as_bytes()).then_some(value)
        })
        .filter_map(|value| {
            let value = value
                .strip_prefix(b"\"")
                .and_then(|value| value.strip_suffix(b"\""))
                .unwrap_or(value);
            std::str::from_utf8(value).ok().map(str::to_owned)
        })
        .take(MAX_PRESENTED)
        .collect()
}

/// The ids presented in the header lines of an id header (`id_header`): each
/// line's comma-separated values, in order, at most [`MAX_PRESENTED`].
pub(crate) fn presented_in_header<'a>(lines: impl IntoIterator<Item = &'a [u8]>) -> Vec<String> {
    lines
        .into_iter()
        .flat_map(|line| line.split(|&byte| byte == b','))
        .map(<[u8]>::trim_ascii)
        .filter(|value| !value.is_empty())
        .filter_map(|value| std::str::from_utf8(value).ok().map(str::to_owned))
        .take(MAX_PRESENTED)
        .collect()
}

/// How the session cookie's value is protected. With keys, the first signs
/// or encrypts and every one verifies or decrypts, so that keys rotate
/// without logging anyone out: add the new key first, and drop the old one
/// once the cookies it made have expired.
#[derive(Clone, Default)]
pub(crate) enum Protection {
    /// The value is the session id. The id is unguessable, so this is safe;
    /// signing adds a check before the store is asked.
    #[default]
    Plain,
    /// The value is the id with an HMAC-SHA256 signature.
    Signed(Arc<[Key]>),
    /// The value is the id encrypted and authenticated (AES-256-GCM), bound
    /// to the cookie's name.
    Private(Arc<[Key]>),
    /// Keys were given but refused: `validate` reports why.
    Refused(&'static str),
}

impl Protection {
    /// `protect` over `keys`, or why they are refused.
    pub(crate) fn with_keys<K: AsRef<[u8]>>(
        keys: impl IntoIterator<Item = K>,
        protect: fn(Arc<[Key]>) -> Self,
    ) -> Self {
        let keys: Result<Arc<[Key]>, _> = keys
            .into_iter()
            .map(|key| Key::try_from(key.as_ref()))
            .collect();
        match keys {
            Ok(keys) if keys.is_empty() => Self::Refused("give at least one key"),
            Ok(keys) => protect(keys),
            Err(_) => Self::Refused(
                "every key must hold at least 64 bytes of random data \
                 (`openssl rand -base64 64` makes one)",
            ),
        }
    }
}

impl fmt::Debug for Protection {
    /// Names the protection and counts the keys, never showing them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Plain => f.write_str("Plain"),
            Self::Signed(keys) => write!(f, "Signed({} keys)", keys.len()),
            Self::Private(keys) => write!(f, "Private({} keys)", keys.len()),
            Self::Refused(reason) => write!(f, "Refused({reason:?})"),
        }
    }
}

/// A presented cookie value that names a session.
#[derive(Debug)]
pub(crate) struct Presented {
    pub(crate) id: SessionId,
    /// Verified with a key other than the first: the response should carry
    /// the cookie made with the current key.
    pub(crate) old_key: bool,
}

/// The session id a presented cookie value carries, verified or decrypted
/// with the configured keys.
pub(crate) fn decode_value(
    config: &SessionConfig,
    value: &str,
) -> Result<Presented, InvalidCookie> {
    let (plain, old_key) = open(config, value)?;
    SessionId::parse(&plain)
        .map(|id| Presented { id, old_key })
        .ok_or(InvalidCookie::MalformedId)
}

/// What a presented cookie value says once verified or decrypted with the
/// configured keys, and whether that took a key other than the first.
pub(crate) fn open<'v>(
    config: &SessionConfig,
    value: &'v str,
) -> Result<(Cow<'v, str>, bool), InvalidCookie> {
    let keys = match &config.protection {
        Protection::Plain | Protection::Refused(_) => return Ok((Cow::Borrowed(value), false)),
        Protection::Signed(keys) | Protection::Private(keys) => keys,
    };
    let name = &config.cookie_name;
    let mut jar = CookieJar::new();
    jar.add_original(Cookie::new(name.clone(), value.to_owned()));
    for (index, key) in keys.iter().enumerate() {
        let opened = match &config.protection {
            Protection::Private(_) => jar.private(key).get(name),
            _ => jar.signed(key).get(name),
        };
        if let Some(cookie) = opened {
            return Ok((Cow::Owned(cookie.value().to_owned()), index > 0));
        }
    }
    Err(InvalidCookie::BadSignature)
}

/// The cookie value that carries `id`, signed or encrypted with the first key.
pub(crate) fn encode_value(config: &SessionConfig, id: &SessionId) -> String {
    protect(config, id.as_str().to_owned())
}

/// `plain` signed or encrypted with the first configured key, as
/// [`open`] reads it back.
pub(crate) fn protect(config: &SessionConfig, plain: String) -> String {
    let keys = match &config.protection {
        Protection::Signed(keys) | Protection::Private(keys) => keys,
        Protection::Plain | Protection::Refused(_) => return plain,
    };
    let cookie = Cookie::new(config.cookie_name.clone(), plain);
    let mut jar = CookieJar::new();
    match &config.protection {
        Protection::Private(_) => jar.private_mut(&keys[0]).add(cookie),
        _ => jar.signed_mut(&keys[0]).add(cookie),
    }
    jar.get(&config.cookie_name)
        .map(|cookie| cookie.value().to_owned())
        .unwrap_or_default()
}

/// The cookie that hands a session to the client (`value`: its protected id,
/// or a whole sealed cookie-only session), for a session with `ttl` left;
/// `None` makes it a browser-session cookie.
pub(crate) fn session_cookie(
    config: &SessionConfig,
    value: String,
    ttl: Option<Duration>,
) -> Cookie<'static> {
    let mut cookie = base_cookie(config, value);
    if let Some(ttl) = ttl {
        // Whole seconds, as `Max-Age` counts them; a store's clock may leave
        // a remainder. A live session never gets `Max-Age=0`, which makes
        // the browser drop the cookie at once.
        let rounded = ttl.as_secs() + u64::from(ttl.subsec_millis() >= 500);
        let seconds = if ttl.is_zero() { 0 } else { rounded.max(1) };
        let ttl = cookie::time::Duration::try_from(Duration::from_secs(seconds))
            .unwrap_or(cookie::time::Duration::MAX);
        // `Max-Age` only: it overrides `Expires` (RFC 6265, 5.3) in every
        // browser since IE 8, and formatting the date cost a tenth of a
        // request's session work.
        cookie.set_max_age(ttl);
    }
    cookie
}

/// The cookie that makes the client forget its session.
pub(crate) fn removal_cookie(config: &SessionConfig) -> Cookie<'static> {
    let mut cookie = base_cookie(config, String::new());
    cookie.make_removal();
    cookie
}

fn base_cookie(config: &SessionConfig, value: String) -> Cookie<'static> {
    let mut cookie = Cookie::new(config.cookie_name.clone(), value);
    cookie.set_path(config.path.clone());
    if let Some(domain) = &config.domain {
        cookie.set_domain(domain.clone());
    }
    cookie.set_secure(config.secure);
    cookie.set_http_only(config.http_only);
    cookie.set_same_site(config.same_site);
    cookie.set_partitioned(config.partitioned);
    cookie
}

/// Refuses cookie options that would make a broken or injected `Set-Cookie`.
pub(crate) fn validate(config: &SessionConfig) -> Result<(), Error> {
    let invalid = |option, reason| Err(Error::InvalidConfig { option, reason });
    let name = config.cookie_name.as_bytes();
    if name.is_empty() || !name.iter().all(|&byte| is_token(byte)) {
        return invalid(
            "cookie_name",
            "must be a non-empty token: visible ASCII without spaces or ()<>@,;:\\\"/[]?={}",
        );
    }
    let path = config.path.as_bytes();
    if path.first() != Some(&b'/') || !path.iter().all(|&byte| is_attribute_value(byte)) {
        return invalid(
            "path",
            "must start with `/` and hold no `;`, spaces or control characters",
        );
    }
    if let Some(domain) = &config.domain {
        let valid = |byte: u8| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'-');
        if domain.is_empty() || !domain.bytes().all(valid) {
            return invalid(
                "domain",
                "must be a host name: ASCII letters, digits, `.` and `-`",
            );
        }
    }
    // The prefixes' rules, which browsers enforce by dropping the cookie.
    let name = &config.cookie_name;
    if name.starts_with("__Host-")
        && !(config.secure && config.path == "/" && config.domain.is_none())
    {
        return invalid(
            "cookie_name",
            "a `__Host-` cookie must be `Secure`, on path `/` and without a domain",
        );
    }
    if name.starts_with("__Secure-") && !config.secure {
        return invalid("cookie_name", "a `__Secure-` cookie must be `Secure`");
    }
    if config.partitioned && !config.secure {
        return invalid("partitioned", "a `Partitioned` cookie must be `Secure`");
    }
    if config.same_site == cookie::SameSite::None && !config.secure {
        return invalid("same_site", "a `SameSite=None` cookie must be `Secure`");
    }
    if let Some(header) = &config.id_header {
        let reserved = ["cookie", "set-cookie"].contains(&header.as_str());
        if header.is_empty() || reserved || !header.bytes().all(is_token) {
            return invalid(
                "id_header",
                "must be a header name (a token) other than `Cookie` and `Set-Cookie`",
            );
        }
    }
    if let Protection::Refused(reason) = config.protection {
        return invalid("keys", reason);
    }
    Ok(())
}

/// RFC 6265's `token`: a cookie name.
fn is_token(byte: u8) -> bool {
    byte.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&byte)
}

/// A byte an attribute value may hold without ending it or the header.
fn is_attribute_value(byte: u8) -> bool {
    byte.is_ascii_graphic() && byte != b';'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(headers: &[&[u8]]) -> Vec<String> {
        presented("session", headers.iter().copied())
    }

    #[test]
    fn finds_the_session_among_other_cookies() {
        assert_eq!(ids(&[b"a=1; session=abc; b=2"]), ["abc"]);
        assert_eq!(ids(&[b"session=\"abc\""]), ["abc"]);
        assert!(ids(&[b"sessions=abc; xsession=1"]).is_empty());
    }

    #[test]
    fn a_neighbour_outside_ascii_does_not_hide_the_session() {
        assert_eq!(
            ids(&["caf\u{e9}=cr\u{e8}me; session=abc".as_bytes()]),
            ["abc"]
        );
        assert_eq!(ids(&[b"x=\xff\xfe; session=abc"]), ["abc"]);
    }

    #[test]
    fn reads_every_header_line_in_order_and_keeps_a_bounded_number() {
        assert_eq!(
            ids(&[b"session=old", b"theme=dark; session=new"]),
            ["old", "new"]
        );
        let many = "session=x; ".repeat(100);
        assert_eq!(ids(&[many.as_bytes()]).len(), MAX_PRESENTED);
    }

    mod properties {
        use proptest::collection::vec;
        use proptest::prelude::*;

        use super::*;

        const KEY: [u8; 64] = [7; 64];

        proptest! {
            /// Whatever the header lines, a bounded number of values, each
            /// taken from the lines.
            #[test]
            fn any_cookie_header_yields_a_bounded_number_of_its_values(
                lines in vec(vec(any::<u8>(), 0..300), 0..6),
            ) {
                let found = presented("session", lines.iter().map(Vec::as_slice));
                prop_assert!(found.len() <= MAX_PRESENTED);
                for value in &found {
                    let in_a_line = value.is_empty()
                        || lines.iter().any(|line| {
                            line.windows(value.len()).any(|part| part == value.as_bytes())
                        });
                    prop_assert!(in_a_line, "{:?} is in no line", value);
                }
                let ids = presented_in_header(lines.iter().map(Vec::as_slice));
                prop_assert!(ids.len() <= MAX_PRESENTED);
            }

            /// The session's cookie is found among any neighbours.
            #[test]
            fn the_session_cookie_is_found_among_any_neighbours(
                before in "[a-z]{1,8}=[^;\"]{0,20}",
                value in "[A-Za-z0-9_-]{1,43}",
            ) {
                prop_assume!(!before.starts_with("session="));
                let header = format!("{before}; session={value}; after=1");
                prop_assert_eq!(presented("session", [header.as_bytes()]), [value]);
            }

            /// Garbage never opens as a signed or private cookie, and what
            /// was protected opens as it was.
            #[test]
            fn garbage_never_opens_and_protected_values_do(
                garbage in ".{0,300}",
                plain in "[ -~]{0,200}",
            ) {
                for config in [
                    SessionConfig::default().signed([KEY]),
                    SessionConfig::default().private([KEY]),
                ] {
                    prop_assert!(open(&config, &garbage).is_err());
                    let sealed = protect(&config, plain.clone());
                    let (opened, old_key) = open(&config, &sealed).unwrap();
                    prop_assert_eq!((&*opened, old_key), (plain.as_str(), false));
                }
            }
        }
    }
}
