//! Which webhook destinations a subscription may name: the operator's
//! allowlist (`[subscriptions] allow`), host names compared exactly and IP
//! literals against CIDR blocks. A subscription's `dest` comes from a
//! member's request (untrusted); nothing outside the list is ever called,
//! so a member cannot point the node at its own loopback services, its
//! cloud metadata address or anyone's internal network. Loopback is
//! refused unless a listed block covers it (tests list `127.0.0.1/32`).
//!
//! Host names are not resolved here: a listed name is trusted to resolve
//! where its operator meant. Redirects are never followed (`push`), so an
//! allowed destination cannot bounce a delivery elsewhere.

use std::net::IpAddr;

/// One allowlist entry: a host name, or an address block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// Lower-case host name, matched exactly.
    Host(String),
    /// `address/prefix` (an address alone is a /32 or /128).
    Block { network: IpAddr, prefix: u8 },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AllowError {
    #[error("{0:?} is not a host name, an IP address or a CIDR block")]
    Malformed(String),
    #[error("{entry:?}: a prefix of {prefix} is longer than the address")]
    Prefix { entry: String, prefix: u8 },
}

/// Why a destination is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{0:?} is not an absolute http or https URL")]
    NotHttp(String),
    #[error("{0:?} carries credentials; put a secret in signatureToken instead")]
    Credentials(String),
    #[error("host {0:?} is not on this node's subscription allowlist")]
    NotAllowed(String),
}

impl Allowed {
    pub fn parse(entry: &str) -> Result<Allowed, AllowError> {
        let entry = entry.trim();
        let malformed = || AllowError::Malformed(entry.to_owned());
        if let Some((address, prefix)) = entry.split_once('/') {
            let network: IpAddr = address.parse().map_err(|_| malformed())?;
            let prefix: u8 = prefix.parse().map_err(|_| malformed())?;
            let bits = if network.is_ipv4() { 32 } else { 128 };
            if prefix > bits {
                return Err(AllowError::Prefix {
                    entry: entry.to_owned(),
                    prefix,
                });
            }
            return Ok(Allowed::Block { network, prefix });
        }
        if let Ok(network) = entry.parse::<IpAddr>() {
            let prefix = if network.is_ipv4() { 32 } else { 128 };
            return Ok(Allowed::Block { network, prefix });
        }
        let host = entry.to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
            return Err(malformed());
        }
        Ok(Allowed::Host(host))
    }

    fn covers_ip(&self, ip: IpAddr) -> bool {
        let Allowed::Block { network, prefix } = self else {
            return false;
        };
        match (network, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                same_prefix(&n.octets(), &a.octets(), usize::from(*prefix))
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                same_prefix(&n.octets(), &a.octets(), usize::from(*prefix))
            }
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], bits: usize) -> bool {
    let whole = bits / 8;
    if a[..whole] != b[..whole] {
        return false;
    }
    let rest = bits % 8;
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    a[whole] & mask == b[whole] & mask
}

/// The operator's allowlist; empty allows nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist(pub Vec<Allowed>);

impl Allowlist {
    pub fn parse(entries: &[String]) -> Result<Allowlist, AllowError> {
        entries
            .iter()
            .map(|e| Allowed::parse(e))
            .collect::<Result<_, _>>()
            .map(Allowlist)
    }

    /// The URL if the node may call it.
    pub fn check(&self, dest: &str) -> Result<reqwest::Url, Refused> {
        let url = reqwest::Url::parse(dest).map_err(|_| Refused::NotHttp(excerpt(dest)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Refused::NotHttp(excerpt(dest)));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Refused::Credentials(excerpt(dest)));
        }
        let Some(host) = url.host_str() else {
            return Err(Refused::NotHttp(excerpt(dest)));
        };
        // The URL parser has already turned every spelling of an IPv4
        // address (`2130706433`, `0x7f.1`) into dotted form.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let allowed = match bare.parse::<IpAddr>() {
            Ok(ip) => self.0.iter().any(|a| a.covers_ip(ip)),
            Err(_) => {
                let name = bare.trim_end_matches('.').to_ascii_lowercase();
                self.0.iter().any(|a| *a == Allowed::Host(name.clone()))
            }
        };
        if allowed {
            Ok(url)
        } else {
            Err(Refused::NotAllowed(
                url.host_str().map(excerpt).unwrap_or_default(),
            ))
        }
    }
}

fn excerpt(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> Allowlist {
        Allowlist::parse(&entries.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn names_match_exactly_and_blocks_by_prefix() {
        let allow = list(&["hooks.example.com", "10.1.0.0/16", "2001:db8::/32"]);
        assert!(allow.check("https://hooks.example.com/x").is_ok());
        assert!(allow.check("https://HOOKS.example.com./x").is_ok());
        assert!(allow.check("https://evil.hooks.example.com/x").is_err());
        assert!(allow.check("http://10.1.255.3:8080/x").is_ok());
        assert!(allow.check("http://10.2.0.1/x").is_err());
        assert!(allow.check("http://[2001:db8::1]/x").is_ok());
        assert!(allow.check("http://[2001:db9::1]/x").is_err());
    }

    #[test]
    fn loopback_metadata_and_odd_urls_are_refused_unless_listed() {
        let allow = list(&["hooks.example.com"]);
        for dest in [
            "http://127.0.0.1/x",
            "http://localhost/x",
            "http://[::1]/x",
            "http://169.254.169.254/latest",
            "http://2130706433/x",
            "http://0x7f.1/x",
        ] {
            assert!(
                matches!(allow.check(dest), Err(Refused::NotAllowed(_))),
                "{dest}"
            );
        }
        assert!(matches!(
            allow.check("ftp://hooks.example.com/x"),
            Err(Refused::NotHttp(_))
        ));
        assert!(matches!(
            allow.check("https://u:p@hooks.example.com/x"),
            Err(Refused::Credentials(_))
        ));
        assert!(matches!(allow.check("not a url"), Err(Refused::NotHttp(_))));
        assert!(list(&[]).check("https://hooks.example.com/").is_err());
        assert!(
            list(&["127.0.0.1/32"])
                .check("http://127.0.0.1:9/x")
                .is_ok()
        );
    }

    #[test]
    fn bad_entries_are_named() {
        assert!(Allowed::parse("10.0.0.0/33").is_err());
        assert!(Allowed::parse("::/129").is_err());
        assert!(Allowed::parse("a b").is_err());
        assert!(Allowed::parse("").is_err());
        assert_eq!(
            Allowed::parse("0.0.0.0/0").unwrap(),
            Allowed::Block {
                network: "0.0.0.0".parse().unwrap(),
                prefix: 0
            }
        );
    }
}
