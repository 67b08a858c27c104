//! The booking machine: every edge of the table, refusals, and a property test over random
//! command sequences.

use proptest::prelude::*;
use workflows::booking::LedgerRef;
use workflows::booking::{
    apply, Address, Amounts, BookingCommand, BookingRecord, BookingState, Mode, NewBooking,
    ProviderTerms, RouteChoice, RouteTrigger, SlaRules, Slot,
};
use workflows::effect::{CapacityMove, CaseType, Effect, EventType, TimerPhase, TimerSpec};
use workflows::eligibility::{CoverLine, MoveKind};
use workflows::sla::{SlaKind, SlaState};
use workflows::Date;
use workflows::{
    BookingId, MemberId, Millis, Paise, PartnerId, PolicyId, ProviderId, ServiceCode, Timestamp,
};

const MIN: i64 = 60_000;

fn route(provider: Option<&str>, attempt: u32, trigger: RouteTrigger, now: i64) -> RouteChoice {
    RouteChoice {
        attempt,
        trigger,
        decided_at: Timestamp(now),
        provider_id: provider.map(|p| ProviderId::parse(p).unwrap()),
        terms: provider.map(|_| ProviderTerms {
            accept_within: Millis(30 * MIN),
            fulfil_grace: Millis(120 * MIN),
            amounts: Amounts {
                gross: Paise(40_000),
                covered: Paise(32_000),
                copay: Paise(8_000),
            },
            cover: vec![CoverLine {
                benefit: "category:lab".into(),
                gross: Paise(40_000),
                covered: Paise(32_000),
                copay: Paise(8_000),
            }],
        }),
        candidates: vec![],
        excluded: vec![],
    }
}

fn admit() -> (BookingRecord, Vec<Effect>) {
    let new = NewBooking {
        id: BookingId(uuid::Uuid::from_u128(7)),
        partner_id: PartnerId::parse("p1").unwrap(),
        member_id: MemberId::parse("m1").unwrap(),
        policy_id: PolicyId::parse("pol").unwrap(),
        services: vec![ServiceCode::parse("CBC").unwrap()],
        mode: Mode::HomeCollection,
        slot: Slot {
            start: Timestamp(1000 * MIN),
            end: Timestamp(1060 * MIN),
        },
        address: Address {
            pincode: "560001".into(),
            lat: None,
            lon: None,
        },
        partner_ref: None,
        report_tat: Millis(24 * 60 * MIN),
        ledger: LedgerRef {
            holder: MemberId::parse("m1").unwrap(),
            policy_id: PolicyId::parse("pol").unwrap(),
            year_start: Date(0),
        },
    };
    BookingRecord::admit(
        new,
        route(Some("lab-a"), 1, RouteTrigger::Initial, 0),
        &SlaRules::default(),
        Timestamp(0),
    )
    .unwrap()
}

fn step(r: &BookingRecord, cmd: BookingCommand, now: i64) -> (BookingRecord, Vec<Effect>) {
    apply(r, &cmd, &SlaRules::default(), Timestamp(now)).unwrap()
}

fn emitted(fx: &[Effect]) -> Vec<EventType> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Emit(t) => Some(*t),
            _ => None,
        })
        .collect()
}

#[test]
fn admission_routes_reserves_and_arms_the_acceptance_sla() {
    let (r, fx) = admit();
    assert_eq!(r.state(), BookingState::PendingProvider);
    assert_eq!(r.booking.version, 1);
    assert_eq!(r.booking.sla[0].kind, SlaKind::Acceptance);
    assert_eq!(r.booking.sla[0].due_at, Timestamp(30 * MIN));
    assert_eq!(r.booking.sla[0].at_risk_at, Timestamp(24 * MIN));
    assert!(fx.contains(&Effect::Capacity {
        provider_id: ProviderId::parse("lab-a").unwrap(),
        movement: CapacityMove::Reserve
    }));
    assert_eq!(
        fx.iter()
            .filter(|e| matches!(e, Effect::ArmTimer(_)))
            .count(),
        2
    );
    assert_eq!(emitted(&fx), vec![EventType::BookingCreated]);
}

