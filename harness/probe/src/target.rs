//! `HOST:PORT` as given on the command line, and the TLS server name it implies.

use std::net::IpAddr;

use rustls_pki_types::ServerName;

use crate::ProbeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Host {
    Ip(IpAddr),
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub host: Host,
    pub port: u16,
}

impl Target {
    pub fn parse(addr: &str) -> Result<Self, ProbeError> {
        let bad = |reason| ProbeError::BadAddress {
            addr: addr.to_owned(),
            reason,
        };
        let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
            let (ip, port) = rest.split_once(']').ok_or(bad("unclosed `[`"))?;
            let port = port.strip_prefix(':').ok_or(bad("missing port"))?;
            (ip, port)
        } else {
            let (host, port) = addr.rsplit_once(':').ok_or(bad("missing port"))?;
            if host.contains(':') {
                return Err(bad("an ipv6 address needs brackets"));
            }
            (host, port)
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        if port.is_empty() {
            return Err(bad("missing port"));
        }
        let port = match port.parse::<u16>() {
            Ok(0) | Err(_) => return Err(bad("the port must be a number from 1 to 65535")),
            Ok(port) => port,
        };
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) if addr.starts_with('[') => return Err(bad("not an ipv6 address")),
            Err(_) => Host::Name(host.to_owned()),
        };
        Ok(Self { host, port })
    }

    /// The host as `ToSocketAddrs` and an HTTP `Host` header want it.
    pub fn host_text(&self) -> String {
        match &self.host {
            Host::Ip(ip) => ip.to_string(),
            Host::Name(name) => name.clone(),
        }
    }

    /// The name for rustls: `--sni` if given, else the host. rustls sends no SNI for an IP
    /// address, which is what we want when probing a pod IP (Envoy's inbound listener does not
    /// need one).
    pub fn server_name(&self, sni: Option<&str>) -> Result<ServerName<'static>, ProbeError> {
        let name = match (sni, &self.host) {
            (Some(name), _) => name.to_owned(),
            (None, Host::Ip(ip)) => return Ok(ServerName::IpAddress((*ip).into())),
            (None, Host::Name(name)) => name.clone(),
        };
        ServerName::try_from(name.clone()).map_err(|_| ProbeError::BadServerName { name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(addr: &str) -> &'static str {
        match Target::parse(addr) {
            Err(ProbeError::BadAddress { reason, .. }) => reason,
            other => panic!("`{addr}` parsed as {other:?}"),
        }
    }

    #[test]
    fn accepts_names_ipv4_and_bracketed_ipv6() {
        let name = Target::parse("httpbin.foo:8000").unwrap();
        assert_eq!(name.host, Host::Name("httpbin.foo".into()));
        assert_eq!(name.port, 8000);
        let v4 = Target::parse("10.1.2.3:443").unwrap();
        assert_eq!(v4.host, Host::Ip("10.1.2.3".parse().unwrap()));
        let v6 = Target::parse("[::1]:443").unwrap();
        assert_eq!(v6.host, Host::Ip("::1".parse().unwrap()));
    }

    #[test]
    fn names_what_is_wrong_with_a_bad_address() {
        assert_eq!(reason("httpbin"), "missing port");
        assert_eq!(reason("httpbin:"), "missing port");
        assert_eq!(reason(":443"), "missing host");
        assert_eq!(
            reason("httpbin:0"),
            "the port must be a number from 1 to 65535"
        );
        assert_eq!(
            reason("httpbin:65536"),
            "the port must be a number from 1 to 65535"
        );
        assert_eq!(
            reason("httpbin:https"),
            "the port must be a number from 1 to 65535"
        );
        assert_eq!(reason("::1:443"), "an ipv6 address needs brackets");
        assert_eq!(reason("[::1:443"), "unclosed `[`");
        assert_eq!(reason("[::1]"), "missing port");
        assert_eq!(reason("[httpbin]:443"), "not an ipv6 address");
    }

    #[test]
    fn sends_the_host_name_as_sni_but_nothing_for_an_ip() {
        let name = Target::parse("httpbin.foo:8000").unwrap();
        assert!(
            matches!(name.server_name(None).unwrap(), ServerName::DnsName(d) if d.as_ref() == "httpbin.foo")
        );
        let ip = Target::parse("10.1.2.3:443").unwrap();
        assert!(matches!(
            ip.server_name(None).unwrap(),
            ServerName::IpAddress(_)
        ));
        assert!(matches!(
            ip.server_name(Some("httpbin.foo.svc.cluster.local"))
                .unwrap(),
            ServerName::DnsName(_)
        ));
    }

    #[test]
    fn rejects_an_sni_that_is_not_a_dns_name() {
        let ip = Target::parse("10.1.2.3:443").unwrap();
        assert!(matches!(
            ip.server_name(Some("not a name")),
            Err(ProbeError::BadServerName { name }) if name == "not a name"
        ));
    }
}
