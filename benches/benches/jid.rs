//! JID parse + enforce, side by side with the `jid` crate 0.12. (Filled in by issue 2.)
#![allow(missing_docs)]
fn main() {}
