//! The verdict on a message to an alias, from who it claims to be and what
//! SPF, DKIM and DMARC found. Pure, so every branch is unit-tested without
//! DNS.
//!
//! The verdict must not tell a guesser whether the address they tried was
//! the partner's: whoever is not let through gets a refusal, or "try later",
//! decided only by what the message itself claims (its envelope and header
//! From domains), never by whether the claim named the partner.

pub use crate::config::verify::NoDmarc;

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

/// Which of the message's sender addresses are the partner's registered
/// address, compared by the relay (one normalization, IDN spellings equal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The envelope sender (MAIL FROM) is the partner's address.
    pub envelope_is_partner: bool,
    /// The header From is the partner's address, so DMARC for its domain
    /// speaks for the partner. Only the address counts: another user of
    /// the same provider passes that provider's DMARC too.
    pub from_is_partner: bool,
}

impl Claim {
    pub fn names_partner(&self) -> bool {
        self.envelope_is_partner || self.from_is_partner
    }
}

/// What the checks found, reduced to what the policy needs. "Partner"
/// means the domain of the partner's registered address; "claimed" means a
/// domain the message itself names (the envelope's, or HELO's for the null
/// sender, and the header From's), the same whoever the partner is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evidence {
    pub claim: Claim,
    /// DMARC for the header From domain (a claimed domain).
    pub dmarc: DmarcFinding,
    /// SPF passed for a MAIL FROM in the partner's domain.
    pub spf_partner_pass: bool,
    /// A signature with d= the partner's domain (or a parent) verified.
    pub dkim_partner_pass: bool,
    /// SPF for the envelope domain, or a DKIM signature whose d= is a
    /// claimed domain or a parent of one, could not be checked (DNS).
    pub claimed_temp_error: bool,
}

