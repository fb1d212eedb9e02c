use super::*;

const S: Duration = Duration::from_secs(1);

fn settings() -> WakeSettings {
    WakeSettings {
        nut_clients: true,
        after: 120 * S,
        retry_every: 30 * S,
        give_up_after: 1800 * S,
    }
}

fn mac(last: u8) -> Mac {
    Mac([0x00, 0x11, 0x32, 0xaa, 0xbb, last])
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([192, 168, 1, last])
}

fn nas_host() -> HostSpec {
    HostSpec {
        name: "nas".into(),
        mac: mac(0xcc),
        address: Some(ip(20)),
        interface: None,
    }
}

fn none() -> HashSet<IpAddr> {
    HashSet::new()
}

/// An outage at `t0` in which clients .10 (MAC known) and .11 (no MAC)
/// were logged in, then OL at t0 + 600 s.
fn outage_then_mains(t0: Instant) -> Wake {
    let mut w = Wake::new(settings());
    w.begin_outage(Local::now(), false, &[]);
    w.power(t0, true, false);
    let added = w.clients_seen(t0, &[(ip(10), Some(mac(1))), (ip(11), None)]);
    assert_eq!(added.len(), 2);
    w.power(t0 + 600 * S, false, true);
    w
}

#[test]
fn a_mac_is_six_hex_bytes_of_a_network_card() {
    assert_eq!(
        "00:11:32:AA:bb:cc".parse::<Mac>().unwrap().to_string(),
        "00:11:32:aa:bb:cc"
    );
    assert_eq!("00-11-32-aa-bb-cc".parse::<Mac>().unwrap(), mac(0xcc));
    for bad in [
        "",
        "00:11:32:aa:bb",
        "00:11:32:aa:bb:cc:dd",
        "0:11:32:aa:bb:cc0",
        "zz:11:32:aa:bb:cc",
    ] {
        assert!(
            bad.parse::<Mac>().unwrap_err().contains("not a MAC"),
            "{bad}"
        );
    }
    assert!(
        "00:00:00:00:00:00"
            .parse::<Mac>()
            .unwrap_err()
            .contains("all zeros")
    );
    assert!(
        "ff:ff:ff:ff:ff:ff"
            .parse::<Mac>()
            .unwrap_err()
            .contains("broadcast")
    );
    assert!(
        "01:00:5e:00:00:01"
            .parse::<Mac>()
            .unwrap_err()
            .contains("multicast")
    );
}

#[test]
fn the_magic_packet_is_six_ff_then_the_mac_sixteen_times() {
    let p = magic_packet(mac(0xcc));
    assert_eq!(p.len(), 102);
    assert_eq!(&p[..6], &[0xff; 6]);
    for i in 0..16 {
        assert_eq!(&p[6 + 6 * i..12 + 6 * i], &mac(0xcc).0, "repetition {i}");
    }
}

#[test]
fn nothing_goes_out_before_power_is_back_for_after() {
    let t0 = Instant::now();
    let mut w = outage_then_mains(t0);
    let back = t0 + 600 * S;
    assert_eq!(w.due(), Some(back + 120 * S));
    assert_eq!(w.first_packet_at(), Some(back + 120 * S));
    let (jobs, _) = w.step(back + 119 * S, &none());
    assert!(jobs.is_empty());
    // A round with a silent quorum is a break: the wait starts again.
    w.power(back + 100 * S, false, false);
    assert_eq!(w.due(), None);
    w.power(back + 110 * S, false, true);
    assert_eq!(w.due(), Some(back + 230 * S));
    let (jobs, changes) = w.step(back + 230 * S, &none());
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].name, "192.168.1.10");
    assert_eq!(jobs[0].ping_first, None);
    assert_eq!(
        changes,
        vec![Change::NoMac {
            name: "192.168.1.11".into()
        }]
    );
    assert_eq!(w.waking(), Some(1));
    assert_eq!(
        Wake::describe(&w.targets()[0]),
        "down, first packet going out"
    );
}

