//! XEP-0203 delayed delivery: the `<delay/>` stamp a server adds to a message it stored
//! while the account had no available resource (RFC 6121 §8.5.2.2.1), so the client shows
//! when it was sent rather than when it arrived.
//!
//! The time comes from the host (milliseconds since the Unix epoch, UTC), like every input
//! of this crate: nothing here reads a clock. The stamp is XEP-0082's `DateTime` profile in
//! UTC with milliseconds (`2002-09-10T23:08:25.000Z`).

use core::fmt::Write as _;

use minidom::Element;

use crate::stanza::header::nc;

/// The XEP-0203 namespace.
pub const NS_DELAY: &str = "urn:xmpp:delay";

/// The XEP-0082 `DateTime` of `unix_millis` (UTC, milliseconds, `Z`). Years past 9999 are
/// clamped to 9999-12-31T23:59:59.999Z (the profile has four-digit years).
#[must_use]
pub fn stamp(unix_millis: u64) -> String {
    // 253402300799999 ms: 9999-12-31T23:59:59.999Z.
    let unix_millis = unix_millis.min(253_402_300_799_999);
    let millis = unix_millis % 1000;
    let secs = unix_millis / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    let mut out = String::with_capacity(24);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    out
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar, by
/// 400-year eras of 146 097 days (the classic civil-from-days derivation).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of each year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// `stanza` with a `<delay xmlns='urn:xmpp:delay' from='{from}' stamp='...'/>` child
/// appended: `from` is the server that stored it (its domain), `unix_millis` the host's time
/// when it was stored. A stanza that already carries a delay from `from` is returned as is
/// (XEP-0203 §3: one stamp per entity that delayed it).
#[must_use]
pub fn with_delay(stanza: &Element, from: &str, unix_millis: u64) -> Element {
    let mut out = stanza.clone();
    let already = stanza
        .children()
        .any(|c| c.is("delay", NS_DELAY) && c.attr("from") == Some(from));
    if !already {
        let delay = Element::builder("delay", NS_DELAY)
            .attr(nc("from"), from)
            .attr(nc("stamp"), stamp(unix_millis))
            .build();
        out.append_child(delay);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_xep_0082_utc() {
        assert_eq!(stamp(0), "1970-01-01T00:00:00.000Z");
        // XEP-0203's example: 2002-09-10T23:08:25Z.
        assert_eq!(stamp(1_031_699_305_000), "2002-09-10T23:08:25.000Z");
        // Leap days: 2000 (divisible by 400) has one, 2100 would not.
        assert_eq!(stamp(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(stamp(951_868_799_999), "2000-02-29T23:59:59.999Z");
        assert_eq!(stamp(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        assert_eq!(stamp(u64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn one_delay_per_entity() {
        let m: Element = "<message xmlns='jabber:client' to='a@b'><body>x</body></message>"
            .parse()
            .unwrap_or_else(|_| Element::bare("message", "jabber:client"));
        let once = with_delay(&m, "b", 1_031_699_305_000);
        let twice = with_delay(&once, "b", 2_000_000_000_000);
        assert_eq!(once, twice);
        let delay = once.get_child("delay", NS_DELAY);
        assert_eq!(
            delay.and_then(|d| d.attr("stamp")),
            Some("2002-09-10T23:08:25.000Z")
        );
        assert_eq!(delay.and_then(|d| d.attr("from")), Some("b"));
    }
}
