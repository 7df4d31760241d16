//! Parses and enforces each JID given on the command line and prints its parts, or the exact
//! reason it was rejected.
//!
//! ```sh
//! cargo run -p xmpp-jid --example jid -- 'Juliet@Example.COM/balcony'
//! ```
use std::process::ExitCode;

use clap::Parser;
use xmpp_jid::Jid;

/// Parses and enforces each JID (RFC 7622) and prints its parts, or the exact reason it was
/// rejected.
#[derive(Debug, Parser)]
#[command(
    name = "jid",
    version,
    after_help = "Example: jid 'Juliet@Example.COM/balcony'"
)]
struct Cli {
    /// The JIDs to check
    #[arg(value_name = "JID", required = true)]
    jids: Vec<String>,
}

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for arg in Cli::parse().jids {
        match Jid::new(&arg) {
            Ok(jid) => {
                println!("{arg:?} -> {jid}");
                println!("  localpart:    {}", jid.node().unwrap_or("(none)"));
                println!("  domainpart:   {}", jid.domain());
                println!("  resourcepart: {}", jid.resource().unwrap_or("(none)"));
                println!("  bare:         {}", jid.to_bare());
            }
            Err(e) => {
                println!("{arg:?} -> error: {e}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn takes_one_or_more_jids() {
        let cli =
            Cli::try_parse_from(["jid", "Juliet@Example.COM/balcony", "example.com"]).unwrap();
        assert_eq!(cli.jids, ["Juliet@Example.COM/balcony", "example.com"]);
        assert!(Cli::try_parse_from(["jid"]).is_err(), "no JID");
        assert!(Cli::try_parse_from(["jid", "--nope"]).is_err());
    }
}