#[test]
fn happy_path_walks_every_sla() {
    let (r, _) = admit();
    let (r, fx) = step(&r, BookingCommand::Accept, MIN);
    assert_eq!(r.state(), BookingState::Confirmed);
    assert_eq!(emitted(&fx), vec![EventType::BookingConfirmed]);
    assert_eq!(r.booking.sla[0].state, SlaState::Met);
    assert_eq!(r.booking.sla[1].due_at, Timestamp(1180 * MIN));
    let (r, fx) = step(&r, BookingCommand::SampleCollected, 1010 * MIN);
    assert_eq!(r.state(), BookingState::InProgress);
    assert_eq!(emitted(&fx), vec![EventType::BookingInProgress]);
    assert_eq!(r.booking.sla[2].due_at, Timestamp((1010 + 24 * 60) * MIN));
    let (r, _) = step(
        &r,
        BookingCommand::ReportReady {
            report_url: Some("https://r/1".into()),
        },
        1100 * MIN,
    );
    assert_eq!(r.state(), BookingState::InProgress);
    assert_eq!(r.booking.sla[2].state, SlaState::Met);
    let (r, fx) = step(
        &r,
        BookingCommand::Completed {
            billed: Some(Paise(39_000)),
        },
        1200 * MIN,
    );
    assert_eq!(r.state(), BookingState::Completed);
    assert_eq!(r.booking.billed, Some(Paise(39_000)));
    assert_eq!(emitted(&fx), vec![EventType::BookingCompleted]);
    assert_eq!(r.booking.version, 5);
    assert!(r.booking.sla.iter().all(|e| e.state == SlaState::Met));
}

#[test]
fn reject_reroutes_then_fails_with_a_case_and_releases_capacity() {
    let (r, _) = admit();
    let next = route(Some("lab-b"), 2, RouteTrigger::Rejected, MIN);
    let (r, fx) = step(&r, BookingCommand::Reject { reason: None, next }, MIN);
    assert_eq!(r.state(), BookingState::PendingProvider);
    assert_eq!(r.booking.provider_id, ProviderId::parse("lab-b").ok());
    assert_eq!(emitted(&fx), vec![EventType::BookingRerouted]);
    assert_eq!(r.booking.sla[0].state, SlaState::Cancelled);
    assert_eq!(r.booking.sla[1].state, SlaState::Pending);
    assert_eq!(r.booking.tried().len(), 2);
    let none = route(None, 3, RouteTrigger::Rejected, 2 * MIN);
    let (r, fx) = step(
        &r,
        BookingCommand::Reject {
            reason: None,
            next: none,
        },
        2 * MIN,
    );
    assert_eq!(r.state(), BookingState::Failed);
    assert_eq!(r.booking.provider_id, None);
    assert!(fx.contains(&Effect::Capacity {
        provider_id: ProviderId::parse("lab-b").unwrap(),
        movement: CapacityMove::Release
    }));
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::OpenCase {
            case_type: CaseType::NoProvider,
            ..
        }
    )));
    assert_eq!(emitted(&fx), vec![EventType::BookingFailed,]);
}

#[test]
fn acceptance_breach_reroutes_and_opens_a_case() {
    let (r, _) = admit();
    let at_risk = TimerSpec {
        due: Timestamp(24 * MIN),
        kind: SlaKind::Acceptance,
        phase: TimerPhase::AtRisk,
    };
    let (r, fx) = step(
        &r,
        BookingCommand::TimerFired {
            timer: at_risk,
            next: None,
        },
        24 * MIN,
    );
    assert_eq!(emitted(&fx), vec![EventType::SlaAtRisk]);
    assert_eq!(r.booking.sla[0].state, SlaState::AtRisk);
    let due = TimerSpec {
        due: Timestamp(30 * MIN),
        kind: SlaKind::Acceptance,
        phase: TimerPhase::Due,
    };
    let next = route(Some("lab-b"), 2, RouteTrigger::AcceptanceBreach, 30 * MIN);
    let (r, fx) = step(
        &r,
        BookingCommand::TimerFired {
            timer: due,
            next: Some(next),
        },
        30 * MIN,
    );
    assert_eq!(r.booking.sla[0].state, SlaState::Breached);
    assert_eq!(r.booking.provider_id, ProviderId::parse("lab-b").ok());
    let ev = emitted(&fx);
    assert!(ev.contains(&EventType::SlaBreached) && ev.contains(&EventType::BookingRerouted));
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::OpenCase {
            case_type: CaseType::SlaBreach,
            ..
        }
    )));
    // The same timer again is stale: nothing changes but the version.
    let (r2, fx2) = step(
        &r,
        BookingCommand::TimerFired {
            timer: due,
            next: None,
        },
        31 * MIN,
    );
    assert!(fx2.is_empty());
    assert_eq!(r2.booking.sla, r.booking.sla);
}

