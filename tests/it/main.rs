//! The integration tests, one crate: the real fakeups and fakeupsctl
//! binaries against real ICMP in network namespaces, a real upsd with
//! dummy-ups, and the man pages. One crate links once and lets rustc's
//! dead-code lint see every use of the fixtures in `support`.

mod check_config;
mod control;
mod control_load;
mod daemon;
mod faults;
mod hooks;
mod leftovers;
mod logging;
mod loss;
mod man_pages;
mod privileges;
mod sentry;
mod support;
mod wake;
mod wall_clock;
