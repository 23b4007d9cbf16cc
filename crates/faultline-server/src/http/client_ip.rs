//! The address a request is attributed to (for per-client budgets): the
//! connection's peer, or — only when that peer is one of the operator's
//! `trusted_proxies` — the client `X-Forwarded-For` names.
//!
//! `X-Forwarded-For` is written by whoever sends the request, so it is read
//! from the right: each trusted proxy appends the address it received the
//! request from, and the first address from the right that is not a trusted
//! proxy is the client. Anything further left was written by the client
//! itself and is ignored. An entry that is not an address stops the walk at
//! the hop to its right (a proxy we trust, counted as the client: stricter,
//! never laxer). With no trusted proxies (the default) the header is never
//! read.
//!
//! Not here: what the address is used for (`ratelimit`), or the standard
//! `Forwarded` header (not read).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use ipnet::IpNet;

use super::AppState;

/// The client's address, if the connection's peer is known (it is when the
/// router is served by `App::run`; a router driven in-process without
/// connection info has none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<ClientIp, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = parts.headers.get_all("x-forwarded-for").iter().map(|v| v.to_str().unwrap_or("\u{0}"));
        Ok(ClientIp(peer.map(|p| client_ip(p, forwarded, &state.trusted_proxies))))
    }
}

/// The client behind `peer`: `peer` itself unless it is a trusted proxy,
/// else the rightmost `X-Forwarded-For` entry (over all header lines, in
/// order) that is not a trusted proxy. See the module doc.
pub fn client_ip<'a>(peer: IpAddr, forwarded_for: impl Iterator<Item = &'a str>, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(&ip));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for.flat_map(|line| line.split(',')).map(str::trim).collect();
    let mut hop = peer;
    for entry in entries.iter().rev() {
        let Some(ip) = parse_entry(entry) else { return hop };
        if !is_trusted(ip) {
            return ip;
        }
        hop = ip;
    }
    hop
}

/// An address as proxies write it: `203.0.113.7`, `2001:db8::1`, or with a
/// port (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let ip = entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))?;
    Some(ip.to_canonical())
}

/// Parses a trusted-proxy entry: an address (`10.0.0.7`, one host) or a CIDR
/// block (`10.0.0.0/8`, `fd00::/8`).
pub fn parse_trusted(entry: &str) -> Option<IpNet> {
    let entry = entry.trim();
    entry.parse::<IpNet>().ok().or_else(|| entry.parse::<IpAddr>().ok().map(IpNet::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_trusted(s).unwrap()).collect()
    }

    fn client(peer: &str, xff: &[&str], trusted: &[&str]) -> String {
        client_ip(peer.parse().unwrap(), xff.iter().copied(), &nets(trusted)).to_string()
    }

    #[test]
    fn the_header_is_ignored_unless_the_peer_is_a_trusted_proxy() {
        assert_eq!(client("203.0.113.9", &["198.51.100.1"], &[]), "203.0.113.9", "trusting nobody is the default");
        assert_eq!(client("203.0.113.9", &["198.51.100.1"], &["10.0.0.0/8"]), "203.0.113.9", "a stranger cannot name another client");
        assert_eq!(client("::ffff:203.0.113.9", &[], &[]), "203.0.113.9", "mapped IPv4 is IPv4");
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_entry_is_the_client() {
        let trusted = ["10.0.0.0/8", "fd00::/8"];
        assert_eq!(client("10.0.0.2", &["198.51.100.1"], &trusted), "198.51.100.1");
        // The client wrote a fake first entry; our proxies appended the rest.
        assert_eq!(client("10.0.0.2", &["1.2.3.4, 198.51.100.1, 10.0.0.9"], &trusted), "198.51.100.1");
        assert_eq!(client("10.0.0.2", &["1.2.3.4", "198.51.100.1,10.0.0.9"], &trusted), "198.51.100.1", "several header lines are one list");
        assert_eq!(client("fd00::2", &["[2001:db8::7]:4711"], &trusted), "2001:db8::7");
        assert_eq!(client("10.0.0.2", &["198.51.100.1:50000"], &trusted), "198.51.100.1");
        assert_eq!(client("10.0.0.2", &[], &trusted), "10.0.0.2", "no header: the proxy itself");
        assert_eq!(client("10.0.0.2", &["10.0.0.5, 10.0.0.9"], &trusted), "10.0.0.5", "only proxies: the farthest one");
        assert_eq!(client("10.0.0.2", &["198.51.100.1, garbage, 10.0.0.9"], &trusted), "10.0.0.9", "a bad entry stops at the hop after it");
        assert_eq!(client("10.0.0.2", &["\u{0}"], &trusted), "10.0.0.2", "an unreadable header is the proxy");
    }

    #[test]
    fn trusted_entries_are_addresses_or_blocks() {
        assert_eq!(parse_trusted("10.0.0.7"), Some("10.0.0.7/32".parse().unwrap()));
        assert_eq!(parse_trusted(" fd00::/8 "), Some("fd00::/8".parse().unwrap()));
        assert_eq!(parse_trusted("::1"), Some("::1/128".parse().unwrap()));
        assert_eq!(parse_trusted("10.0.0.0/33"), None);
        assert_eq!(parse_trusted("proxy.internal"), None);
    }
}
