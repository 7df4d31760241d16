//! Ending a connection on purpose, by a clean half-close or a reset, and counting it.

use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::shared::Shared;
use super::{HangUp, Kill};
use crate::session::Conn;

fn tcp(conn: &mut Conn) -> Option<&mut TcpStream> {
    match conn {
        Conn::Plain(tcp) => Some(tcp),
        Conn::Tls(tls) => Some(tls.get_mut().0),
        Conn::Gone => None,
    }
}

/// End a connection on purpose. For [`HangUp::Close`], whether the server hung up in turn
/// within `wait` (then it read every byte we wrote); a reset is never confirmed.
pub(super) async fn hang_up(mut conn: Conn, how: HangUp, wait: Duration) -> bool {
    let Some(tcp) = tcp(&mut conn) else {
        return false;
    };
    let confirmed = match how {
        HangUp::Reset => {
            let _ = tcp.set_zero_linger();
            false
        }
        HangUp::Close => {
            // FIN after everything written; then wait for the server to hang up so that no
            // unread byte turns our close into a reset, and so that our reconnect does not
            // replace a session whose last bytes the server has not read yet.
            let _ = tcp.shutdown().await;
            let mut sink = [0u8; 4096];
            tokio::time::timeout(wait, async {
                while let Ok(n) = tcp.read(&mut sink).await {
                    if n == 0 {
                        break;
                    }
                }
            })
            .await
            .is_ok()
        }
    };
    drop(conn);
    confirmed
}

impl Shared {
    pub(super) fn count_kill(&self, kill: Kill) {
        self.counters.kills[kill.point.index()].fetch_add(1, Ordering::Relaxed);
        if kill.hang_up == HangUp::Reset {
            self.counters.kills_reset.fetch_add(1, Ordering::Relaxed);
        }
    }
}
