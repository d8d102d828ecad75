//! A local HTTP server playing the extract publisher, scripted per request: statuses,
//! `Retry-After`, HTML pages, connections cut mid-body, stalls. No test touches the internet.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What one GET gets.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The extract, named in `Content-Disposition`.
    File,
    Status {
        status: u16,
        retry_after: Option<&'static str>,
    },
    Html,
    /// Headers announcing the whole file, then only this many bytes, then a closed socket.
    CutAfter(usize),
    /// Nothing for this long, then the file.
    Stall(Duration),
    /// A complete response whose body is only the first bytes of the file.
    Truncated(usize),
}

#[derive(Clone)]
pub struct SourceServer {
    pub url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl SourceServer {
    /// Serves `file` as `name`; GETs take their replies from `script` in order, then `File`.
    pub async fn start(name: &str, file: Vec<u8>, script: Vec<Reply>) -> SourceServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!(
            "http://{}/extraction/PS_LibreAcces",
            listener.local_addr().expect("address")
        );
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (name, file, log) = (name.to_owned(), Arc::new(file), Arc::clone(&requests));
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let (name, file, log, script) =
                    (name.clone(), Arc::clone(&file), Arc::clone(&log), Arc::clone(&script));
                tokio::spawn(async move { answer(socket, &name, &file, &log, &script).await });
            }
        });
        SourceServer { url, requests }
    }

    /// `METHOD path` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().expect("log").clone()
    }

    pub fn count(&self, method: &str) -> usize {
        self.requests().iter().filter(|r| r.starts_with(method)).count()
    }
}

async fn answer(
    mut socket: TcpStream,
    name: &str,
    file: &[u8],
    log: &Mutex<Vec<String>>,
    script: &Mutex<VecDeque<Reply>>,
) {
    let mut request = Vec::new();
    let mut buffer = [0u8; 2048];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    let line = String::from_utf8_lossy(&request)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    let head_only = line.starts_with("HEAD");
    log.lock()
        .expect("log")
        .push(line.rsplit_once(' ').map_or(line.clone(), |(l, _)| l.to_owned()));
    let reply = if head_only {
        Reply::File
    } else {
        script.lock().expect("script").pop_front().unwrap_or(Reply::File)
    };
    let file_head = |length: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename={name}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        )
    };
    let (head, body): (String, &[u8]) = match reply {
        Reply::File => (file_head(file.len()), file),
        Reply::Status { status, retry_after } => {
            let extra = retry_after.map_or(String::new(), |r| format!("Retry-After: {r}\r\n"));
            (
                format!("HTTP/1.1 {status} Busy\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n"),
                &[],
            )
        }
        Reply::Html => {
            let page: &[u8] = b"<!DOCTYPE html><html><body>Maintenance</body></html>";
            (
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    page.len()
                ),
                page,
            )
        }
        Reply::CutAfter(n) => {
            let _ = socket.write_all(file_head(file.len()).as_bytes()).await;
            let _ = socket.write_all(&file[..n.min(file.len())]).await;
            return;
        }
        Reply::Stall(pause) => {
            tokio::time::sleep(pause).await;
            (file_head(file.len()), file)
        }
        Reply::Truncated(n) => (file_head(n.min(file.len())), &file[..n.min(file.len())]),
    };
    let _ = socket.write_all(head.as_bytes()).await;
    if !head_only {
        let _ = socket.write_all(body).await;
    }
    let _ = socket.shutdown().await;
}
