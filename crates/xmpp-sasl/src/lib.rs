//! SASL mechanisms for XMPP, client and server sides, as pure bytes-in / bytes-out steps:
//! PLAIN, SCRAM-SHA-1/256/512 (and `-PLUS` channel binding), EXTERNAL, ANONYMOUS.
//!
//! (Being built: see issue 4.)
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
