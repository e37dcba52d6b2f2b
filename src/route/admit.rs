//! Who may write to an alias: its partner, by address and, with
//! `[verify] mode = "enforce"`, by SPF/DKIM/DMARC.

use std::sync::Arc;

use super::verify::{self, Claim, Client, Verdict, Verifier};
use crate::metrics::Metrics;
use crate::store::Route;

/// The one point where a message's sender is admitted or not.
pub struct Gate {
    /// None: `[verify] mode = "off"`.
    verifier: Option<Verifier>,
    metrics: Arc<Metrics>,
}

impl Gate {
    pub fn new(verifier: Option<Verifier>, metrics: Arc<Metrics>) -> Self {
        Self { verifier, metrics }
    }

    /// Whether the message comes from the partner: their address, and with
    /// `[verify] mode = "enforce"` SPF/DKIM/DMARC, which then run for every
    /// sender whatever address they claim. Everyone else gets one verdict
    /// at this one point after the same DNS work, so a guess of the
    /// partner's address, right or wrong, learns nothing; only /metrics
    /// (which the sender cannot see) tells the reasons apart. The log
    /// names the check, at debug level only.
    pub async fn admit(
        &self,
        route: &Route,
        client: &Client<'_>,
        claim: Claim,
        raw: &[u8],
    ) -> Verdict {
        let verdict = match &self.verifier {
            Some(verifier) => {
                verifier
                    .check(client, claim, &route.partner_email, raw)
                    .await
            }
            None => verify::decide_unverified(&claim),
        };
        match verdict {
            Verdict::Accept => {}
            Verdict::Refuse(check) => {
                self.metrics.sender_refused(check);
                tracing::debug!(alias = %route.alias, check, "message refused: sender not accepted");
            }
            Verdict::TryLater(check) => {
                tracing::debug!(alias = %route.alias, check, "message deferred: sender authentication incomplete");
            }
        }
        verdict
    }
}
