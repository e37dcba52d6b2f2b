//! Inbound authenticity of mail to an alias: SPF for the envelope sender
//! (with the client's IP, held in memory only), DKIM of the message and
//! DMARC of the header From domain, through mail-auth. `policy` turns the
//! findings into accept / 550 5.7.1 / 451 4.4.3; DNS answers are cached in
//! memory with their TTLs (`cache`), or seeded from a file (`seed`).
//!
//! The lookups depend only on the message and its client, never on who the
//! partner is: a guess of the partner's address, right or wrong, costs the
//! same DNS work and time (the partner enters only in comparisons after).

pub mod cache;
pub mod policy;
pub mod seed;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use mail_auth::dmarc::verify::DmarcParameters;
use mail_auth::hickory_resolver::config::{ResolverConfig, ResolverOpts};
use mail_auth::spf::verify::SpfParameters;
use mail_auth::{
    AuthenticatedMessage, DkimResult, DmarcResult, MessageAuthenticator, Parameters, RecordSet,
    SpfResult, Txt, MX,
};

pub use crate::config::verify::{Mode, VerifyConfig};
use cache::DnsCache;
pub use policy::{decide, decide_unverified, Claim, DmarcFinding, Evidence, NoDmarc, Verdict};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("cannot set up the DNS resolver for `[verify]` from the system configuration: {0}")]
    Resolver(String),
    #[error(transparent)]
    Seed(#[from] seed::SeedError),
}

/// Reads the seed file, if any, so `check-config` reports a bad one.
pub fn check_records(config: &VerifyConfig) -> Result<(), VerifyError> {
    if let Some(path) = &config.dns_records {
        seed::load(path, &Caches::new(cache::DEFAULT_CAPACITY))?;
    }
    Ok(())
}

/// The DNS answers mail-auth may ask for, one bounded cache per type.
pub struct Caches {
    pub txt: DnsCache<Box<str>, Txt>,
    pub mx: DnsCache<Box<str>, RecordSet<MX>>,
    pub ipv4: DnsCache<Box<str>, RecordSet<Ipv4Addr>>,
    pub ipv6: DnsCache<Box<str>, RecordSet<Ipv6Addr>>,
    pub ptr: DnsCache<IpAddr, RecordSet<Box<str>>>,
}

impl Caches {
    pub fn new(capacity: usize) -> Self {
        Self {
            txt: DnsCache::new(capacity),
            mx: DnsCache::new(capacity),
            ipv4: DnsCache::new(capacity),
            ipv6: DnsCache::new(capacity),
            ptr: DnsCache::new(capacity),
        }
    }
}

/// The SMTP client of one transaction, as the checks need it. Lives only
/// as long as the message: never logged, never stored.
pub struct Client<'a> {
    pub ip: IpAddr,
    /// The EHLO/HELO name.
    pub helo: &'a str,
    /// Envelope sender; None for the null sender.
    pub mail_from: Option<&'a str>,
}

pub struct Verifier {
    authenticator: MessageAuthenticator,
    caches: Caches,
    no_dmarc: NoDmarc,
    timeout: Duration,
    /// Our host name, for SPF's `%{r}` macro.
    hostname: String,
}

impl Verifier {
    /// None when `mode = "off"`.
    pub fn from_config(config: &VerifyConfig, hostname: &str) -> Result<Option<Self>, VerifyError> {
        if config.mode == Mode::Off {
            return Ok(None);
        }
        let timeout = Duration::from_secs(config.dns_timeout_secs);
        let caches = Caches::new(cache::DEFAULT_CAPACITY);
        let (resolver, mut options) = match &config.dns_records {
            Some(path) => {
                seed::load(path, &caches)?;
                // No name servers: whatever is not seeded fails at once.
                (
                    ResolverConfig::from_parts(None, vec![], vec![]),
                    ResolverOpts::default(),
                )
            }
            None => mail_auth::hickory_resolver::system_conf::read_system_conf()
                .map_err(|err| VerifyError::Resolver(err.to_string()))?,
        };
        options.timeout = timeout;
        let authenticator = MessageAuthenticator::new(resolver, options)
            .map_err(|err| VerifyError::Resolver(err.to_string()))?;
        Ok(Some(Self::new(
            authenticator,
            caches,
            config.no_dmarc,
            timeout,
            hostname,
        )))
    }

