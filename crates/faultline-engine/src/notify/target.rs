//! Status-page subscriber targets: which webhook endpoints Faultline will
//! post to on a stranger's say-so.
//!
//! Anyone may subscribe to the public status page (Statuspage semantics), so
//! a subscriber's endpoint must not turn Faultline into a proxy into its own
//! network (SSRF). Unless the operator allows private targets, an endpoint
//! is refused when its host is, or resolves to, a loopback, private
//! (RFC 1918, IPv6 unique local), shared (RFC 6598), link-local (cloud
//! metadata lives there), unspecified, multicast, broadcast or reserved
//! address, and only `http` and `https` are spoken.
//!
//! Checked twice: `check_url` when subscribing (the URL's host literal, and
//! `localhost` names; no DNS on the request path), and again at send time
//! (`Sender::post_to_subscriber`), where a host name is resolved and refused
//! if any of its addresses is blocked. The HTTP client used for subscribers
//! then resolves through `GuardedResolver`, which applies the same rule to
//! the addresses it actually connects to, so a name re-pointed between the
//! check and the connection (DNS rebinding) still reaches nothing private.
//! When the operator's proxy applies (`proxy`), the client connects to the
//! proxy, not the endpoint: the send-time check is then what guards the
//! endpoint, and the proxy's own names resolve unguarded (operator-trusted).
//!
//! Not here: configured channels (the operator's own URLs, trusted as is).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

/// Resolves a host name (and port) to addresses: the system resolver in
/// production (`system_lookup`), a fixed table in tests.
pub type Lookup = Arc<dyn Fn(String, u16) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send>> + Send + Sync>;

/// The operating system's resolver (`getaddrinfo` via tokio).
pub fn system_lookup() -> Lookup {
    Arc::new(|host: String, port: u16| Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) }))
}

/// The host of an endpoint, as its URL names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

/// A parsed endpoint: its host and port (the scheme's default if none).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: Host,
    pub port: u16,
}

/// Why an endpoint is refused. Never contains the URL (it may hold a token).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("is not a valid URL")]
    Invalid,
    #[error("must be an http or https URL")]
    NotHttp,
    #[error("has no host")]
    NoHost,
    #[error("points at a {0} address")]
    Blocked(&'static str),
    #[error("resolves to a {0} address")]
    ResolvesToBlocked(&'static str),
}

/// The kind of address `ip` is, if it is one a public subscriber may not
/// make us post to; `None` for a public unicast address.
pub fn blocked_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => blocked_v6(v6),
    }
}

fn blocked_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "unspecified",
        (127, _, _) => "loopback",
        (10, _, _) | (192, 168, _) => "private",
        (172, 16..=31, _) => "private",
        (100, 64..=127, _) => "shared (carrier-grade NAT)",
        (169, 254, _) => "link-local",
        (192, 0, 0) | (198, 18..=19, _) => "reserved",
        (224..=239, _, _) => "multicast",
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => "broadcast",
        (240..=255, _, _) => "reserved",
        _ => return None,
    })
}

fn blocked_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    let s = ip.segments();
    // IPv4 inside IPv6: mapped (::ffff:a.b.c.d), compatible (::a.b.c.d),
    // NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::) reach that IPv4 address.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return blocked_v4(v4);
    }
    if s[..6] == [0; 6] || (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4]) {
        return blocked_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return blocked_v4(embedded(s[1], s[2]));
    }
    match s[0] {
        0xfc00..=0xfdff => Some("private (unique local)"),
        0xfe80..=0xfebf => Some("link-local"),
        0xfec0..=0xfeff => Some("private (site-local)"),
        0xff00..=0xffff => Some("multicast"),
        0x0100 if s[1..4] == [0; 3] => Some("reserved"),
        _ => None,
    }
}

/// Checks an endpoint URL without resolving anything: http(s) only, and
/// unless `allow_private`, no blocked address literal (in any spelling the
/// URL standard accepts: `0x7f.1`, `2130706433`, `[::ffff:127.0.0.1]` are
/// all loopback) and no `localhost` name.
pub fn check_url(url: &str, allow_private: bool) -> Result<Target, TargetError> {
    let u = reqwest::Url::parse(url).map_err(|_| TargetError::Invalid)?;
    let default_port = match u.scheme() {
        "http" => 80,
        "https" => 443,
        _ => return Err(TargetError::NotHttp),
    };
    let port = u.port().unwrap_or(default_port);
    // The parser has normalised the host: IPv4 in dotted decimal, IPv6 in brackets.
    let raw = u.host_str().filter(|h| !h.is_empty()).ok_or(TargetError::NoHost)?;
    let host = if let Some(v6) = raw.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Host::Ip(IpAddr::V6(v6.parse().map_err(|_| TargetError::Invalid)?))
    } else if let Ok(v4) = raw.parse::<Ipv4Addr>() {
        Host::Ip(IpAddr::V4(v4))
    } else {
        Host::Name(raw.to_ascii_lowercase())
    };
    if !allow_private {
        match &host {
            Host::Ip(ip) => {
                if let Some(class) = blocked_class(*ip) {
                    return Err(TargetError::Blocked(class));
                }
            }
            Host::Name(name) => {
                let name = name.trim_end_matches('.');
                if name == "localhost" || name.ends_with(".localhost") {
                    return Err(TargetError::Blocked("loopback"));
                }
            }
        }
    }
    Ok(Target { host, port })
}

