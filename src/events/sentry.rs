//! `[sentry] dsn`: what fakeups reports to Sentry, as the original FakeUPS
//! did. Three things go there:
//!
//! - the power transitions, one event each: OB at level warning, OB LB at
//!   error, OL at info (`Reporter::transition`, from `Outlets::emit`);
//! - every ERROR and CRITICAL line of the log, but for the lines of those
//!   transitions (they carry FAKEUPS_EVENT): the log's tap, `on_line`;
//! - a panic, captured and sent before the process aborts (the release
//!   profile has panic = "abort"): the panic hook, installed once.
//!
//! Each event carries its structured fields and the last log lines as
//! breadcrumbs. Events are queued to the outbox's thread (outbox.rs); the
//! loop never waits for Sentry.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::panic::PanicHookInfo;
use std::sync::{Arc, Mutex, Once, RwLock};
use std::time::{Duration, SystemTime};

use sentry::protocol::{Breadcrumb, Event as SentryEvent, Exception, Level as SentryLevel, Value};
use sentry::types::Dsn;

use super::outbox::Outbox;
use super::{Event, SharedHealth};
use crate::config::SentryConfig;
use crate::sys::logging::{self, Level};

/// How many log lines an event carries as breadcrumbs.
const BREADCRUMBS: usize = 30;
/// How long a panic waits for its event to be sent before the abort.
const PANIC_FLUSH: Duration = Duration::from_secs(3);

/// The reporter the log's tap and the panic hook use: the one of the
/// running configuration (replaced by a reload).
static CURRENT: RwLock<Option<Arc<Reporter>>> = RwLock::new(None);

fn current() -> Option<Arc<Reporter>> {
    CURRENT.read().unwrap_or_else(|p| p.into_inner()).clone()
}

fn set_current(reporter: Option<Arc<Reporter>>) {
    *CURRENT.write().unwrap_or_else(|p| p.into_inner()) = reporter;
}

/// The release reported when `sentry.release` is "".
pub fn default_release() -> String {
    format!("fakeups@{}", env!("CARGO_PKG_VERSION"))
}

/// A Sentry client and the recent log lines.
pub struct Reporter {
    client: sentry::Client,
    host: String,
    health: SharedHealth,
    breadcrumbs: Mutex<VecDeque<Breadcrumb>>,
}

/// The reporter `config` asks for, made the current one; None (and no
/// current one) when the DSN is "" or it cannot start (logged).
pub fn start(config: &SentryConfig, health: SharedHealth) -> Option<Arc<Reporter>> {
    let reporter = match Reporter::new(config, health) {
        Ok(reporter) => reporter.map(Arc::new),
        Err(e) => {
            logging::error(&format!("Sentry is off: {e}"));
            None
        }
    };
    set_current(reporter.clone());
    if reporter.is_some() {
        install_once();
    }
    reporter
}

/// The log's tap and the panic hook, for the process.
fn install_once() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        logging::set_tap(on_line);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            if let Some(reporter) = current() {
                reporter.panic(info);
            }
        }));
    });
}

/// Every log line: a breadcrumb, and an event when it is an ERROR or
/// CRITICAL that is not the line of a transition.
fn on_line(level: Level, message: &str, fields: &[(&str, &str)]) {
    if let Some(reporter) = current() {
        reporter.line(level, message, fields);
    }
}

fn sentry_level(level: Level) -> SentryLevel {
    match level {
        Level::Debug => SentryLevel::Debug,
        Level::Info | Level::Notice => SentryLevel::Info,
        Level::Warning => SentryLevel::Warning,
        Level::Error => SentryLevel::Error,
        Level::Critical => SentryLevel::Fatal,
    }
}

