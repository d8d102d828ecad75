//! Which lane a connection is served in. The claims path and the IdP hooks are served by
//! the process's own runtime at its priority; every other connection (search, history,
//! admin, export, the page) by a runtime of niced threads, so that on a machine whose
//! cores they fill, an abusive admin client's requests wait for the IdP's, never the
//! other way round. A connection's lane is chosen from its first request's path, peeked
//! before hyper reads it (IdPs keep their connections for claims; an admin connection
//! that asks for claims is answered the same, at the lower priority).

use std::io;
use std::time::Duration;

use tokio::net::TcpStream;

/// Below the claims path, as the searches, the imports and the export are.
pub const ADMIN_NICE: i32 = 10;

/// The paths served in the claims lane: what IdPs and probes call.
const CLAIMS_PATHS: [&str; 6] = [
    "/v1/claims",
    "/v1/hooks/",
    "/healthz",
    "/readyz",
    "/metrics",
    "/.well-known/jwks.json",
];

/// The bytes of a request line needed to choose: a method, a space and the longest path
/// above, with room.
const PEEK_BYTES: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Claims,
    Admin,
}

/// The lane of a request whose first bytes are `head`; `None` while more are needed.
pub fn of_head(head: &[u8]) -> Option<Lane> {
    // HTTP/2's preface names no path: its streams may be anything, IdPs' included.
    const H2: &[u8] = b"PRI * HTTP/2.0";
    let n = head.len().min(H2.len());
    if head[..n] == H2[..n] {
        return (n == H2.len()).then_some(Lane::Claims);
    }
    let Some(space) = head.iter().position(|&b| b == b' ') else {
        return (head.len() >= PEEK_BYTES).then_some(Lane::Admin);
    };
    let path = &head[space + 1..];
    let path_end = path.iter().position(|&b| b == b' ' || b == b'?');
    let seen = &path[..path_end.unwrap_or(path.len())];
    let whole = path_end.is_some() || head.len() >= PEEK_BYTES;
    let mut undecided = false;
    for prefix in CLAIMS_PATHS {
        let prefix = prefix.as_bytes();
        if seen.starts_with(prefix) {
            return Some(Lane::Claims);
        }
        if !whole && prefix.starts_with(seen) {
            undecided = true;
        }
    }
    if undecided { None } else { Some(Lane::Admin) }
}

/// Peeks at the connection's first bytes until its lane is known (nothing is consumed:
/// hyper reads them all). Ends with an error when the client closes first; the caller
/// bounds the wait with the first request's deadline.
pub async fn choose(stream: &TcpStream) -> io::Result<Lane> {
    let mut head = [0u8; PEEK_BYTES];
    // Data already peeked stays readable: wait a little between looks at a request line
    // that comes in pieces (rare: one segment carries it) rather than spin.
    let mut pause = Duration::from_millis(1);
    loop {
        let n = stream.peek(&mut head).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(lane) = of_head(&head[..n]) {
            return Ok(lane);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// The runtime of the admin lane: its threads (and the blocking threads it starts) niced.
/// The server keeps it until everything else has stopped: connections to Postgres opened
/// while serving an admin request are driven by its reactor, whoever uses them later.
pub fn admin_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("annuaire-admin")
        .on_thread_start(|| crate::priority::lower(ADMIN_NICE))
        .enable_all()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_line_chooses_the_lane() {
        let lane = |head: &str| of_head(head.as_bytes());
        assert_eq!(lane("GET /v1/claims/810003456125 HTTP/1.1\r\n"), Some(Lane::Claims));
        assert_eq!(lane("GET /v1/claims?username=psc-1 HTTP/1.1\r\n"), Some(Lane::Claims));
        assert_eq!(lane("POST /v1/hooks/entra/token HTTP/1.1\r\n"), Some(Lane::Claims));
        assert_eq!(lane("GET /readyz HTTP/1.1\r\n"), Some(Lane::Claims));
        assert_eq!(lane("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), Some(Lane::Claims));
        assert_eq!(lane("GET /v1/professionals?q=dupont HTTP/1.1\r\n"), Some(Lane::Admin));
        assert_eq!(
            lane("GET /v1/professionals/810003456125/history HTTP/1.1\r\n"),
            Some(Lane::Admin)
        );
        assert_eq!(lane("GET / HTTP/1.1\r\n"), Some(Lane::Admin));
        assert_eq!(lane("GET /v1/claimsx HTTP/1.1\r\n"), Some(Lane::Claims));
        // Not enough yet: a prefix of a claims path, or of the HTTP/2 preface.
        assert_eq!(lane("GET /v1/cl"), None);
        assert_eq!(lane("GET"), None);
        assert_eq!(lane("PRI * HT"), None);
        // Enough to know it is not one.
        assert_eq!(lane("GET /v1/ex"), Some(Lane::Admin));
        assert_eq!(lane("GET /v1/professionals"), Some(Lane::Admin));
        assert_eq!(lane(&"X".repeat(PEEK_BYTES)), Some(Lane::Admin));
    }
}
