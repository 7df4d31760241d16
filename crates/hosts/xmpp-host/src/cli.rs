//! Command-line conventions shared by every binary of the workspace (the example client, the
//! example server, the load generator's binaries), which parse their flags with `clap` and
//! take these values through `value_parser`.

use std::time::Duration;

/// A duration in seconds, decimals allowed (`15`, `0.5`): the one form every binary takes.
///
/// # Errors
/// When `text` is not a number, or is negative, infinite or too large for a [`Duration`].
pub fn seconds(text: &str) -> Result<Duration, String> {
    let n: f64 = text.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(n).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_take_decimals_and_refuse_what_is_no_duration() {
        assert_eq!(seconds("15"), Ok(Duration::from_secs(15)));
        assert_eq!(seconds("0.5"), Ok(Duration::from_millis(500)));
        for bad in ["", "ten", "5s", "-1", "NaN", "inf", "1e300"] {
            assert!(seconds(bad).is_err(), "{bad:?} accepted");
        }
    }
}
