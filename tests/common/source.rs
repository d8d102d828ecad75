//! A local axum server playing the extract publisher, scripted per GET: statuses,
//! `Retry-After`, HTML pages, connections cut mid-body, stalls, truncated bodies. It also
//! takes webhook calls (any POST). No test touches the internet.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;

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

/// Serves the file at every path: `url` is the one the tests give as the job's source.
#[derive(Clone)]
pub struct SourceServer {
    pub url: String,
    base: String,
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    file: Bytes,
    script: Mutex<VecDeque<Reply>>,
    /// `METHOD path` of every request.
    requests: Mutex<Vec<String>>,
    /// Bodies of the POSTs (webhook calls).
    posted: Mutex<Vec<String>>,
}

impl SourceServer {
    /// Serves `file` as `name`; GETs take their replies from `script` in order, then `File`.
    /// HEAD always answers as for `File`, without the body.
    pub async fn start(name: &str, file: Vec<u8>, script: Vec<Reply>) -> SourceServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            file: Bytes::from(file),
            script: Mutex::new(VecDeque::from(script)),
            requests: Mutex::new(Vec::new()),
            posted: Mutex::new(Vec::new()),
        });
        let app = Router::new().fallback(answer).with_state(Arc::clone(&shared));
        tokio::spawn(async move { axum::serve(listener, app).await });
        SourceServer {
            url: format!("{base}/extraction/PS_LibreAcces"),
            base,
            shared,
        }
    }

    /// `METHOD path` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().expect("log").clone()
    }

    pub fn count(&self, method: &str) -> usize {
        self.requests().iter().filter(|r| r.starts_with(method)).count()
    }

    /// Where to send webhook calls: they are answered 204 and kept.
    pub fn hook_url(&self) -> String {
        format!("{}/hook", self.base)
    }

    /// The bodies of the webhook calls so far.
    pub fn hook_bodies(&self) -> Vec<String> {
        self.shared.posted.lock().expect("bodies").clone()
    }
}

async fn answer(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, body: Bytes) -> Response {
    let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    shared.requests.lock().expect("log").push(format!("{method} {target}"));
    if method == Method::POST {
        let text = String::from_utf8_lossy(&body).into_owned();
        shared.posted.lock().expect("bodies").push(text);
        return respond(StatusCode::NO_CONTENT, &[], Body::empty());
    }
    let reply = if method == Method::HEAD {
        Reply::File
    } else {
        shared.script.lock().expect("script").pop_front().unwrap_or(Reply::File)
    };
    let file = &shared.file;
    let disposition = format!("attachment; filename={}", shared.name);
    let zip = |length: usize, body: Body| {
        respond(
            StatusCode::OK,
            &[
                (header::CONTENT_TYPE, "application/zip".to_owned()),
                (header::CONTENT_DISPOSITION, disposition.clone()),
                (header::CONTENT_LENGTH, length.to_string()),
            ],
            body,
        )
    };
    match reply {
        Reply::File => zip(file.len(), Body::from(file.clone())),
        Reply::Status { status, retry_after } => {
            let status = StatusCode::from_u16(status).expect("a valid status");
            let headers: Vec<_> = retry_after
                .map(|r| (header::RETRY_AFTER, r.to_owned()))
                .into_iter()
                .collect();
            respond(status, &headers, Body::empty())
        }
        Reply::Html => respond(
            StatusCode::OK,
            &[(header::CONTENT_TYPE, "text/html".to_owned())],
            Body::from("<!DOCTYPE html><html><body>Maintenance</body></html>"),
        ),
        Reply::CutAfter(n) => {
            // A body that fails after its first bytes: the server aborts the connection
            // short of the announced length.
            let sent = file.slice(..n.min(file.len()));
            let chunks: Vec<Result<Bytes, std::io::Error>> =
                vec![Ok(sent), Err(std::io::Error::other("cut by the test source"))];
            zip(file.len(), Body::from_stream(futures::stream::iter(chunks)))
        }
        Reply::Stall(pause) => {
            tokio::time::sleep(pause).await;
            zip(file.len(), Body::from(file.clone()))
        }
        Reply::Truncated(n) => {
            let sent = file.slice(..n.min(file.len()));
            zip(sent.len(), Body::from(sent))
        }
    }
}

/// One connection per request, as the publisher's server does: a retry never reuses the
/// connection of a failed attempt.
fn respond(status: StatusCode, headers: &[(header::HeaderName, String)], body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let map = response.headers_mut();
    map.insert(header::CONNECTION, HeaderValue::from_static("close"));
    for (name, value) in headers {
        map.insert(
            name.clone(),
            HeaderValue::from_str(value).expect("a valid header value"),
        );
    }
    response
}