/// The first blocked address among `addrs`, as its class.
pub fn first_blocked(addrs: &[SocketAddr]) -> Option<&'static str> {
    addrs.iter().find_map(|a| blocked_class(a.ip()))
}

/// The resolver of the subscriber HTTP clients: resolves with `lookup` and,
/// unless `allow_private`, refuses a name if any address it resolves to is
/// blocked (`blocked_class`), so the client can only connect to public
/// addresses whatever the name resolves to by then.
///
/// `trusted` are the operator's proxies (`proxy::ProxySettings::host_names`):
/// the client connects to them, not to the endpoint, when a proxy applies,
/// and they commonly sit on private addresses, so they resolve unguarded.
/// An endpoint naming one of them directly is still refused by the check
/// before sending, which resolves with the guard's rule.
pub struct GuardedResolver {
    pub lookup: Lookup,
    pub allow_private: bool,
    pub trusted: Vec<String>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = self.lookup.clone();
        let host = name.as_str().to_owned();
        let trusted = self.trusted.iter().any(|t| t.eq_ignore_ascii_case(host.trim_end_matches('.')));
        let allow_private = self.allow_private || trusted;
        Box::pin(async move {
            let addrs = lookup(host, 0).await?;
            if !allow_private && let Some(class) = first_blocked(&addrs) {
                return Err(format!("resolves to a {class} address").into());
            }
            if addrs.is_empty() {
                return Err("resolves to no address".into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> Option<String> {
        check_url(url, false).err().map(|e| e.to_string())
    }

    #[test]
    fn private_literals_are_refused_in_every_spelling() {
        for (url, why) in [
            ("http://127.0.0.1/hook", "points at a loopback address"),
            ("http://127.1:8080/", "points at a loopback address"),
            ("http://0x7f.1/", "points at a loopback address"),
            ("http://2130706433/", "points at a loopback address"),
            ("http://[::1]/", "points at a loopback address"),
            ("http://[::ffff:127.0.0.1]/", "points at a loopback address"),
            ("http://localhost:9000/x", "points at a loopback address"),
            ("http://LOCALHOST./x", "points at a loopback address"),
            ("http://api.localhost/x", "points at a loopback address"),
            ("http://10.1.2.3/", "points at a private address"),
            ("http://172.16.0.1/", "points at a private address"),
            ("http://172.31.255.255/", "points at a private address"),
            ("https://192.168.1.1/", "points at a private address"),
            ("http://[::ffff:10.0.0.1]/", "points at a private address"),
            ("http://[64:ff9b::a00:1]/", "points at a private address"),
            ("http://[2002:c0a8:101::1]/", "points at a private address"),
            ("http://[fd12:3456::1]/", "points at a private (unique local) address"),
            ("http://169.254.169.254/latest/meta-data", "points at a link-local address"),
            ("http://[fe80::1]/", "points at a link-local address"),
            ("http://0.0.0.0/", "points at a unspecified address"),
            ("http://[::]/", "points at a unspecified address"),
            ("http://224.0.0.1/", "points at a multicast address"),
            ("http://[ff02::1]/", "points at a multicast address"),
            ("http://255.255.255.255/", "points at a broadcast address"),
            ("http://240.0.0.1/", "points at a reserved address"),
            ("http://100.64.0.1/", "points at a shared (carrier-grade NAT) address"),
            ("ftp://example.com/x", "must be an http or https URL"),
            ("file:///etc/passwd", "must be an http or https URL"),
            ("gopher://example.com/", "must be an http or https URL"),
            ("not a url", "is not a valid URL"),
        ] {
            assert_eq!(refused(url).as_deref(), Some(why), "{url}");
        }
    }

    #[test]
    fn public_endpoints_pass_and_report_their_host() {
        assert_eq!(check_url("https://hooks.example.com/x?token=1", false), Ok(Target { host: Host::Name("hooks.example.com".into()), port: 443 }));
        assert_eq!(check_url("http://93.184.216.34:8080/", false), Ok(Target { host: Host::Ip("93.184.216.34".parse().unwrap()), port: 8080 }));
        assert!(check_url("http://[2606:4700:4700::1111]/", false).is_ok());
        assert!(check_url("http://172.32.0.1/", false).is_ok(), "just outside 172.16/12");
        assert!(check_url("http://100.128.0.1/", false).is_ok(), "just outside 100.64/10");
    }

    #[test]
    fn allowing_private_targets_still_requires_http() {
        assert!(check_url("http://127.0.0.1:9/hook", true).is_ok());
        assert!(check_url("http://localhost/hook", true).is_ok());
        assert_eq!(check_url("ftp://127.0.0.1/", true), Err(TargetError::NotHttp));
    }

    #[test]
    fn errors_never_contain_the_url() {
        let e = check_url("http://10.0.0.1/hook?token=s3cret", false).unwrap_err().to_string();
        assert!(!e.contains("s3cret") && !e.contains("10.0.0.1"), "{e}");
    }
}
