//! `--web-port`: a tiny static file server for the browser demo page (the `web/` directory
//! of `xmpp-host-wasm` with its `wasm-bindgen` output in `pkg/`), so the README can say "open
//! this address". GET and HEAD only, one request per connection, files under the root only
//! (no `..`, no hidden names), a few content types (`application/wasm` for the module, which
//! `WebAssembly.instantiateStreaming` requires). `/websocket-url` answers the server's own
//! WebSocket endpoint, which the page uses as its default.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// Bound on a request head.
const MAX_HEAD: usize = 8 * 1024;

/// Serve `root` on `listener` forever; `websocket_url` answers `/websocket-url`.
pub async fn serve_web(listener: TcpListener, root: PathBuf, websocket_url: Option<String>) {
    let site = Arc::new((root, websocket_url));
    loop {
        let Ok((socket, _peer)) = listener.accept().await else {
            continue;
        };
        let site = Arc::clone(&site);
        tokio::spawn(async move {
            let _ = answer(socket, &site.0, site.1.as_deref()).await;
        });
    }
}

/// The content type of a file, by its extension.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("css") => "text/css; charset=utf-8",
        Some("png") => "image/png",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// The file a request path names under `root`, if it may be served.
fn resolve(root: &Path, path: &str) -> Option<PathBuf> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let path = if path == "/" { "/index.html" } else { path };
    let relative = path.strip_prefix('/')?;
    let safe = relative.split('/').all(|part| {
        !part.is_empty()
            && !part.starts_with('.')
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    });
    safe.then(|| root.join(relative))
}

/// Whether `head` holds the blank line that ends a request's head, searching only the bytes
/// after `searched` (and the three before them, where the line may have begun), which it
/// moves on: searching the whole head again after every read was quadratic in its length (a
/// client sending one byte per segment made 8 KiB cost about 33 million comparisons).
fn head_ends(head: &[u8], searched: &mut usize) -> bool {
    let from = searched.saturating_sub(3);
    let found = head
        .get(from..)
        .is_some_and(|rest| rest.windows(4).any(|w| w == b"\r\n\r\n"));
    *searched = head.len();
    found
}

async fn answer(
    mut socket: TcpStream,
    root: &Path,
    websocket_url: Option<&str>,
) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let mut searched = 0;
    while !head_ends(&head, &mut searched) {
        let n = socket.read(&mut buf).await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&head);
    let mut words = head.split_whitespace();
    let (method, path) = (
        words.next().unwrap_or_default(),
        words.next().unwrap_or_default(),
    );
    let (status, kind, body) = if method != "GET" && method != "HEAD" {
        (
            "405 Method Not Allowed",
            "text/plain",
            b"GET only\n".to_vec(),
        )
    } else if path == "/websocket-url" {
        match websocket_url {
            Some(url) => ("200 OK", "text/plain", url.as_bytes().to_vec()),
            None => (
                "404 Not Found",
                "text/plain",
                b"no WebSocket port\n".to_vec(),
            ),
        }
    } else {
        match resolve(root, path) {
            // Small files of a demo page: a blocking read is fine.
            Some(file) => match std::fs::read(&file) {
                Ok(bytes) => ("200 OK", content_type(&file), bytes),
                Err(_) => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
            },
            None => ("404 Not Found", "text/plain", b"not found\n".to_vec()),
        }
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method != "HEAD" {
        response.extend_from_slice(&body);
    }
    socket.write_all(&response).await?;
    socket.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_of_a_head_is_found_however_it_was_read() {
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for chunk in 1..=request.len() {
            let mut head = Vec::new();
            let mut searched = 0;
            let mut ends_at = None;
            for piece in request.chunks(chunk) {
                head.extend_from_slice(piece);
                if head_ends(&head, &mut searched) {
                    ends_at = Some(head.len());
                    break;
                }
            }
            assert_eq!(ends_at, Some(request.len()), "chunk {chunk}");
        }
        let mut searched = 0;
        assert!(!head_ends(b"GET / HTTP/1.1\r\n\r", &mut searched));
        assert_eq!(searched, 17);
    }

    #[test]
    fn only_plain_names_under_the_root_resolve() {
        let root = Path::new("/srv/web");
        assert_eq!(resolve(root, "/"), Some(root.join("index.html")));
        assert_eq!(
            resolve(root, "/pkg/xmpp_host_wasm_bg.wasm?v=1"),
            Some(root.join("pkg/xmpp_host_wasm_bg.wasm"))
        );
        for bad in [
            "/../etc/passwd",
            "/pkg/../../x",
            "/.git/config",
            "//x",
            "x",
            "/a%2f..",
            "/a b",
        ] {
            assert_eq!(resolve(root, bad), None, "{bad}");
        }
        assert_eq!(content_type(Path::new("a.wasm")), "application/wasm");
    }
}