    pub fn new(
        authenticator: MessageAuthenticator,
        caches: Caches,
        no_dmarc: NoDmarc,
        timeout: Duration,
        hostname: &str,
    ) -> Self {
        Self {
            authenticator,
            caches,
            no_dmarc,
            timeout,
            hostname: hostname.to_owned(),
        }
    }

    /// Whether `raw`, sent by `client` with the addresses `claim` found to
    /// be (or not be) the partner's, authentically comes from the partner
    /// whose registered address is `partner_email`.
    pub async fn check(
        &self,
        client: &Client<'_>,
        claim: Claim,
        partner_email: &str,
        raw: &[u8],
    ) -> Verdict {
        let Some(message) = AuthenticatedMessage::parse(raw) else {
            return Verdict::Refuse(UNPARSABLE);
        };
        let evidence = self.evidence(client, claim, partner_email, &message);
        match tokio::time::timeout(self.timeout, evidence).await {
            Ok(evidence) => decide(&evidence, self.no_dmarc),
            Err(_) => Verdict::TryLater(DNS_TIMEOUT),
        }
    }

    async fn evidence(
        &self,
        client: &Client<'_>,
        claim: Claim,
        partner_email: &str,
        message: &AuthenticatedMessage<'_>,
    ) -> Evidence {
        let partner_domain = domain_of(partner_email);
        let partner_domain = partner_domain.as_str();
        // DNS names are asked in A-labels, whichever spelling the client used.
        let mail_from = client.mail_from.map(with_ascii_domain).unwrap_or_default();
        let mail_from = mail_from.as_str();
        let spf = self
            .authenticator
            .verify_spf(self.with_caches(SpfParameters::verify_mail_from(
                client.ip,
                client.helo,
                &self.hostname,
                mail_from,
            )))
            .await;
        let dkim = self
            .authenticator
            .verify_dkim(self.with_caches(message))
            .await;
        let mail_from_domain = domain_of(if mail_from.is_empty() {
            client.helo
        } else {
            mail_from
        });
        let dmarc = self
            .authenticator
            .verify_dmarc(self.with_caches(DmarcParameters::new(
                message,
                &dkim,
                &mail_from_domain,
                &spf,
            )))
            .await;

        let signed_by = |output: &&mail_auth::DkimOutput<'_>, domain: &str| {
            output
                .signature()
                .is_some_and(|s| is_domain_or_parent(&s.d, domain))
        };
        // What the message claims: SPF's domain (the envelope's, or HELO's
        // for the null sender) and the header From's.
        let claimed = [domain_of(spf.domain()), domain_of(message.from())];
        let claimed_dkim_temp_error = dkim.iter().any(|output| {
            matches!(output.result(), DkimResult::TempError(_))
                && claimed.iter().any(|domain| signed_by(&output, domain))
        });
        Evidence {
            claim,
            dmarc: dmarc_finding(&dmarc),
            spf_partner_pass: domain_of(spf.domain()) == partner_domain
                && spf.result() == SpfResult::Pass,
            dkim_partner_pass: dkim
                .iter()
                .any(|o| signed_by(&o, partner_domain) && o.result() == &DkimResult::Pass),
            claimed_temp_error: spf.result() == SpfResult::TempError || claimed_dkim_temp_error,
        }
    }

    #[allow(clippy::type_complexity)]
    fn with_caches<'x, P>(
        &'x self,
        params: P,
    ) -> Parameters<
        'x,
        P,
        DnsCache<Box<str>, Txt>,
        DnsCache<Box<str>, RecordSet<MX>>,
        DnsCache<Box<str>, RecordSet<Ipv4Addr>>,
        DnsCache<Box<str>, RecordSet<Ipv6Addr>>,
        DnsCache<IpAddr, RecordSet<Box<str>>>,
    > {
        Parameters::new(params)
            .with_txt_cache(&self.caches.txt)
            .with_mx_cache(&self.caches.mx)
            .with_ipv4_cache(&self.caches.ipv4)
            .with_ipv6_cache(&self.caches.ipv6)
            .with_ptr_cache(&self.caches.ptr)
    }
}

fn dmarc_finding(output: &mail_auth::DmarcOutput) -> DmarcFinding {
    match output.result() {
        DmarcResult::Pass => DmarcFinding::Pass,
        DmarcResult::TempError(_) => DmarcFinding::TempError,
        _ if output.dmarc_record().is_none() => DmarcFinding::NoRecord,
        DmarcResult::Fail(_) | DmarcResult::PermError(_) | DmarcResult::None => DmarcFinding::Fail,
    }
}

