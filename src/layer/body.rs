//! The response body: the inner service's, or a reply the middleware makes itself.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// The body of every response that passes through tower-mesh: the inner service's body, or
    /// a local reply (abort, 404, redirect, direct response). Its error type is the inner
    /// body's, so `Infallible` stays `Infallible`.
    #[derive(Debug)]
    pub struct MeshBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Local { data: Option<Bytes> },
    }
}

impl<B> MeshBody<B> {
    /// Wraps the inner service's body.
    pub fn new(body: B) -> Self {
        MeshBody {
            kind: Kind::Inner { body },
        }
    }

    /// A body made by the middleware.
    pub fn local(data: impl Into<Bytes>) -> Self {
        let data = data.into();
        MeshBody {
            kind: Kind::Local {
                data: (!data.is_empty()).then_some(data),
            },
        }
    }

    /// An empty local body.
    pub fn empty() -> Self {
        MeshBody {
            kind: Kind::Local { data: None },
        }
    }
}

impl<B: Default> Default for MeshBody<B> {
    fn default() -> Self {
        MeshBody::new(B::default())
    }
}

impl<B> Body for MeshBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Local { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Local { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Local { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}
