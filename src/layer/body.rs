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
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response, StatusCode};
    /// use http_body_util::BodyExt;
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use tower_mesh::{MeshLayer, RuleSet};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let rules = RuleSet::from_yaml(r#"
    /// apiVersion: networking.istio.io/v1
    /// kind: VirtualService
    /// metadata: {name: hello}
    /// spec:
    ///   hosts: [hello]
    ///   http:
    ///   - match: [{uri: {prefix: /teapot}}]
    ///     directResponse: {status: 418, body: {string: "I'm a teapot"}}
    ///   - route: [{destination: {host: hello}}]
    /// "#)?;
    /// let hello = service_fn(|_req: Request<String>| async {
    ///     Ok::<_, Infallible>(Response::new(String::from("hello")))
    /// });
    /// let svc = MeshLayer::new(rules).host("hello").layer(hello);
    /// // One body type for the inner service's answers and the layer's own.
    /// let inner = svc.clone().oneshot(Request::get("/").body(String::new())?).await?;
    /// let local = svc.oneshot(Request::get("/teapot").body(String::new())?).await?;
    /// assert_eq!(inner.into_body().collect().await?.to_bytes(), "hello");
    /// assert_eq!(local.into_body().collect().await?.to_bytes(), "I'm a teapot");
    /// # Ok(()) }
    /// ```
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

impl<B: Body> MeshBody<B> {
    /// The body's size as far as it is known before it is sent: exact for a local reply or an
    /// inner body that knows its length, else the inner body's lower bound (0 for a stream).
    pub(crate) fn known_size(&self) -> u64 {
        match &self.kind {
            Kind::Inner { body } => body.size_hint().lower(),
            Kind::Local { data } => data.as_ref().map_or(0, |d| d.len() as u64),
        }
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