/// Refused: mail-auth cannot read the header (the same for every sender).
const UNPARSABLE: &str = "unparsable";
/// The DNS work for the message did not finish within `dns_timeout_secs`.
const DNS_TIMEOUT: &str = "dns_timeout";

/// The domain of an address (or a bare domain), lowercase, in A-labels.
fn domain_of(address: &str) -> String {
    let domain = address
        .rsplit_once('@')
        .map_or(address, |(_, domain)| domain)
        .trim_end_matches('.');
    crate::core::address::ascii_domain(domain).unwrap_or_else(|| domain.to_ascii_lowercase())
}

/// `address` with its domain in A-labels, as SPF asks the DNS.
fn with_ascii_domain(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, _)) => format!("{local}@{}", domain_of(address)),
        None => domain_of(address),
    }
}

/// `d` is `domain` or one of its parents (never a bare top-level label).
fn is_domain_or_parent(d: &str, domain: &str) -> bool {
    let d = d.trim_end_matches('.').to_ascii_lowercase();
    d.contains('.')
        && (d == domain
            || domain
                .strip_suffix(d.as_str())
                .is_some_and(|head| head.ends_with('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name server that never answers: the bound on DNS work turns it
    /// into "try later", never an accept. Paused time: no real waiting.
    #[tokio::test(start_paused = true)]
    async fn a_silent_name_server_defers_instead_of_accepting() {
        use mail_auth::hickory_resolver::config::NameServerConfig;
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut server = NameServerConfig::udp(silent.local_addr().unwrap().ip());
        for connection in &mut server.connections {
            connection.port = silent.local_addr().unwrap().port();
        }
        let mut options = ResolverOpts::default();
        options.timeout = Duration::from_secs(60);
        let authenticator = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![server]),
            options,
        )
        .unwrap();
        let verifier = Verifier::new(
            authenticator,
            Caches::new(16),
            NoDmarc::Accept,
            Duration::from_secs(5),
            "mx.relay.test",
        );
        let client = Client {
            ip: "192.0.2.7".parse().unwrap(),
            helo: "mail.partner.example",
            mail_from: Some("bob@partner.example"),
        };
        let message = b"From: <bob@partner.example>\r\nSubject: hi\r\n\r\nbody\r\n";
        // The partner and a stranger wait for the same DNS alike.
        for claim in [PARTNER, STRANGER] {
            let verdict = verifier
                .check(&client, claim, "bob@partner.example", message)
                .await;
            assert_eq!(verdict, Verdict::TryLater(DNS_TIMEOUT), "{claim:?}");
        }
        drop(silent);
    }

    const PARTNER: Claim = Claim {
        envelope_is_partner: true,
        from_is_partner: true,
    };
    const STRANGER: Claim = Claim {
        envelope_is_partner: false,
        from_is_partner: false,
    };

    /// Offline verifier over `records` (name, TXT) and NXDOMAIN `absent`.
    fn seeded(records: &[(&str, &str)], absent: &[&str], no_dmarc: NoDmarc) -> Verifier {
        use mail_auth::common::parse::TxtRecordParser;
        let caches = Caches::new(16);
        for (name, value) in records {
            let spf = mail_auth::spf::Spf::parse(value.as_bytes()).unwrap();
            caches.txt.seed((*name).into(), Txt::from(spf));
        }
        for name in absent {
            let nx = mail_auth::Error::Dns(mail_auth::DnsError::RecordNotFound(
                mail_auth::hickory_resolver::proto::op::ResponseCode::NXDomain,
            ));
            caches.txt.seed((*name).into(), Txt::Error(nx));
        }
        let authenticator = MessageAuthenticator::new(
            ResolverConfig::from_parts(None, vec![], vec![]),
            ResolverOpts::default(),
        )
        .unwrap();
        Verifier::new(
            authenticator,
            caches,
            no_dmarc,
            Duration::from_secs(5),
            "mx.relay.test",
        )
    }

    /// A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; mail-auth
    /// matches those against `ip4:` (pinned here against an upgrade).
    #[tokio::test]
    async fn spf_sees_an_ipv4_client_of_a_dual_stack_listener_as_ipv4() {
        let verifier = seeded(
            &[("partner.example.", "v=spf1 ip4:192.0.2.7 -all")],
            &["_dmarc.partner.example.", "_dmarc.example."],
            NoDmarc::SpfOrDkim,
        );
        let message = b"From: <bob@partner.example>\r\nSubject: hi\r\n\r\nbody\r\n";
        for (ip, accepted) in [
            ("::ffff:192.0.2.7", true),
            ("192.0.2.7", true),
            ("::ffff:192.0.2.8", false),
        ] {
            let client = Client {
                ip: ip.parse().unwrap(),
                helo: "mail.partner.example",
                mail_from: Some("bob@partner.example"),
            };
            let verdict = verifier
                .check(&client, PARTNER, "bob@partner.example", message)
                .await;
            assert_eq!(verdict == Verdict::Accept, accepted, "{ip}: {verdict:?}");
        }
    }

    /// A domain the message claims whose records cannot be had: "try
    /// later" for the partner's address and for a stranger's on that
    /// domain alike, in the envelope and in the header From.
    #[tokio::test]
    async fn dns_trouble_for_a_claimed_domain_defers_every_sender_alike() {
        let verifier = seeded(
            &[("partner.example.", "v=spf1 ip4:192.0.2.7 -all")],
            &["_dmarc.partner.example.", "_dmarc.example."],
            NoDmarc::SpfOrDkim,
        );
        let unseeded = b"From: <erin@unseeded.example>\r\nSubject: hi\r\n\r\nbody\r\n";
        let seeded = b"From: <bob@partner.example>\r\nSubject: hi\r\n\r\nbody\r\n";
        let cases: [(&str, &[u8]); 2] = [
            // Envelope on the unseeded domain, header From on a good one.
            ("erin@unseeded.example", seeded),
            // Envelope on a good domain, header From on the unseeded one.
            ("bob@partner.example", unseeded),
        ];
        for (mail_from, message) in cases {
            let client = Client {
                ip: "192.0.2.99".parse().unwrap(),
                helo: "mail.example",
                mail_from: Some(mail_from),
            };
            for claim in [PARTNER, STRANGER] {
                let verdict = verifier
                    .check(&client, claim, "erin@unseeded.example", message)
                    .await;
                assert_eq!(
                    verdict,
                    Verdict::TryLater(policy::CLAIMED_DNS_TEMPORARY),
                    "{mail_from} {claim:?}"
                );
            }
        }
    }

    /// The session hands the envelope over in its canonical U-label form;
    /// SPF is asked for the A-label name the DNS holds, and the partner's
    /// domain compares equal in either spelling.
    #[tokio::test]
    async fn an_internationalized_envelope_is_checked_under_its_a_label() {
        let verifier = seeded(
            &[("xn--bcher-kva.example.", "v=spf1 ip4:192.0.2.7 -all")],
            &["_dmarc.xn--bcher-kva.example.", "_dmarc.example."],
            NoDmarc::SpfOrDkim,
        );
        let message = b"From: <carol@xn--bcher-kva.example>\r\nSubject: hi\r\n\r\nbody\r\n";
        let client = Client {
            ip: "192.0.2.7".parse().unwrap(),
            helo: "mail.example",
            mail_from: Some("carol@bücher.example"),
        };
        let verdict = verifier
            .check(&client, PARTNER, "carol@bücher.example", message)
            .await;
        assert_eq!(verdict, Verdict::Accept);
        assert_eq!(domain_of("carol@Bücher.example."), "xn--bcher-kva.example");
        assert_eq!(
            with_ascii_domain("carol@bücher.example"),
            "carol@xn--bcher-kva.example"
        );
    }

    #[test]
    fn dkim_parent_domains_count_but_not_siblings_or_tlds() {
        assert!(is_domain_or_parent("partner.example", "partner.example"));
        assert!(is_domain_or_parent("Example.org", "mail.example.org"));
        assert!(!is_domain_or_parent("org", "mail.example.org"));
        assert!(!is_domain_or_parent("ample.org", "example.org"));
        assert!(!is_domain_or_parent("mail.example.org", "example.org"));
    }

    #[test]
    fn config_defaults_enforce_and_bound_the_timeout() {
        let config: VerifyConfig = toml::from_str("").unwrap();
        assert_eq!(config.mode, Mode::Enforce);
        assert_eq!(config.no_dmarc, NoDmarc::SpfOrDkim);
        assert_eq!(config.dns_timeout_secs, 5);
        let config: VerifyConfig =
            toml::from_str("mode = \"off\"\nno_dmarc = \"accept\"\ndns_timeout_secs = 0").unwrap();
        assert_eq!(config.mode, Mode::Off);
        assert_eq!(config.no_dmarc, NoDmarc::Accept);
        assert!(config.validate().is_err());
        assert!(toml::from_str::<VerifyConfig>("mode = \"maybe\"").is_err());
    }
}
