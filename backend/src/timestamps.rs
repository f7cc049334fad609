//! The one way a timestamp becomes text: on the wire, in event payloads and in the CLI.
use time::{format_description::well_known::Rfc3339, OffsetDateTime, UtcOffset};

/// RFC 3339 in UTC, e.g. `2026-12-02T16:40:00.123Z`.
///
/// RFC 3339 has four-digit years only. Every timestamp the service makes or stores lies
/// in years 0 to 9999; one outside them (an operator's far-future expiry whose offset
/// pushes it past 9999 in UTC) is written in `time`'s display form rather than failing
/// the answer it belongs to.
pub fn rfc3339(t: OffsetDateTime) -> String {
    let utc = t.to_offset(UtcOffset::UTC);
    utc.format(&Rfc3339).unwrap_or_else(|_| utc.to_string())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::rfc3339;

    #[test]
    fn a_timestamp_is_written_in_utc_with_its_fraction() {
        assert_eq!(
            rfc3339(datetime!(2026-12-02 17:40:00.123 +01:00)),
            "2026-12-02T16:40:00.123Z"
        );
        assert_eq!(
            rfc3339(datetime!(2026-12-02 16:40:00 UTC)),
            "2026-12-02T16:40:00Z"
        );
    }
}
