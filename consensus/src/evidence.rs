//! Evidence in the engine: a conflict the vote tracker finds, or evidence a
//! peer gossips, is verified, handed to the actor once and broadcast once.
//!
//! The engine does not decide which evidence a block records: like
//! attestations, the actor keeps it until a committed block holds it, offers
//! it in [`crate::Input::Propose`], and checks a proposal's evidence when it
//! checks the payload ([`crate::Output::Verify`]). The header commits to it,
//! so the block's certificate certifies it.

use lotline_core::evidence::{Evidence, EvidenceKey, EvidenceKind};

use crate::config::EVIDENCE_SEEN_MAX;
use crate::engine::Engine;
use crate::{DropReason, Message, Output};

/// What the engine remembers about reported evidence: its key, lowest views
/// first so the oldest are forgotten when the set is full.
pub(crate) type Seen = std::collections::BTreeSet<(u64, u16, EvidenceKind)>;

impl Engine {
    /// Evidence from a peer (it may come from anyone in the set, about
    /// anyone, for any view: it is self-verifying). Known offences are
    /// ignored before any signature check.
    pub(crate) fn on_evidence(&mut self, evidence: Evidence) -> Result<(), DropReason> {
        let (key, public) = evidence.check(&self.set).map_err(DropReason::Evidence)?;
        if self.evidence_seen.contains(&seen(key)) {
            return Ok(());
        }
        let public = *public;
        let messages = [
            evidence.first.signing_bytes(&self.config.chain_id),
            evidence.second.signing_bytes(&self.config.chain_id),
        ];
        let verdicts = self.config.verifier.verify(&[
            (public, messages[0].as_slice(), evidence.first.signature),
            (public, messages[1].as_slice(), evidence.second.signature),
        ]);
        assert!(
            verdicts.len() == 2,
            "verifier returned {verdicts:?} for two"
        );
        if verdicts != [true, true] {
            return Err(DropReason::BadSignature(key.signer));
        }
        self.report_evidence(evidence);
        Ok(())
    }

    /// Reports verified evidence (from the tracker or a peer) once per
    /// offence: to the actor, and to every peer. Evidence against ourselves
    /// is reported too, not asserted: it means our key signs somewhere else
    /// as well (the actor must alarm). Our own signing rules are asserted in
    /// `Own`.
    pub(crate) fn report_evidence(&mut self, evidence: Evidence) {
        let Some(key) = evidence.key() else {
            unreachable!("reported evidence always conflicts: {evidence:?}");
        };
        if !self.evidence_seen.insert(seen(key)) {
            return;
        }
        if self.evidence_seen.len() > EVIDENCE_SEEN_MAX {
            self.evidence_seen.pop_first();
        }
        self.out.push(Output::Broadcast(Message::Evidence(Box::new(
            evidence.clone(),
        ))));
        self.out.push(Output::Evidence(evidence));
    }
}

fn seen(key: EvidenceKey) -> (u64, u16, EvidenceKind) {
    (key.view, key.signer, key.kind)
}
