//! Dashboard sessions: a login turns an API bearer token into a session
//! cookie, so a browser can use the dashboard without handling the token.
//!
//! - The cookie (`lotline_session`) holds 32 random bytes; the node keeps
//!   the caller it stands for in memory, for [`SESSION_TTL`]. It is
//!   `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's
//!   page sends it) and `Secure` when the node serves TLS.
//! - Every form post carries a CSRF token that is checked in constant
//!   time: a session's own random token once logged in; before login, an
//!   HMAC of a random nonce held in a `lotline_login` cookie under a key
//!   the node draws at start (so a page from elsewhere can not log a
//!   browser in with the attacker's token).
//! - The session cookie authenticates safe methods (GET, HEAD) on every
//!   route, and posts only on the dashboard's own forms, which check the
//!   CSRF token ([`applies`]). API clients keep using bearer tokens.
//!
//! Sessions do not survive a restart (the user logs in again) and are
//! bounded in number ([`SESSIONS_MAX`]); the oldest goes first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, header};
use hmac::{Hmac, KeyInit, Mac};
use rand_core::RngCore;
use subtle::ConstantTimeEq;

use crate::access::Caller;

type HmacSha256 = Hmac<sha2_hmac::Sha256>;

pub const SESSION_COOKIE: &str = "lotline_session";
pub const LOGIN_COOKIE: &str = "lotline_login";
/// How long a session lasts after login.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);
/// Most sessions held at once.
pub const SESSIONS_MAX: usize = 10_000;

#[derive(Clone, Debug)]
struct Session {
    caller: Caller,
    csrf: String,
    expires: Instant,
    created: Instant,
}

/// The sessions of one node.
pub struct Sessions {
    key: [u8; 32],
    secure: bool,
    held: Mutex<HashMap<String, Session>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

/// A session as a handler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Current {
    pub id: String,
    pub csrf: String,
    pub caller: Caller,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Constant-time comparison of two tokens.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// `secure`: the node serves TLS, so cookies are marked `Secure`.
    pub fn new(secure: bool) -> Sessions {
        let mut key = [0u8; 32];
        rand_core::OsRng.fill_bytes(&mut key);
        Sessions {
            key,
            secure,
            held: Mutex::new(HashMap::new()),
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        // A panic while holding the lock leaves a plain map; keep using it.
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a session for `caller`; returns it (its id goes in the cookie).
    pub fn start(&self, caller: Caller) -> Current {
        let now = Instant::now();
        let mut held = self.held();
        held.retain(|_, s| s.expires > now);
        if held.len() >= SESSIONS_MAX
            && let Some(oldest) = held
                .iter()
                .min_by_key(|(_, s)| s.created)
                .map(|(id, _)| id.clone())
        {
            held.remove(&oldest);
        }
        let current = Current {
            id: random_hex(),
            csrf: random_hex(),
            caller: caller.clone(),
        };
        held.insert(
            current.id.clone(),
            Session {
                caller,
                csrf: current.csrf.clone(),
                expires: now + SESSION_TTL,
                created: now,
            },
        );
        current
    }

    /// The live session named by the request's cookie, if any.
    pub fn current(&self, headers: &HeaderMap) -> Option<Current> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let held = self.held();
        let session = held.get(id)?;
        (session.expires > Instant::now()).then(|| Current {
            id: id.to_owned(),
            csrf: session.csrf.clone(),
            caller: session.caller.clone(),
        })
    }

    pub fn end(&self, id: &str) {
        self.held().remove(id);
    }

    /// A fresh login nonce and the CSRF token the login form carries for it.
    pub fn login_challenge(&self) -> (String, String) {
        let nonce = random_hex();
        let token = self.login_token(&nonce);
        (nonce, token)
    }

    fn login_token(&self, nonce: &str) -> String {
        // HMAC takes a key of any length; this cannot fail.
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(e) => panic!("HMAC refused a key: {e}"),
        };
        mac.update(b"lotline dashboard login\0");
        mac.update(nonce.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// True if the login form's token matches the request's login cookie.
    pub fn login_token_ok(&self, headers: &HeaderMap, token: &str) -> bool {
        cookie(headers, LOGIN_COOKIE).is_some_and(|nonce| same(&self.login_token(nonce), token))
    }

    /// `Set-Cookie` for a session (or, with `None`, one that clears it).
    pub fn session_cookie(&self, id: Option<&str>) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        match id {
            Some(id) => format!(
                "{SESSION_COOKIE}={id}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
                SESSION_TTL.as_secs()
            ),
            None => {
                format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict{secure}")
            }
        }
    }

    /// `Set-Cookie` for a login nonce (ten minutes to fill the form).
    pub fn login_cookie(&self, nonce: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!(
            "{LOGIN_COOKIE}={nonce}; Path=/dashboard; Max-Age=600; HttpOnly; SameSite=Strict{secure}"
        )
    }
}

/// Whether a session cookie may authenticate this request: safe methods
/// anywhere, posts only to the dashboard (whose handlers check the CSRF
/// token). Everything else ignores the cookie.
pub fn applies(method: &Method, path: &str) -> bool {
    method == Method::GET || method == Method::HEAD || path.starts_with("/dashboard/")
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            org: "supplier".into(),
            role: lotline_genesis::Role::Supplier,
            credential: "c1".into(),
            operator: false,
        }
    }

    #[test]
    fn a_session_is_found_by_its_cookie_and_ends_on_logout() {
        let sessions = Sessions::new(true);
        let current = sessions.start(caller());
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("a=b; {SESSION_COOKIE}={}", current.id)
                .parse()
                .unwrap(),
        );
        assert_eq!(sessions.current(&headers), Some(current.clone()));
        let set = sessions.session_cookie(Some(&current.id));
        for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(set.contains(attribute), "{set}");
        }
        sessions.end(&current.id);
        assert_eq!(sessions.current(&headers), None);
    }

    #[test]
    fn login_tokens_are_bound_to_their_nonce() {
        let sessions = Sessions::new(false);
        let (nonce, token) = sessions.login_challenge();
        let (_, other) = sessions.login_challenge();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            format!("{LOGIN_COOKIE}={nonce}").parse().unwrap(),
        );
        assert!(sessions.login_token_ok(&headers, &token));
        assert!(!sessions.login_token_ok(&headers, &other));
        assert!(!sessions.login_token_ok(&HeaderMap::new(), &token));
        assert!(!Sessions::new(false).login_token_ok(&headers, &token));
    }

    #[test]
    fn cookies_authenticate_safe_methods_and_dashboard_posts_only() {
        assert!(applies(&Method::GET, "/v1/attestations/x"));
        assert!(applies(&Method::POST, "/dashboard/root-cause"));
        assert!(!applies(&Method::POST, "/v1/root-cause"));
        assert!(!applies(&Method::POST, "/v1/attestations"));
    }
}