#[test]
fn packets_repeat_until_the_client_logs_in_again_then_stop() {
    let t0 = Instant::now();
    let mut w = outage_then_mains(t0);
    let first = t0 + 720 * S;
    let (jobs, _) = w.step(first, &none());
    let sent = w.step_done(
        first,
        &[(
            jobs[0].name.clone(),
            JobResult::Sent("192.168.1.255:9".into()),
        )],
    );
    assert!(matches!(&sent[0], Change::Sent { count: 1, .. }));
    assert_eq!(w.due(), Some(first + 30 * S));
    let (jobs, _) = w.step(first + 30 * S, &none());
    assert_eq!(jobs.len(), 1);
    w.step_done(
        first + 30 * S,
        &[(jobs[0].name.clone(), JobResult::Sent("x".into()))],
    );
    // Logged in again between two steps: up, and the wake is over.
    let changes = w.clients_seen(first + 45 * S, &[(ip(10), Some(mac(1)))]);
    assert_eq!(
        changes,
        vec![
            Change::Up {
                name: "192.168.1.10".into(),
                after: Some(45 * S)
            },
            Change::Finished { up: 1, gave_up: 1 }
        ]
    );
    assert_eq!(w.due(), None);
    assert_eq!(w.outage(), None);
    assert_eq!(Wake::describe(&w.targets()[0]), "up after 45s");
}

#[test]
fn a_client_still_logged_in_at_the_first_step_stayed_up_and_gets_nothing() {
    let t0 = Instant::now();
    let mut w = outage_then_mains(t0);
    // Still logged in before the first step: it may be shutting down.
    assert!(w.clients_seen(t0 + 650 * S, &[(ip(10), None)]).is_empty());
    let logged_in: HashSet<IpAddr> = [ip(10)].into();
    let (jobs, changes) = w.step(t0 + 720 * S, &logged_in);
    assert!(jobs.is_empty());
    assert!(changes.contains(&Change::Up {
        name: "192.168.1.10".into(),
        after: None
    }));
    assert_eq!(Wake::describe(&w.targets()[0]), "stayed up");
    assert!(matches!(
        changes.last(),
        Some(Change::Finished { up: 1, gave_up: 1 })
    ));
}

#[test]
fn a_host_is_pinged_first_and_given_up_after_give_up_after() {
    let t0 = Instant::now();
    let mut w = Wake::new(settings());
    w.begin_outage(Local::now(), false, &[nas_host()]);
    w.power(t0, true, false);
    w.power(t0 + 60 * S, false, true);
    let mut at = t0 + 180 * S;
    let mut packets = 0;
    loop {
        let (jobs, changes) = w.step(at, &none());
        if let Some(Change::GaveUp { sent, .. }) = changes.first() {
            assert_eq!(*sent, packets);
            break;
        }
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].ping_first, Some(ip(20)));
        w.step_done(
            at,
            &[("nas".into(), JobResult::Sent("192.168.1.255:9".into()))],
        );
        packets += 1;
        at += 30 * S;
    }
    // 0 s, 30 s, ... 1770 s: the one at 1800 s is not sent.
    assert_eq!(packets, 60);
    assert_eq!(w.outage(), None);
    assert_eq!(
        Wake::describe(&w.targets()[0]),
        "gave up after 60 packet(s)"
    );
}

#[test]
fn a_host_that_answers_the_first_ping_stayed_up() {
    let t0 = Instant::now();
    let mut w = Wake::new(settings());
    w.begin_outage(Local::now(), false, &[nas_host()]);
    w.power(t0, false, true);
    let (jobs, _) = w.step(t0 + 120 * S, &none());
    let changes = w.step_done(t0 + 120 * S, &[(jobs[0].name.clone(), JobResult::Answered)]);
    assert_eq!(
        changes[0],
        Change::Up {
            name: "nas".into(),
            after: None
        }
    );
}

#[test]
fn a_configured_host_is_not_added_again_as_a_client_and_takes_a_mac_it_lacks() {
    let mut w = Wake::new(settings());
    w.begin_outage(Local::now(), false, &[nas_host()]);
    let t0 = Instant::now();
    assert!(w.clients_seen(t0, &[(ip(20), Some(mac(9)))]).is_empty());
    assert_eq!(w.targets().len(), 1);
    assert_eq!(w.targets()[0].mac, Some(mac(0xcc)));
    let mut off = Wake::new(WakeSettings {
        nut_clients: false,
        ..settings()
    });
    off.begin_outage(Local::now(), false, &[]);
    assert!(off.clients_seen(t0, &[(ip(10), Some(mac(1)))]).is_empty());
    assert!(off.targets().is_empty());
}

