//! `upstream.url`: where forwarded mail goes, parsed.

use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Security {
    StartTls,
    ImplicitTls,
    /// Only ever to a loopback address (e.g. a local MTA or a test sink).
    Plain,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamUrl {
    Smtp {
        security: Security,
        host: String,
        port: u16,
        user: Option<String>,
    },
    Outbox(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("must start with smtp+starttls://, smtps://, smtp:// or outbox:")]
    Scheme,
    #[error("has no host")]
    Host,
    #[error("has an invalid port")]
    Port,
    #[error("plaintext smtp:// is only allowed to a loopback address (use smtp+starttls:// or smtps://)")]
    PlainNotLoopback,
    #[error("outbox: needs a directory")]
    OutboxDir,
}

impl UpstreamUrl {
    pub fn parse(url: &str) -> Result<Self, UrlError> {
        if let Some(dir) = url.strip_prefix("outbox:") {
            if dir.is_empty() {
                return Err(UrlError::OutboxDir);
            }
            return Ok(Self::Outbox(PathBuf::from(dir)));
        }
        let (security, rest, default_port) =
            if let Some(rest) = url.strip_prefix("smtp+starttls://") {
                (Security::StartTls, rest, 587)
            } else if let Some(rest) = url.strip_prefix("smtps://") {
                (Security::ImplicitTls, rest, 465)
            } else if let Some(rest) = url.strip_prefix("smtp://") {
                (Security::Plain, rest, 25)
            } else {
                return Err(UrlError::Scheme);
            };
        let rest = rest.trim_end_matches('/');
        let (user, hostport) = match rest.rsplit_once('@') {
            Some((user, hostport)) => (Some(user.replace("%40", "@")), hostport),
            None => (None, rest),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                (host, port.parse::<u16>().map_err(|_| UrlError::Port)?)
            }
            _ => (hostport, default_port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::Host);
        }
        if security == Security::Plain && !is_loopback(host) {
            return Err(UrlError::PlainNotLoopback);
        }
        Ok(Self::Smtp {
            security,
            host: host.to_owned(),
            port,
            user: user.filter(|u| !u.is_empty()),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            UpstreamUrl::parse("smtp+starttls://relay@smtp.example:2587").unwrap(),
            UpstreamUrl::Smtp {
                security: Security::StartTls,
                host: "smtp.example".into(),
                port: 2587,
                user: Some("relay".into())
            }
        );
        assert_eq!(
            UpstreamUrl::parse("smtps://me@provider.example@smtp.example").unwrap(),
            UpstreamUrl::Smtp {
                security: Security::ImplicitTls,
                host: "smtp.example".into(),
                port: 465,
                user: Some("me@provider.example".into())
            }
        );
        assert!(matches!(
            UpstreamUrl::parse("smtp://127.0.0.1:2526").unwrap(),
            UpstreamUrl::Smtp {
                security: Security::Plain,
                port: 2526,
                ..
            }
        ));
        assert!(UpstreamUrl::parse("smtp://[::1]:25").is_ok());
        assert_eq!(
            UpstreamUrl::parse("smtp://smtp.example:25"),
            Err(UrlError::PlainNotLoopback)
        );
        assert_eq!(UpstreamUrl::parse("http://x"), Err(UrlError::Scheme));
        assert_eq!(
            UpstreamUrl::parse("smtps://h:notaport"),
            Err(UrlError::Port)
        );
        assert_eq!(UpstreamUrl::parse("outbox:"), Err(UrlError::OutboxDir));
        assert_eq!(
            UpstreamUrl::parse("outbox:mail"),
            Ok(UpstreamUrl::Outbox("mail".into()))
        );
    }
}