impl Reporter {
    fn new(config: &SentryConfig, health: SharedHealth) -> Result<Option<Reporter>, String> {
        if config.dsn.is_empty() {
            return Ok(None);
        }
        let dsn: Dsn = config
            .dsn
            .parse()
            .map_err(|e| format!("sentry.dsn {:?} does not parse: {e}", config.dsn))?;
        let user_agent = format!("fakeups/{}", env!("CARGO_PKG_VERSION"));
        let outbox = Outbox::start(&dsn, &user_agent, health.clone())
            .map_err(|e| format!("cannot start the thread that sends to Sentry: {e}"))?;
        let release = if config.release.is_empty() {
            default_release()
        } else {
            config.release.clone()
        };
        let mut options = sentry::ClientOptions::new();
        options.dsn = Some(dsn.clone());
        options.release = Some(Cow::Owned(release));
        if !config.environment.is_empty() {
            options.environment = Some(Cow::Owned(config.environment.clone()));
        }
        options.user_agent = Cow::Owned(user_agent);
        options.transport = Some(Arc::new(Arc::new(outbox)));
        options.integrations = vec![Arc::new(
            sentry::integrations::contexts::ContextIntegration::default(),
        )];
        Ok(Some(Reporter {
            client: sentry::Client::with_options(options),
            host: dsn.host().to_string(),
            health,
            breadcrumbs: Mutex::new(VecDeque::with_capacity(BREADCRUMBS)),
        }))
    }

    /// Where it reports, for status.
    pub fn describe(&self) -> String {
        self.host.clone()
    }

    pub fn health(&self) -> &SharedHealth {
        &self.health
    }

    /// Waits for what is queued to be sent, at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.client.flush(Some(timeout))
    }

    /// A power transition, at `level`.
    pub fn transition(&self, event: &Event, level: Level) {
        let mut report = self.event(sentry_level(level), &event.message);
        report.timestamp = SystemTime::from(event.time);
        for (key, value) in event.environment() {
            if key != "FAKEUPS_MESSAGE" {
                report.extra.insert(key.to_string(), Value::from(value));
            }
        }
        report.tags.insert("event".into(), event.kind.name().into());
        report.tags.insert("status".into(), event.status.into());
        report.tags.insert("drill".into(), event.drill.to_string());
        self.client.capture_event(report, None);
    }

    /// A log line: kept as a breadcrumb; an ERROR or CRITICAL one that is
    /// not a transition's line is an event too.
    fn line(&self, level: Level, message: &str, fields: &[(&str, &str)]) {
        if level >= Level::Error && !fields.iter().any(|(k, _)| *k == "FAKEUPS_EVENT") {
            let mut report = self.event(sentry_level(level), message);
            for (key, value) in fields {
                report.extra.insert(key.to_string(), Value::from(*value));
            }
            report
                .extra
                .insert("FAKEUPS_LEVEL".into(), Value::from(level.name()));
            self.client.capture_event(report, None);
        }
        if level >= Level::Info {
            let mut crumbs = self.breadcrumbs.lock().unwrap_or_else(|p| p.into_inner());
            if crumbs.len() == BREADCRUMBS {
                crumbs.pop_front();
            }
            crumbs.push_back(Breadcrumb {
                level: sentry_level(level),
                category: Some("log".into()),
                message: Some(message.to_string()),
                data: fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), Value::from(*v)))
                    .collect(),
                ..Default::default()
            });
        }
    }

    /// A panic: captured, then waited for, since the process aborts next.
    fn panic(&self, info: &PanicHookInfo<'_>) {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".into());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_default();
        let thread = std::thread::current().name().unwrap_or("?").to_string();
        let mut report = self.event(
            SentryLevel::Fatal,
            &format!("fakeups panicked at {location}: {message}"),
        );
        report.exception = vec![Exception {
            ty: "panic".into(),
            value: Some(message),
            ..Default::default()
        }]
        .into();
        report
            .extra
            .insert("location".into(), Value::from(location));
        report.extra.insert("thread".into(), Value::from(thread));
        self.client.capture_event(report, None);
        self.client.flush(Some(PANIC_FLUSH));
    }

    /// An event at `level` with `message` and the breadcrumbs so far.
    fn event(&self, level: SentryLevel, message: &str) -> SentryEvent<'static> {
        let crumbs = self.breadcrumbs.lock().unwrap_or_else(|p| p.into_inner());
        SentryEvent {
            level,
            message: Some(message.to_string()),
            logger: Some("fakeups".into()),
            breadcrumbs: crumbs.iter().cloned().collect::<Vec<_>>().into(),
            ..Default::default()
        }
    }
}
