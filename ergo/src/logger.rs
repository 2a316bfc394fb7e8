//! Logging an operator can read with no set-up: one call in `main`, and
//! the node says what happens to it the way an Erlang node does.
//!
//! ```no_run
//! ergo::logger::init();
//! ```
//!
//! prints, on standard error, warnings and errors from anywhere and what
//! the node itself reports at `info`: distribution starting, connections
//! coming up and going down (with why), refused connections naming the node
//! and the reason, crashed servers with their reasons, supervisor restarts,
//! refused calls naming the server. Each event reads like an Erlang report:
//!
//! ```text
//! =WARNING REPORT==== 2-Dec-2026::13:45:01.123456 ===
//! refused a connection from intruder@127.0.0.1 at 127.0.0.1:51234: handshake refused: the other node's cookie differs
//!     node: demo@127.0.0.1
//! ```
//!
//! `RUST_LOG` is honoured when set, with `tracing`'s directives
//! (`RUST_LOG=debug`, `RUST_LOG=warn,ergo::dist=debug`, ...), as
//! `logger:set_primary_config(level, ...)` would be in Erlang. An
//! application that sets up its own `tracing` subscriber needs none of
//! this: every event comes through `tracing`.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// What is shown when `RUST_LOG` is not set: warnings and errors from
/// anywhere, and the node's own reports.
pub const DEFAULT_FILTER: &str = "warn,ergo=info";

/// Installs the logger as the process's `tracing` subscriber (see the
/// module's docs). Does nothing if a subscriber is already installed.
pub fn init() {
    let _ = try_init();
}

/// Installs the logger; an error if a subscriber is already installed.
pub fn try_init() -> Result<(), LoggerError> {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .event_format(Reports)
        .try_init()
        .map_err(|e| LoggerError(e.to_string()))
}

/// Why the logger could not be installed (another subscriber was first).
#[derive(Debug)]
pub struct LoggerError(String);

impl fmt::Display for LoggerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot install the logger: {}", self.0)
    }
}

impl std::error::Error for LoggerError {}

/// Events as Erlang's reports: a header with the level and the time, the
/// message, then each field on a line of its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reports;

impl<S, N> FormatEvent<S, N> for Reports
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let kind = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARNING",
            Level::INFO => "INFO",
            _ => "DEBUG",
        };
        writeln!(
            w,
            "={kind} REPORT==== {} ===",
            erlang_time(std::time::SystemTime::now())
        )?;
        let mut fields = Fields::default();
        event.record(&mut fields);
        writeln!(w, "{}", fields.message)?;
        for (k, v) in &fields.rest {
            writeln!(w, "    {k}: {v}")?;
        }
        // The process an event happened in (its span), as Erlang names the
        // pid in a report.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<tracing_subscriber::fmt::FormattedFields<N>>()
                    && !f.is_empty()
                {
                    writeln!(w, "    {}: {f}", span.name())?;
                }
            }
        }
        Ok(())
    }
}

/// An event's message and other fields.
#[derive(Default)]
struct Fields {
    message: String,
    rest: Vec<(&'static str, String)>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.rest.push((field.name(), value.to_string()));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let mut s = String::new();
        let _ = write!(s, "{value:?}");
        if field.name() == "message" {
            self.message = s;
        } else {
            self.rest.push((field.name(), s));
        }
    }
}

/// `2-Dec-2026::13:45:01.123456`, in UTC, as Erlang's report headers write
/// the time.
fn erlang_time(t: std::time::SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, day) = civil_from_days(days);
    format!(
        "{day}-{}-{y}::{:02}:{:02}:{:02}.{:06}",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// The date of a day counted from 1970-01-01 (Howard Hinnant's
/// `civil_from_days`): year, month (1 to 12), day (1 to 31).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_times_read_as_erlangs() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_micros(1_796_218_201_123_456);
        assert_eq!(erlang_time(t), "2-Dec-2026::13:30:01.123456");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