/// The outcome, with a fixed word saying which check decided: counted in
/// /metrics and logged at debug level only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    /// Refused for good: 550 5.7.1, the same reply whatever the reason.
    Refuse(&'static str),
    /// DNS trouble for a claimed domain: 451 4.4.3, the sender retries.
    TryLater(&'static str),
}

pub const NOT_PARTNER: &str = "not_partner";
pub const DMARC_FAIL: &str = "dmarc_fail";
pub const NO_ENVELOPE_SPF_PASS: &str = "no_envelope_spf_pass";
pub const NO_SPF_OR_DKIM_PASS: &str = "no_spf_or_dkim_pass";
pub const CLAIMED_DNS_TEMPORARY: &str = "claimed_dns_temporary";

pub fn decide(evidence: &Evidence, no_dmarc: NoDmarc) -> Verdict {
    let failed = match authenticate(evidence, no_dmarc) {
        Ok(()) => return Verdict::Accept,
        Err(failed) => failed,
    };
    // Only claimed domains decide "try later", so a sender who is not the
    // partner and a partner whose check failed are deferred alike.
    if evidence.claimed_temp_error || evidence.dmarc == DmarcFinding::TempError {
        Verdict::TryLater(CLAIMED_DNS_TEMPORARY)
    } else {
        Verdict::Refuse(failed)
    }
}

/// With `[verify] mode = "off"` the address alone decides.
pub fn decide_unverified(claim: &Claim) -> Verdict {
    if claim.names_partner() {
        Verdict::Accept
    } else {
        Verdict::Refuse(NOT_PARTNER)
    }
}

/// Ok when the message authentically comes from the partner; else which
/// check it failed.
fn authenticate(evidence: &Evidence, no_dmarc: NoDmarc) -> Result<(), &'static str> {
    let claim = evidence.claim;
    if claim.from_is_partner {
        return match evidence.dmarc {
            DmarcFinding::Pass => Ok(()),
            DmarcFinding::Fail | DmarcFinding::TempError => Err(DMARC_FAIL),
            DmarcFinding::NoRecord => match no_dmarc {
                NoDmarc::Accept => Ok(()),
                NoDmarc::SpfOrDkim if evidence.spf_partner_pass || evidence.dkim_partner_pass => {
                    Ok(())
                }
                NoDmarc::SpfOrDkim => Err(NO_SPF_OR_DKIM_PASS),
            },
        };
    }
    if claim.envelope_is_partner {
        // Only the envelope named the partner: the header From's DMARC and
        // any DKIM signature authenticate whoever wrote the header (a
        // signed message of another user at the partner's provider can be
        // replayed with the partner's MAIL FROM). Only SPF speaks for the
        // envelope: the client must be allowed to send for it.
        return if evidence.spf_partner_pass {
            Ok(())
        } else {
            Err(NO_ENVELOPE_SPF_PASS)
        };
    }
    Err(NOT_PARTNER)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARTNER_FROM: Claim = Claim {
        envelope_is_partner: false,
        from_is_partner: true,
    };
    const PARTNER_ENVELOPE: Claim = Claim {
        envelope_is_partner: true,
        from_is_partner: false,
    };
    const STRANGER: Claim = Claim {
        envelope_is_partner: false,
        from_is_partner: false,
    };

    fn evidence(dmarc: DmarcFinding) -> Evidence {
        Evidence {
            claim: PARTNER_FROM,
            dmarc,
            spf_partner_pass: false,
            dkim_partner_pass: false,
            claimed_temp_error: false,
        }
    }

    /// Every combination of findings, for every claim and both settings.
    fn every_case() -> Vec<(Evidence, NoDmarc)> {
        let mut cases = Vec::new();
        for claim in [PARTNER_FROM, PARTNER_ENVELOPE, STRANGER] {
            for dmarc in [
                DmarcFinding::Pass,
                DmarcFinding::Fail,
                DmarcFinding::NoRecord,
                DmarcFinding::TempError,
            ] {
                for bits in 0..8u8 {
                    for no_dmarc in [NoDmarc::SpfOrDkim, NoDmarc::Accept] {
                        let evidence = Evidence {
                            claim,
                            dmarc,
                            spf_partner_pass: bits & 1 != 0,
                            dkim_partner_pass: bits & 2 != 0,
                            claimed_temp_error: bits & 4 != 0,
                        };
                        cases.push((evidence, no_dmarc));
                    }
                }
            }
        }
        cases
    }

    fn is_refusal(verdict: Verdict) -> bool {
        matches!(verdict, Verdict::Refuse(_))
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
            assert_eq!(decide(&failed, no_dmarc), Verdict::Refuse(DMARC_FAIL));
            assert_eq!(
                decide(&evidence(DmarcFinding::TempError), no_dmarc),
                Verdict::TryLater(CLAIMED_DNS_TEMPORARY)
            );
        }
    }

    #[test]
    fn without_dmarc_spf_or_dkim_must_pass_for_the_partner() {
        let none = evidence(DmarcFinding::NoRecord);
        assert_eq!(
            decide(&none, NoDmarc::SpfOrDkim),
            Verdict::Refuse(NO_SPF_OR_DKIM_PASS)
        );
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
    fn dns_trouble_for_a_claimed_domain_defers_unless_something_passed() {
        let none = Evidence {
            claimed_temp_error: true,
            ..evidence(DmarcFinding::NoRecord)
        };
        assert_eq!(
            decide(&none, NoDmarc::SpfOrDkim),
            Verdict::TryLater(CLAIMED_DNS_TEMPORARY)
        );
        // ... but one pass is enough, whatever else timed out.
        let mixed = Evidence {
            dkim_partner_pass: true,
            ..none
        };
        assert_eq!(decide(&mixed, NoDmarc::SpfOrDkim), Verdict::Accept);
        // A published DMARC that failed while a claimed lookup failed too:
        // the lookup could have changed the outcome, so try later.
        let failed = Evidence {
            claimed_temp_error: true,
            ..evidence(DmarcFinding::Fail)
        };
        assert_eq!(
            decide(&failed, NoDmarc::Accept),
            Verdict::TryLater(CLAIMED_DNS_TEMPORARY)
        );
    }

    #[test]
    fn a_foreign_header_from_needs_spf_for_the_partners_envelope() {
        // Envelope = partner, header From = someone else (perhaps at the
        // partner's own provider) whose DMARC and DKIM pass: that says
        // nothing about the partner.
        let foreign = Evidence {
            claim: PARTNER_ENVELOPE,
            dkim_partner_pass: true,
            ..evidence(DmarcFinding::Pass)
        };
        for no_dmarc in [NoDmarc::SpfOrDkim, NoDmarc::Accept] {
            assert_eq!(
                decide(&foreign, no_dmarc),
                Verdict::Refuse(NO_ENVELOPE_SPF_PASS)
            );
        }
        let spf = Evidence {
            spf_partner_pass: true,
            ..foreign
        };
        assert_eq!(decide(&spf, NoDmarc::Accept), Verdict::Accept);
        let dns = Evidence {
            claimed_temp_error: true,
            ..foreign
        };
        assert_eq!(
            decide(&dns, NoDmarc::Accept),
            Verdict::TryLater(CLAIMED_DNS_TEMPORARY)
        );
    }

    #[test]
    fn a_stranger_is_never_accepted_whatever_passed() {
        for (evidence, no_dmarc) in every_case() {
            if evidence.claim == STRANGER {
                assert_ne!(
                    decide(&evidence, no_dmarc),
                    Verdict::Accept,
                    "{evidence:?} {no_dmarc:?}"
                );
            }
        }
    }

    /// The guess oracle, over the whole table: for the same findings, a
    /// claim that names the partner is either accepted or gets exactly the
    /// outcome a stranger's claim gets (refused, or deferred because of a
    /// claimed domain's DNS), so a refusal or deferral never says whether
    /// the address was right.
    #[test]
    fn whoever_is_not_let_through_gets_what_a_stranger_gets() {
        let mut compared = 0;
        for (evidence, no_dmarc) in every_case() {
            let verdict = decide(&evidence, no_dmarc);
            if verdict == Verdict::Accept {
                continue;
            }
            let stranger = decide(
                &Evidence {
                    claim: STRANGER,
                    ..evidence
                },
                no_dmarc,
            );
            assert_eq!(
                is_refusal(verdict),
                is_refusal(stranger),
                "{evidence:?} {no_dmarc:?}: {verdict:?} vs a stranger's {stranger:?}"
            );
            compared += 1;
        }
        assert!(compared > 100, "{compared}");
    }

    #[test]
    fn deferral_depends_only_on_claimed_domains() {
        for (evidence, no_dmarc) in every_case() {
            let claimed_trouble =
                evidence.claimed_temp_error || evidence.dmarc == DmarcFinding::TempError;
            if let Verdict::TryLater(_) = decide(&evidence, no_dmarc) {
                assert!(claimed_trouble, "{evidence:?}");
            }
            if evidence.claim == STRANGER {
                assert_eq!(
                    matches!(decide(&evidence, no_dmarc), Verdict::TryLater(_)),
                    claimed_trouble,
                    "{evidence:?}"
                );
            }
        }
    }

    #[test]
    fn without_verification_the_address_alone_decides() {
        assert_eq!(decide_unverified(&PARTNER_FROM), Verdict::Accept);
        assert_eq!(decide_unverified(&PARTNER_ENVELOPE), Verdict::Accept);
        assert_eq!(decide_unverified(&STRANGER), Verdict::Refuse(NOT_PARTNER));
    }
}
