//! The outbound proxy of status-page subscriber webhooks: the standard
//! `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY` settings, read by the server's
//! config from the environment it is given and applied to the subscriber
//! HTTP clients (`Sender::with_proxy`).
//!
//! Why explicit rather than reqwest's own environment lookup: the subscriber
//! clients resolve through `target::GuardedResolver`, which refuses private
//! addresses — and an egress proxy usually lives on one. So the proxies'
//! host names are handed to the resolver as trusted (the operator chose
//! them), while every subscriber endpoint is still checked before the
//! request is handed to the proxy: `Sender::post_to_subscriber` refuses a
//! private literal and resolves a name, refusing it if any address is
//! private. The proxy then resolves the name again itself; a name re-pointed
//! in between is the proxy's to refuse (its own destination rules), as it
//! would be for any client behind it.
//!
//! Not here: the address rules (`target`) or the operator's configured
//! channels (they use reqwest's defaults, which read the same variables).

use super::Secret;

/// Where subscriber webhooks go through, if anywhere. Empty (the default):
/// straight to the endpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySettings {
    /// Proxy for `https://` endpoints (a CONNECT tunnel through it).
    pub https: Option<Secret>,
    /// Proxy for `http://` endpoints (the request is sent to it whole).
    pub http: Option<Secret>,
    /// Endpoints reached directly, in the curl / reqwest `NO_PROXY` syntax
    /// (comma-separated domains, which match their subdomains, IP
    /// addresses, CIDR blocks, `*` for all).
    pub no_proxy: Option<String>,
}

/// A proxy setting that cannot be used. Names the variable, never its value
/// (a proxy URL may carry a password).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}: {reason}")]
pub struct ProxyError {
    pub var: &'static str,
    pub reason: &'static str,
}

impl ProxySettings {
    /// Reads `https_proxy`/`HTTPS_PROXY`, `http_proxy`/`HTTP_PROXY` and
    /// `no_proxy`/`NO_PROXY` (the lowercase spelling first, as curl does; an
    /// empty value is unset). A proxy URL without a scheme is `http://`.
    /// `env` is passed in, not read here, so tests stay hermetic.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<ProxySettings, ProxyError> {
        let var = |lower: &'static str, upper: &'static str| -> Option<(&'static str, String)> {
            [lower, upper].into_iter().find_map(|k| env(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).map(|v| (k, v)))
        };
        let proxy = |lower, upper| var(lower, upper).map(|(k, v)| proxy_url(k, &v)).transpose();
        Ok(ProxySettings {
            https: proxy("https_proxy", "HTTPS_PROXY")?,
            http: proxy("http_proxy", "HTTP_PROXY")?,
            no_proxy: var("no_proxy", "NO_PROXY").map(|(_, v)| v),
        })
    }

    /// No proxy for either scheme.
    pub fn is_empty(&self) -> bool {
        self.https.is_none() && self.http.is_none()
    }

    /// The proxies' host names (not address literals), lowercase: the names
    /// the subscriber clients resolve without the private-address guard.
    pub fn host_names(&self) -> Vec<String> {
        let mut names: Vec<String> = [&self.https, &self.http]
            .into_iter()
            .flatten()
            .filter_map(|p| reqwest::Url::parse(p.expose()).ok())
            .filter_map(|u| u.host_str().map(|h| h.trim_end_matches('.').to_ascii_lowercase()))
            // The parser writes IPv4 in dotted decimal and IPv6 in brackets.
            .filter(|h| !h.starts_with('[') && h.parse::<std::net::Ipv4Addr>().is_err())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// Adds the proxies to a client builder (which then ignores the
    /// process environment).
    pub(crate) fn apply(&self, mut builder: reqwest::ClientBuilder) -> Result<reqwest::ClientBuilder, String> {
        let no_proxy = || self.no_proxy.as_deref().and_then(reqwest::NoProxy::from_string);
        let invalid = |_| "invalid subscriber proxy URL".to_owned();
        builder = builder.no_proxy();
        if let Some(p) = &self.https {
            builder = builder.proxy(reqwest::Proxy::https(p.expose()).map_err(invalid)?.no_proxy(no_proxy()));
        }
        if let Some(p) = &self.http {
            builder = builder.proxy(reqwest::Proxy::http(p.expose()).map_err(invalid)?.no_proxy(no_proxy()));
        }
        Ok(builder)
    }
}

/// Validates one proxy URL: `http://` or `https://` (no SOCKS: this build
/// has no SOCKS support), with a host.
fn proxy_url(var: &'static str, value: &str) -> Result<Secret, ProxyError> {
    let full = if value.contains("://") { value.to_owned() } else { format!("http://{value}") };
    let u = reqwest::Url::parse(&full).map_err(|_| ProxyError { var, reason: "is not a URL" })?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(ProxyError { var, reason: "must be an http:// or https:// proxy" });
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(ProxyError { var, reason: "has no host" });
    }
    Ok(Secret::new(full))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn nothing_set_is_no_proxy() {
        let p = ProxySettings::from_env(&env(&[])).unwrap();
        assert!(p.is_empty());
        assert_eq!(p, ProxySettings::default());
        assert!(ProxySettings::from_env(&env(&[("HTTPS_PROXY", " "), ("http_proxy", "")])).unwrap().is_empty(), "empty is unset");
    }

    #[test]
    fn lowercase_wins_and_a_bare_host_is_http() {
        let p = ProxySettings::from_env(&env(&[
            ("https_proxy", "http://egress.internal:3128"),
            ("HTTPS_PROXY", "http://other:1"),
            ("HTTP_PROXY", "egress.internal:3129"),
            ("NO_PROXY", "example.org, 10.0.0.0/8"),
        ]))
        .unwrap();
        assert_eq!(p.https.as_ref().map(Secret::expose), Some("http://egress.internal:3128"));
        assert_eq!(p.http.as_ref().map(Secret::expose), Some("http://egress.internal:3129"));
        assert_eq!(p.no_proxy.as_deref(), Some("example.org, 10.0.0.0/8"));
        assert_eq!(p.host_names(), ["egress.internal"]);
        let literal = ProxySettings::from_env(&env(&[("HTTPS_PROXY", "http://10.1.2.3:3128"), ("HTTP_PROXY", "http://[fd00::1]:3128")])).unwrap();
        assert!(literal.host_names().is_empty(), "address literals need no resolving");
    }

    #[test]
    fn unusable_proxies_are_refused_without_echoing_the_url() {
        for (value, reason) in [
            ("socks5://user:s3cret@proxy:1080", "must be an http:// or https:// proxy"),
            ("http://user:s3cret@", "is not a URL"),
            ("http://user:s3cret@[::1", "is not a URL"),
        ] {
            let e = ProxySettings::from_env(&env(&[("HTTPS_PROXY", value)])).unwrap_err();
            assert_eq!(e, ProxyError { var: "HTTPS_PROXY", reason }, "{value}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
        let p = ProxySettings::from_env(&env(&[("http_proxy", "http://user:s3cret@proxy:3128")])).unwrap();
        assert!(!format!("{p:?}").contains("s3cret"), "credentials are not printed");
    }

    #[test]
    fn settings_build_a_client() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let p = ProxySettings::from_env(&env(&[("HTTPS_PROXY", "http://proxy:3128"), ("NO_PROXY", "*")])).unwrap();
        assert!(p.apply(reqwest::Client::builder()).unwrap().build().is_ok());
    }
}
