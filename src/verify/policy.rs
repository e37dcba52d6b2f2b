//! The verdict on a message to an alias, from what SPF, DKIM and DMARC
//! found. Pure, so every branch is unit-tested without DNS.

use serde::Deserialize;

/// What to require when the partner's domain publishes no DMARC record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoDmarc {
    /// SPF pass for the partner's domain (MAIL FROM), or a DKIM pass with
    /// `d=` the partner's domain or a parent of it.
    #[default]
    SpfOrDkim,
    /// Accept: the domain owner has asked for nothing.
    Accept,
}

/// DMARC for the header From domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcFinding {
    Pass,
    /// A record is published and neither aligned SPF nor DKIM passed.
    Fail,
    /// No usable record (none published, or a malformed one).
    NoRecord,
    /// A DNS lookup failed temporarily.
    TempError,
}

/// What the checks found, reduced to what the policy needs. "Partner"
/// means the domain of the partner's registered address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    /// The header From is the partner's registered address, so DMARC for
    /// its domain speaks for the partner. Only the address counts: another
    /// user of the same provider passes that provider's DMARC too.
    pub from_is_partner: bool,
    pub dmarc: DmarcFinding,
    /// SPF passed for a MAIL FROM in the partner's domain.
    pub spf_partner_pass: bool,
    /// SPF for the partner's domain could not be evaluated (DNS).
    pub spf_partner_temp_error: bool,
    /// A signature with d= the partner's domain (or a parent) verified.
    pub dkim_partner_pass: bool,
    /// Such a signature could not be checked (DNS).
    pub dkim_partner_temp_error: bool,
}

/// Which check decided; logged with the alias, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Refused for good: 550 5.7.1.
    Refuse(&'static str),
    /// DNS trouble: 451 4.4.3, the sender retries.
    TryLater(&'static str),
}

pub fn decide(evidence: &Evidence, no_dmarc: NoDmarc) -> Verdict {
    if !evidence.from_is_partner {
        // Only the envelope named the partner: the header From's DMARC and
        // any DKIM signature authenticate whoever wrote the header (a
        // signed message of another user at the partner's provider can be
        // replayed with the partner's MAIL FROM). Only SPF speaks for the
        // envelope: the client must be allowed to send for it.
        return envelope_pass(evidence);
    }
    match evidence.dmarc {
        DmarcFinding::Pass => Verdict::Accept,
        DmarcFinding::Fail => Verdict::Refuse("dmarc fail"),
        DmarcFinding::TempError => Verdict::TryLater("dmarc temperror"),
        DmarcFinding::NoRecord => match no_dmarc {
            NoDmarc::Accept => Verdict::Accept,
            NoDmarc::SpfOrDkim => partner_domain_pass(evidence),
        },
    }
}

fn envelope_pass(evidence: &Evidence) -> Verdict {
    if evidence.spf_partner_pass {
        Verdict::Accept
    } else if evidence.spf_partner_temp_error {
        Verdict::TryLater("spf temperror")
    } else {
        Verdict::Refuse("no spf pass for the partner's envelope")
    }
}

fn partner_domain_pass(evidence: &Evidence) -> Verdict {
    if evidence.spf_partner_pass || evidence.dkim_partner_pass {
        Verdict::Accept
    } else if evidence.spf_partner_temp_error || evidence.dkim_partner_temp_error {
        Verdict::TryLater("spf/dkim temperror")
    } else {
        Verdict::Refuse("no spf or dkim pass for the partner's domain")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(dmarc: DmarcFinding) -> Evidence {
        Evidence {
            from_is_partner: true,
            dmarc,
            spf_partner_pass: false,
            spf_partner_temp_error: false,
            dkim_partner_pass: false,
            dkim_partner_temp_error: false,
        }
    }

    #[test]
    fn published_dmarc_decides_alone() {
        for no_dmarc in [NoDmarc::SpfOrDkim, NoDmarc::Accept] {
            assert_eq!(
                decide(&evidence(DmarcFinding::Pass), no_dmarc),
                Verdict::Accept
            );
            // An SPF pass that DMARC found unaligned does not rescue it.
            let mut failed = evidence(DmarcFinding::Fail);
            failed.spf_partner_pass = true;
            failed.dkim_partner_pass = true;
            assert_eq!(decide(&failed, no_dmarc), Verdict::Refuse("dmarc fail"));
            assert_eq!(
                decide(&evidence(DmarcFinding::TempError), no_dmarc),
                Verdict::TryLater("dmarc temperror")
            );
        }
    }

    #[test]
    fn without_dmarc_spf_or_dkim_must_pass_for_the_partner() {
        let none = evidence(DmarcFinding::NoRecord);
        assert!(matches!(
            decide(&none, NoDmarc::SpfOrDkim),
            Verdict::Refuse(_)
        ));
        assert_eq!(decide(&none, NoDmarc::Accept), Verdict::Accept);
        let spf = Evidence {
            spf_partner_pass: true,
            ..none
        };
        assert_eq!(decide(&spf, NoDmarc::SpfOrDkim), Verdict::Accept);
        let dkim = Evidence {
            dkim_partner_pass: true,
            ..none
        };
        assert_eq!(decide(&dkim, NoDmarc::SpfOrDkim), Verdict::Accept);
    }

    #[test]
    fn dns_trouble_is_never_an_accept_or_a_refusal() {
        let none = evidence(DmarcFinding::NoRecord);
        for temp in [
            Evidence {
                spf_partner_temp_error: true,
                ..none
            },
            Evidence {
                dkim_partner_temp_error: true,
                ..none
            },
        ] {
            assert!(matches!(
                decide(&temp, NoDmarc::SpfOrDkim),
                Verdict::TryLater(_)
            ));
        }
        // ... but one pass is enough, whatever else timed out.
        let mixed = Evidence {
            spf_partner_temp_error: true,
            dkim_partner_pass: true,
            ..none
        };
        assert_eq!(decide(&mixed, NoDmarc::SpfOrDkim), Verdict::Accept);
    }

    #[test]
    fn a_foreign_header_from_needs_spf_for_the_partners_envelope() {
        // Envelope = partner, header From = someone else (perhaps at the
        // partner's own provider) whose DMARC and DKIM pass: that says
        // nothing about the partner.
        let foreign = Evidence {
            from_is_partner: false,
            dkim_partner_pass: true,
            ..evidence(DmarcFinding::Pass)
        };
        for no_dmarc in [NoDmarc::SpfOrDkim, NoDmarc::Accept] {
            assert!(matches!(decide(&foreign, no_dmarc), Verdict::Refuse(_)));
        }
        let spf = Evidence {
            spf_partner_pass: true,
            ..foreign
        };
        assert_eq!(decide(&spf, NoDmarc::Accept), Verdict::Accept);
        let dns = Evidence {
            spf_partner_temp_error: true,
            ..foreign
        };
        assert!(matches!(
            decide(&dns, NoDmarc::Accept),
            Verdict::TryLater(_)
        ));
    }
}