#[test]
fn the_record_keeps_the_timings_within_a_boot_and_restarts_them_after_a_reboot() {
    let t0 = Instant::now();
    let mut w = outage_then_mains(t0);
    let (jobs, _) = w.step(t0 + 720 * S, &none());
    w.step_done(
        t0 + 720 * S,
        &[(jobs[0].name.clone(), JobResult::Sent("x".into()))],
    );
    let now = t0 + 730 * S;
    let at = Moment {
        wall: Local::now(),
        boot_id: Some("boot-a".into()),
        since_boot: Some(10_000 * S),
    };
    let record = w.record(now, &at);
    let text = serde_json::to_string(&record).unwrap();
    let back: WakeRecord = serde_json::from_str(&text).unwrap();
    assert_eq!(back, record);
    // A restart 5 s later, in the same boot: the next packet is still due
    // 30 s after the last.
    let later = Instant::now() + 1000 * S;
    let at2 = Moment {
        since_boot: Some(10_005 * S),
        ..at.clone()
    };
    let r = Wake::restore(settings(), back.clone(), later, &at2);
    assert_eq!(r.due(), Some(later + 15 * S));
    assert_eq!(r.targets()[0].sent, 1);
    // After a reboot: the progress is kept, the wait starts when power is
    // seen back.
    let at3 = Moment {
        boot_id: Some("boot-b".into()),
        since_boot: Some(20 * S),
        ..at
    };
    let mut r = Wake::restore(settings(), back, later, &at3);
    assert_eq!(r.due(), None);
    assert_eq!(r.targets()[0].sent, 1);
    r.power(later, false, true);
    assert_eq!(r.due(), Some(later + 120 * S));
}

#[test]
fn a_new_outage_during_a_wake_keeps_the_clients_still_down() {
    let t0 = Instant::now();
    let mut w = outage_then_mains(t0);
    let (jobs, _) = w.step(t0 + 720 * S, &none());
    w.step_done(
        t0 + 720 * S,
        &[(jobs[0].name.clone(), JobResult::Sent("x".into()))],
    );
    w.begin_outage(Local::now(), false, &[]);
    let names: Vec<_> = w.targets().iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["192.168.1.10", "192.168.1.11"]);
    assert!(
        w.targets()
            .iter()
            .all(|t| t.state == TargetState::Down && t.sent == 0)
    );
    assert_eq!(w.due(), None);
}

#[test]
fn a_target_whose_packets_cannot_be_sent_is_given_up_too() {
    let t0 = Instant::now();
    let mut w = Wake::new(settings());
    w.begin_outage(
        Local::now(),
        false,
        &[HostSpec {
            interface: Some("eht0".into()),
            address: None,
            ..nas_host()
        }],
    );
    w.power(t0, false, true);
    let mut at = t0 + 120 * S;
    let mut steps = 0;
    while w.due().is_some() {
        let (jobs, _) = w.step(at, &none());
        if let Some(job) = jobs.first() {
            let failed = JobResult::Failed("eht0 has no connected IPv4 subnet".into());
            w.step_done(at, &[(job.name.clone(), failed)]);
        }
        steps += 1;
        at += 30 * S;
        assert!(steps < 100, "never given up");
    }
    assert_eq!(w.targets()[0].state, TargetState::GaveUp);
    assert_eq!(w.targets()[0].failed, 60);
    assert_eq!(w.outage(), None);
}

#[test]
fn an_outage_with_nobody_to_wake_ends_when_power_is_back() {
    let t0 = Instant::now();
    let mut w = Wake::new(settings());
    w.begin_outage(Local::now(), false, &[]);
    w.power(t0, true, false);
    assert!(w.outage().is_some());
    w.power(t0 + 60 * S, false, true);
    assert_eq!(w.outage(), None);
    assert_eq!(w.first_packet_at(), None);
    assert_eq!(w.due(), None);
}

#[test]
fn a_record_saved_while_waiting_for_power_again_keeps_the_give_up_clock_in_its_boot() {
    let t0 = Instant::now();
    let mut w = outage_then_mains(t0);
    let (jobs, _) = w.step(t0 + 720 * S, &none());
    w.step_done(
        t0 + 720 * S,
        &[(jobs[0].name.clone(), JobResult::Sent("x".into()))],
    );
    // A pause: not mains; only the first step's time is left to save.
    w.power(t0 + 730 * S, false, false);
    let at = Moment {
        wall: Local::now(),
        boot_id: Some("boot-a".into()),
        since_boot: Some(10_000 * S),
    };
    let record = w.record(t0 + 730 * S, &at);
    assert!(record.mains_since.is_none() && record.next_step.is_none());
    let later = Instant::now() + 1000 * S;
    let mut r = Wake::restore(settings(), record, later, &at);
    assert_eq!(r.waking(), Some(1));
    // Power back for `after`, then the step gives up at once: the first
    // packet was 1800 s before.
    r.power(later + 1790 * S, false, true);
    let (jobs, changes) = r.step(later + 1910 * S, &none());
    assert!(jobs.is_empty(), "{jobs:?}");
    assert!(
        matches!(changes[0], Change::GaveUp { sent: 1, .. }),
        "{changes:?}"
    );
}