#[test]
fn terminal_states_refuse_commands_but_ignore_late_timers() {
    let (r, _) = admit();
    let (r, fx) = step(
        &r,
        BookingCommand::Cancel {
            reason: "member asked".into(),
        },
        MIN,
    );
    assert_eq!(r.state(), BookingState::Cancelled);
    assert_eq!(emitted(&fx), vec![EventType::BookingCancelled]);
    assert!(r.booking.sla.iter().all(|e| e.state == SlaState::Cancelled));
    for cmd in [
        BookingCommand::Accept,
        BookingCommand::NoShow,
        BookingCommand::Cancel {
            reason: "again".into(),
        },
    ] {
        let err = apply(&r, &cmd, &SlaRules::default(), Timestamp(2 * MIN)).unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{err}");
    }
    let late = TimerSpec {
        due: Timestamp(30 * MIN),
        kind: SlaKind::Acceptance,
        phase: TimerPhase::Due,
    };
    assert!(apply(
        &r,
        &BookingCommand::TimerFired {
            timer: late,
            next: None
        },
        &SlaRules::default(),
        Timestamp(30 * MIN)
    )
    .is_ok());
}

#[test]
fn commands_out_of_order_are_refused() {
    let (r, _) = admit();
    for cmd in [
        BookingCommand::Started,
        BookingCommand::Completed { billed: None },
        BookingCommand::ReportReady { report_url: None },
    ] {
        assert!(apply(&r, &cmd, &SlaRules::default(), Timestamp(MIN)).is_err());
    }
    let (c, _) = step(&r, BookingCommand::Accept, MIN);
    assert!(apply(
        &c,
        &BookingCommand::Accept,
        &SlaRules::default(),
        Timestamp(MIN)
    )
    .is_err());
    let next = route(Some("lab-b"), 2, RouteTrigger::Rejected, MIN);
    assert!(apply(
        &c,
        &BookingCommand::Reject { reason: None, next },
        &SlaRules::default(),
        Timestamp(MIN)
    )
    .is_err());
}

#[test]
fn reschedule_rearms_the_fulfilment_sla() {
    let (r, _) = admit();
    let (r, _) = step(&r, BookingCommand::Accept, MIN);
    let slot = Slot {
        start: Timestamp(2000 * MIN),
        end: Timestamp(2060 * MIN),
    };
    let (r, fx) = step(
        &r,
        BookingCommand::Reschedule {
            slot,
            fulfil_grace: Millis(120 * MIN),
        },
        2 * MIN,
    );
    assert_eq!(r.booking.slot, slot);
    let open: Vec<_> = r.booking.sla.iter().filter(|e| e.state.is_open()).collect();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].due_at, Timestamp(2180 * MIN));
    assert_eq!(
        fx.iter()
            .filter(|e| matches!(e, Effect::CancelTimer(_)))
            .count(),
        2
    );
    assert_eq!(
        fx.iter()
            .filter(|e| matches!(e, Effect::ArmTimer(_)))
            .count(),
        2
    );
}

/// Net visits reserved by a list of effects (reserve +1, consume or release of a visit −1).
fn visits(fx: &[Effect]) -> i64 {
    fx.iter()
        .map(|e| match e {
            Effect::Entitlement {
                kind: MoveKind::Reserve,
                count,
                ..
            } => *count as i64,
            Effect::Entitlement {
                kind: MoveKind::Consume | MoveKind::Release,
                count,
                ..
            } => -(*count as i64),
            _ => 0,
        })
        .sum()
}

