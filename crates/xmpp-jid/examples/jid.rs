//! Placeholder demo, replaced when `xmpp-jid` lands.
fn main() {
    for arg in std::env::args().skip(1) {
        println!("{arg}");
    }
}
