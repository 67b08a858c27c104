//! SLA entries: one per provider commitment, each watched by two durable timers.
//!
//! Lifecycle: `pending` → `at_risk` → `breached`; `met` when fulfilled before due (also from
//! `at_risk`); `cancelled` when the booking is cancelled or re-routed away. `met`, `breached` and
//! `cancelled` are final: a late timer for a final entry changes nothing.

use crate::effect::{TimerPhase, TimerSpec};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum SlaKind {
    Acceptance,
    Fulfilment,
    Report,
}

impl SlaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaKind::Acceptance => "acceptance",
            SlaKind::Fulfilment => "fulfilment",
            SlaKind::Report => "report",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SlaState {
    Pending,
    AtRisk,
    Met,
    Breached,
    Cancelled,
}

impl SlaState {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaState::Pending => "pending",
            SlaState::AtRisk => "at_risk",
            SlaState::Met => "met",
            SlaState::Breached => "breached",
            SlaState::Cancelled => "cancelled",
        }
    }
    pub fn is_open(self) -> bool {
        matches!(self, SlaState::Pending | SlaState::AtRisk)
    }
}

/// One commitment of the routed provider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlaEntry {
    pub kind: SlaKind,
    pub started_at: Timestamp,
    pub due_at: Timestamp,
    pub at_risk_at: Timestamp,
    pub state: SlaState,
    pub met_at: Option<Timestamp>,
    pub breached_at: Option<Timestamp>,
}

impl SlaEntry {
    /// A new pending entry; the at-risk point is `at_risk_ratio` of the window.
    pub fn open(kind: SlaKind, now: Timestamp, due_at: Timestamp, at_risk_ratio: f64) -> SlaEntry {
        SlaEntry {
            kind,
            started_at: now,
            due_at,
            at_risk_at: now.fraction_towards(due_at, at_risk_ratio),
            state: SlaState::Pending,
            met_at: None,
            breached_at: None,
        }
    }

    /// The two timers that watch this entry.
    pub fn timers(&self) -> [TimerSpec; 2] {
        [
            TimerSpec {
                due: self.at_risk_at,
                kind: self.kind,
                phase: TimerPhase::AtRisk,
            },
            TimerSpec {
                due: self.due_at,
                kind: self.kind,
                phase: TimerPhase::Due,
            },
        ]
    }

    /// Fulfilled: `met` if still open. Returns whether the entry changed.
    pub fn meet(&mut self, now: Timestamp) -> bool {
        if !self.state.is_open() {
            return false;
        }
        self.state = SlaState::Met;
        self.met_at = Some(now);
        true
    }

    /// Booking cancelled or re-routed away. Returns whether the entry changed.
    pub fn cancel(&mut self) -> bool {
        if !self.state.is_open() {
            return false;
        }
        self.state = SlaState::Cancelled;
        true
    }

    /// A timer fired. Returns the new state if the entry changed; a stale timer returns `None`.
    pub fn fire(&mut self, phase: TimerPhase, now: Timestamp) -> Option<SlaState> {
        match (self.state, phase) {
            (SlaState::Pending, TimerPhase::AtRisk) => {
                self.state = SlaState::AtRisk;
                Some(SlaState::AtRisk)
            }
            (SlaState::Pending | SlaState::AtRisk, TimerPhase::Due) => {
                self.state = SlaState::Breached;
                self.breached_at = Some(now);
                Some(SlaState::Breached)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> SlaEntry {
        SlaEntry::open(SlaKind::Acceptance, Timestamp(0), Timestamp(10_000), 0.8)
    }

    #[test]
    fn at_risk_point_is_the_ratio_of_the_window() {
        assert_eq!(entry().at_risk_at, Timestamp(8_000));
    }

    #[test]
    fn met_entries_never_breach() {
        let mut e = entry();
        assert!(e.meet(Timestamp(5)));
        assert_eq!(e.fire(TimerPhase::Due, Timestamp(10_000)), None);
        assert_eq!(e.state, SlaState::Met);
    }

    proptest! {
        /// Any order of operations keeps the lifecycle legal: final states stay final.
        #[test]
        fn lifecycle_is_monotonic(ops in proptest::collection::vec(0u8..4, 0..20)) {
            let mut e = entry();
            let mut finals = None;
            for op in ops {
                let before = e.state;
                match op {
                    0 => { e.fire(TimerPhase::AtRisk, Timestamp(8_000)); }
                    1 => { e.fire(TimerPhase::Due, Timestamp(10_000)); }
                    2 => { e.meet(Timestamp(1)); }
                    _ => { e.cancel(); }
                }
                if let Some(f) = finals { prop_assert_eq!(e.state, f); }
                if !e.state.is_open() && finals.is_none() { finals = Some(e.state); }
                if before == SlaState::AtRisk { prop_assert_ne!(e.state, SlaState::Pending); }
                prop_assert_eq!(e.breached_at.is_some(), e.state == SlaState::Breached);
            }
        }
    }
}
