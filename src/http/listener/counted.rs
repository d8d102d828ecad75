//! The router, wrapped so that each connection knows whether it has a request in flight:
//! from the moment hyper hands over a request head until its answer's body is done (an
//! export streams long after the handler returned). Only idle connections are evicted.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::http::{Request, Response};
use http_body::{Frame, SizeHint};
use tower::Service;

use super::registry::{Conn, InFlight, Registry};

/// The router as one connection's service.
#[derive(Clone)]
pub struct Counted {
    router: Router,
    conn: Arc<Conn>,
    registry: Arc<Registry>,
}

impl Counted {
    pub fn new(router: Router, conn: Arc<Conn>, registry: Arc<Registry>) -> Counted {
        Counted { router, conn, registry }
    }
}

impl<B> Service<Request<B>> for Counted
where
    B: HttpBody<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<CountedBody>;
    type Error = Infallible;
    type Future = CountedFuture<<Router as Service<Request<B>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        <Router as Service<Request<B>>>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let in_flight = InFlight::enter(&self.conn, &self.registry);
        CountedFuture {
            inner: self.router.call(request),
            in_flight: Some(in_flight),
        }
    }
}

/// The router's future, holding the request's place until the answer is ready, then
/// handing it to the body. Dropped unanswered (the client left), the place is freed.
pub struct CountedFuture<F> {
    inner: F,
    in_flight: Option<InFlight>,
}

impl<F> Future for CountedFuture<F>
where
    F: Future<Output = Result<Response<Body>, Infallible>> + Unpin,
{
    type Output = Result<Response<CountedBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(response)) => {
                let in_flight = this.in_flight.take();
                Poll::Ready(Ok(response.map(|inner| CountedBody {
                    inner,
                    _in_flight: in_flight,
                })))
            }
            Poll::Ready(Err(never)) => match never {},
        }
    }
}

/// An answer's body, holding its request's place until it is done or dropped.
pub struct CountedBody {
    inner: Body,
    _in_flight: Option<InFlight>,
}

impl HttpBody for CountedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<bytes::Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
