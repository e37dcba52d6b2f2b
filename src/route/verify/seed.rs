//! `[verify] dns_records`: a TOML file standing in for the whole DNS, for
//! tests and offline development. Names not in it fail as a DNS outage
//! would (so the relay answers 451). Format:
//!
//! ```toml
//! nxdomain = ["_dmarc.example"]            # names that do not exist
//! [txt]                                     # one TXT record per name
//! "partner.example" = "v=spf1 ip4:127.0.0.1 -all"
//! "_dmarc.partner.example" = "v=DMARC1; p=reject"
//! "sel._domainkey.partner.example" = "v=DKIM1; k=rsa; p=MIIB..."
//! [a]                                       # for SPF `a` / `mx`
//! "mail.partner.example" = ["127.0.0.1"]
//! [aaaa]
//! [mx]                                      # exchanges, all preference 10
//! "partner.example" = ["mail.partner.example"]
//! ```

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::hickory_resolver::proto::op::ResponseCode;
use mail_auth::spf::Spf;
use mail_auth::{DnsError, DnssecStatus, RecordSet, Txt, MX};
use serde::Deserialize;

use super::Caches;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("config key `verify.dns_records`: cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config key `verify.dns_records`: {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `verify.dns_records`: {path}: TXT record of {name}: {message}")]
    Record {
        path: PathBuf,
        name: String,
        message: String,
    },
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SeedFile {
    #[serde(default)]
    nxdomain: Vec<String>,
    #[serde(default)]
    txt: BTreeMap<String, String>,
    #[serde(default)]
    a: BTreeMap<String, Vec<Ipv4Addr>>,
    #[serde(default)]
    aaaa: BTreeMap<String, Vec<Ipv6Addr>>,
    #[serde(default)]
    mx: BTreeMap<String, Vec<String>>,
}

/// Fills `caches` with the file's records as answers that never expire.
pub fn load(path: &Path, caches: &Caches) -> Result<(), SeedError> {
    let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
        path: path.to_owned(),
        source,
    })?;
    let seeds: SeedFile = toml::from_str(&text).map_err(|err| SeedError::Parse {
        path: path.to_owned(),
        message: err.to_string(),
    })?;
    for name in &seeds.nxdomain {
        let absent = mail_auth::Error::Dns(DnsError::RecordNotFound(ResponseCode::NXDomain));
        caches.txt.seed(fqdn(name), Txt::Error(absent));
    }
    for (name, value) in &seeds.txt {
        let record = parse_txt(name, value).map_err(|message| SeedError::Record {
            path: path.to_owned(),
            name: name.clone(),
            message,
        })?;
        caches.txt.seed(fqdn(name), record);
    }
    for (name, addresses) in seeds.a {
        caches.ipv4.seed(fqdn(&name), record_set(addresses));
    }
    for (name, addresses) in seeds.aaaa {
        caches.ipv6.seed(fqdn(&name), record_set(addresses));
    }
    for (name, exchanges) in seeds.mx {
        let mx = MX {
            exchanges: exchanges.iter().map(|e| fqdn(e)).collect(),
            preference: 10,
        };
        caches.mx.seed(fqdn(&name), record_set(vec![mx]));
    }
    Ok(())
}

/// The record kind follows from its content (SPF, DMARC) or its name (DKIM key).
fn parse_txt(name: &str, value: &str) -> Result<Txt, String> {
    let bytes = value.as_bytes();
    let lower = value.trim_start().to_ascii_lowercase();
    let parsed = if lower.starts_with("v=spf1") {
        Spf::parse(bytes).map(Txt::from)
    } else if lower.starts_with("v=dmarc1") {
        Dmarc::parse(bytes).map(Txt::from)
    } else if name.to_ascii_lowercase().contains("._domainkey.") {
        DomainKey::parse(bytes).map(Txt::from)
    } else {
        return Err("only SPF, DMARC and DKIM key records are understood".into());
    };
    parsed.map_err(|err| err.to_string())
}

/// mail-auth asks for lowercase names with the root dot.
fn fqdn(name: &str) -> Box<str> {
    let mut name = name.trim().to_ascii_lowercase();
    if !name.ends_with('.') {
        name.push('.');
    }
    name.into_boxed_str()
}

fn record_set<T>(items: Vec<T>) -> RecordSet<T> {
    RecordSet {
        rrset: Arc::from(items),
        dnssec_status: DnssecStatus::Indeterminate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_auth::ResolverCache;

    #[test]
    fn seeds_every_record_kind_and_refuses_unknown_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dns.toml");
        std::fs::write(
            &path,
            r#"nxdomain = ["_dmarc.Example"]
[txt]
"Partner.example" = "v=spf1 ip4:127.0.0.1 -all"
"_dmarc.partner.example." = "v=DMARC1; p=reject"
[a]
"mail.partner.example" = ["192.0.2.1"]
[mx]
"partner.example" = ["mail.partner.example"]
"#,
        )
        .unwrap();
        let caches = Caches::new(16);
        load(&path, &caches).unwrap();
        assert!(matches!(
            caches.txt.get("partner.example."),
            Some(Txt::Spf(_))
        ));
        assert!(matches!(
            caches.txt.get("_dmarc.partner.example."),
            Some(Txt::Dmarc(_))
        ));
        assert!(matches!(
            caches.txt.get("_dmarc.example."),
            Some(Txt::Error(mail_auth::Error::Dns(DnsError::RecordNotFound(
                _
            ))))
        ));
        assert_eq!(
            caches
                .ipv4
                .get("mail.partner.example.")
                .unwrap()
                .rrset
                .len(),
            1
        );
        assert!(caches.mx.get("partner.example.").is_some());

        std::fs::write(&path, "[txt]\n\"x.example\" = \"hello\"\n").unwrap();
        let err = load(&path, &Caches::new(16)).unwrap_err().to_string();
        assert!(err.contains("x.example"), "{err}");
    }
}