fn any_command() -> impl Strategy<Value = BookingCommand> {
    let kinds = prop_oneof![
        Just(SlaKind::Acceptance),
        Just(SlaKind::Fulfilment),
        Just(SlaKind::Report)
    ];
    let phases = prop_oneof![Just(TimerPhase::AtRisk), Just(TimerPhase::Due)];
    prop_oneof![
        Just(BookingCommand::Accept),
        any::<bool>().prop_map(|some| BookingCommand::Reject {
            reason: None,
            next: route(
                if some { Some("lab-z") } else { None },
                2,
                RouteTrigger::Rejected,
                0
            )
        }),
        Just(BookingCommand::SampleCollected),
        Just(BookingCommand::Started),
        Just(BookingCommand::ReportReady { report_url: None }),
        Just(BookingCommand::Completed { billed: None }),
        Just(BookingCommand::NoShow),
        Just(BookingCommand::Cancel { reason: "r".into() }),
        (0i64..5000).prop_map(|s| BookingCommand::Reschedule {
            slot: Slot {
                start: Timestamp(s * MIN),
                end: Timestamp((s + 60) * MIN)
            },
            fulfil_grace: Millis(MIN)
        }),
        any::<bool>().prop_map(|some| BookingCommand::Reassign {
            next: route(
                if some { Some("lab-y") } else { None },
                2,
                RouteTrigger::Reassign,
                0
            )
        }),
        (1i64..120).prop_map(|m| BookingCommand::ExtendSla {
            by: Millis(m * MIN)
        }),
        (0i64..20_000).prop_map(|p| BookingCommand::WaiveCopay {
            extra: vec![("category:lab".into(), Paise(p))]
        }),
        prop_oneof![
            Just(BookingState::Completed),
            Just(BookingState::Cancelled),
            Just(BookingState::NoShow),
            Just(BookingState::Confirmed)
        ]
        .prop_map(|to| BookingCommand::ForceTransition {
            to,
            reason: "ops".into()
        }),
        (kinds, phases, 0i64..3000, any::<bool>()).prop_map(|(kind, phase, due, reroute)| {
            BookingCommand::TimerFired {
                timer: TimerSpec {
                    due: Timestamp(due * MIN),
                    kind,
                    phase,
                },
                next: reroute.then(|| route(Some("lab-x"), 2, RouteTrigger::AcceptanceBreach, 0)),
            }
        }),
    ]
}

proptest! {
    /// Random command sequences never panic and never reach an invalid state: a refused
    /// command changes nothing, terminal states stay terminal, the version counts accepted
    /// commands, at most one SLA entry per kind is open, and capacity moves balance.
    #[test]
    fn random_sequences_keep_the_booking_valid(cmds in proptest::collection::vec(any_command(), 0..40)) {
        let (mut r, fx) = admit();
        let mut reserved: i64 = fx.iter().filter(|e| matches!(e, Effect::Capacity { movement: CapacityMove::Reserve, .. })).count() as i64;
        // Entitlement visits held (reserved and not yet consumed or released).
        let mut held: i64 = visits(&fx);
        let mut now = 0;
        for cmd in cmds {
            now += MIN;
            let before = r.clone();
            match apply(&r, &cmd, &SlaRules::default(), Timestamp(now)) {
                Ok((next, fx)) => {
                    prop_assert_eq!(next.booking.version, before.booking.version + 1);
                    if before.state().is_terminal() {
                        prop_assert_eq!(next.state(), before.state());
                        prop_assert!(fx.is_empty());
                    }
                    held += visits(&fx);
                    for e in &fx {
                        if let Effect::Capacity { movement, .. } = e {
                            reserved += match movement { CapacityMove::Reserve => 1, CapacityMove::Release => -1 };
                        }
                    }
                    r = next;
                }
                Err(_) => prop_assert_eq!(&r, &before),
            }
            prop_assert!(reserved == 0 || reserved == 1, "capacity reserved {}", reserved);
            prop_assert!(held == 0 || held == 1, "entitlement visits held {}", held);
            let active = !r.state().is_terminal();
            prop_assert_eq!(held == 1, active);
            let holds = r.booking.provider_id.is_some() && !matches!(r.state(), BookingState::Cancelled | BookingState::NoShow | BookingState::Failed);
            prop_assert_eq!(reserved == 1, holds);
            for kind in [SlaKind::Acceptance, SlaKind::Fulfilment, SlaKind::Report] {
                let open = r.booking.sla.iter().filter(|e| e.kind == kind && e.state.is_open()).count();
                prop_assert!(open <= 1);
            }
            if r.state().is_terminal() {
                prop_assert!(r.booking.sla.iter().all(|e| !e.state.is_open()) || r.state() == BookingState::Completed);
            }
            prop_assert_eq!(r.booking.provider_id.is_none(), r.state() == BookingState::Failed);
        }
    }
}
