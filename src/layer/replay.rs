//! [`ReplayBody`]: a request body kept as it streams, so that a retry or a mirror can send the
//! same request again.

use std::any::Any;
use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// The default limit on a kept request body: 64 KiB.
pub const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// What has been kept of a request body so far.
#[derive(Default)]
pub(crate) struct BodyCopyState {
    chunks: Vec<Bytes>,
    len: usize,
    trailers: Option<HeaderMap>,
    /// The whole body went by (and fitted in the limit).
    complete: bool,
    /// The body outgrew the limit or failed: it cannot be sent again.
    lost: bool,
    /// The unread rest of the body, handed back by a try that ended before reading it all
    /// (a `Pin<Box<B>>`, typed again by [`BodyCopy::replay`]).
    rest: Option<Box<dyn Any + Send>>,
}

impl fmt::Debug for BodyCopyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyCopyState")
            .field("len", &self.len)
            .field("complete", &self.complete)
            .field("lost", &self.lost)
            .field("rest", &self.rest.is_some())
            .finish_non_exhaustive()
    }
}

/// A handle on a request body being kept (not nameable outside the crate).
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct BodyCopy {
    kept: Arc<Mutex<BodyCopyState>>,
    limit: usize,
}

impl BodyCopy {
    fn lock(&self) -> MutexGuard<'_, BodyCopyState> {
        // A panic while the lock was held cannot leave `BodyCopyState` half-written in a way that
        // matters: at worst a replay is refused.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the whole body has been kept.
    pub(crate) fn is_whole(&self) -> bool {
        let kept = self.lock();
        kept.complete && !kept.lost
    }

    /// A body equal to the one kept, only if it was kept whole: a mirror must not take the
    /// unread rest a retry may need.
    pub(crate) fn replay_whole<B: Send + 'static>(&self) -> Option<ReplayBody<B>> {
        if self.is_whole() { self.replay() } else { None }
    }

    /// A body equal to the one kept: the kept data, then, when the last try stopped reading
    /// early, the rest of the original body (kept in turn as it is read). `None` when the
    /// body outgrew the limit, failed, or is still held by an earlier try.
    pub(crate) fn replay<B: Send + 'static>(&self) -> Option<ReplayBody<B>> {
        let mut kept = self.lock();
        if kept.lost {
            return None;
        }
        let rest = if kept.complete {
            None
        } else {
            let rest = kept.rest.take()?.downcast::<Pin<Box<B>>>().ok()?;
            Some(*rest)
        };
        Some(ReplayBody {
            state: State::Copied {
                queue: kept.chunks.iter().cloned().collect(),
                trailers: if rest.is_none() {
                    kept.trailers.clone()
                } else {
                    None
                },
                len: kept.len as u64,
                keeper: rest.is_some().then(|| self.clone()),
                rest,
                hand_back: hand_back::<B>,
            },
        })
    }
}

/// Gives the unread rest of a body back to its body copy.
fn hand_back<B: Send + 'static>(keeper: &BodyCopy, rest: Pin<Box<B>>) {
    let mut kept = keeper.lock();
    if !kept.complete && !kept.lost {
        kept.rest = Some(Box::new(rest));
    }
}

pin_project! {
    /// The request body a layer built with
    /// [`MeshLayer::replay_bodies`](super::MeshLayer::replay_bodies) hands to its inner
    /// service.
    ///
    /// For a request whose route retries or mirrors, it keeps a copy of the data as the inner
    /// service reads it, up to the layer's limit, so that a retry or a mirror can send the
    /// same body again; a try that stops reading early hands the unread rest on to the next.
    /// A body larger than the limit streams through all the same, but the request is then
    /// neither retried nor mirrored. For other requests it is the original body, untouched.
    ///
    /// ```
    /// use std::convert::Infallible;
    /// use http::{Request, Response};
    /// use http_body_util::BodyExt;
    /// use tower::{Layer, ServiceExt, service_fn};
    /// use tower_mesh::{MeshLayer, RuleSet};
    /// use tower_mesh::layer::{DEFAULT_REPLAY_LIMIT, ReplayBody};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let echo = service_fn(|req: Request<ReplayBody<String>>| async move {
    ///     let body = req.into_body().collect().await.unwrap().to_bytes();
    ///     Ok::<_, Infallible>(Response::new(http_body_util::Full::new(body)))
    /// });
    /// let svc = MeshLayer::new(RuleSet::empty()).replay_bodies(DEFAULT_REPLAY_LIMIT).layer(echo);
    /// let res = svc.oneshot(Request::post("/").body(String::from("stars=5"))?).await?;
    /// assert_eq!(res.into_body().collect().await?.to_bytes(), "stars=5");
    /// # Ok(()) }
    /// ```
    pub struct ReplayBody<B> {
        #[pin]
        state: State<B>,
    }

    impl<B> PinnedDrop for ReplayBody<B> {
        fn drop(this: Pin<&mut Self>) {
            if let StateProj::Copied { rest, keeper, hand_back, .. } = this.project().state.project()
                && let (Some(rest), Some(keeper)) = (rest.take(), keeper.as_ref())
            {
                hand_back(keeper, rest);
            }
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<B> {
        // Passed through, nothing kept.
        Plain { #[pin] body: B },
        // The kept data first, then the rest of the body (`rest`), kept as it is read when
        // there is a `keeper` (the body copy); the trailers last.
        Copied {
            queue: VecDeque<Bytes>,
            trailers: Option<HeaderMap>,
            len: u64,
            rest: Option<Pin<Box<B>>>,
            keeper: Option<BodyCopy>,
            hand_back: fn(&BodyCopy, Pin<Box<B>>),
        },
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.state {
            State::Plain { .. } => "plain",
            State::Copied {
                keeper: Some(_), ..
            } => "keeping",
            State::Copied { keeper: None, .. } => "replay",
        };
        f.debug_struct("ReplayBody")
            .field("state", &kind)
            .finish_non_exhaustive()
    }
}

impl<B: Body> ReplayBody<B> {
    /// The body as it is, nothing kept.
    pub(crate) fn plain(body: B) -> Self {
        ReplayBody {
            state: State::Plain { body },
        }
    }
}

impl<B: Body<Data = Bytes>> ReplayBody<B> {
    /// Reads one frame of the body's unread rest ahead (kept, and queued to be sent), so that
    /// a client that went away is noticed between two tries: its body fails, or the server
    /// reading it for this request, woken by the read, sees the connection closed and drops
    /// the request. `true` when the body failed. Reads nothing once the body copy has given up
    /// (past the replay limit), so what is read ahead stays within the limit.
    pub(crate) fn client_gone(&mut self, cx: &mut Context<'_>) -> bool {
        let State::Copied {
            queue,
            trailers,
            rest,
            keeper,
            ..
        } = &mut self.state
        else {
            return false;
        };
        let Some(body) = rest.as_mut() else {
            return false;
        };
        if keeper.as_ref().is_none_or(|k| k.lock().lost) {
            return false;
        }
        let Poll::Ready(frame) = body.as_mut().poll_frame(cx) else {
            return false;
        };
        if let Some(keeper) = keeper.as_ref() {
            keeper.record(&frame, body.is_end_stream());
        }
        match frame {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(data) => queue.push_back(data),
                Err(frame) => {
                    *trailers = frame.into_trailers().ok();
                    *rest = None;
                }
            },
            Some(Err(_)) => return true,
            None => *rest = None,
        }
        false
    }
}

impl<B: Body + Send + 'static> ReplayBody<B> {
    /// Keeps a copy of `body` of at most `limit` bytes as it is read, and the handle on it.
    pub(crate) fn keep(body: B, limit: usize) -> (Self, BodyCopy) {
        let mut kept = BodyCopyState::default();
        if body.is_end_stream() {
            kept.complete = true;
        } else if body.size_hint().lower() > limit as u64 {
            kept.lost = true;
        }
        let keeper = BodyCopy {
            kept: Arc::new(Mutex::new(kept)),
            limit,
        };
        let body = ReplayBody {
            state: State::Copied {
                queue: VecDeque::new(),
                trailers: None,
                len: 0,
                rest: Some(Box::pin(body)),
                keeper: Some(keeper.clone()),
                hand_back: hand_back::<B>,
            },
        };
        (body, keeper)
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().state.project() {
            StateProj::Plain { body } => body.poll_frame(cx),
            StateProj::Copied {
                queue,
                trailers,
                rest,
                keeper,
                ..
            } => {
                if let Some(data) = queue.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                let Some(body) = rest.as_mut() else {
                    return Poll::Ready(trailers.take().map(|t| Ok(Frame::trailers(t))));
                };
                let frame = ready!(body.as_mut().poll_frame(cx));
                if let Some(keeper) = keeper.as_ref() {
                    keeper.record(&frame, body.is_end_stream());
                }
                if frame.is_none() {
                    *rest = None;
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Plain { body } => body.is_end_stream(),
            State::Copied {
                queue,
                trailers,
                rest,
                keeper,
                ..
            } => {
                queue.is_empty()
                    && trailers.is_none()
                    && rest.as_ref().is_none_or(|body| {
                        let end = body.is_end_stream();
                        if end && let Some(keeper) = keeper {
                            keeper.lock().complete = true;
                        }
                        end
                    })
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Plain { body } => body.size_hint(),
            State::Copied {
                queue, rest, len, ..
            } => match rest {
                None => SizeHint::with_exact(*len),
                Some(body) => {
                    let queued: u64 = queue.iter().map(|b| b.len() as u64).sum();
                    let rest = body.size_hint();
                    let mut hint = SizeHint::new();
                    hint.set_lower(rest.lower() + queued);
                    if let Some(upper) = rest.upper() {
                        hint.set_upper(upper + queued);
                    }
                    hint
                }
            },
        }
    }
}

impl BodyCopy {
    /// Records a frame read from the original body; `end`: the body says it has ended.
    fn record<E>(&self, frame: &Option<Result<Frame<Bytes>, E>>, end: bool) {
        let mut kept = self.lock();
        match frame {
            _ if kept.lost => {}
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    kept.len += data.len();
                    if kept.len > self.limit {
                        kept.lost = true;
                        kept.chunks = Vec::new();
                    } else if !data.is_empty() {
                        kept.chunks.push(data.clone());
                    }
                } else if let Some(trailers) = frame.trailers_ref() {
                    // Trailers end a body.
                    kept.trailers = Some(trailers.clone());
                    kept.complete = true;
                }
            }
            Some(Err(_)) => kept.lost = true,
            None => kept.complete = true,
        }
        // A reader that knows the length (hyper does) stops at the last data frame without
        // asking for the end.
        if end {
            kept.complete = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, Empty, Full};
    use std::convert::Infallible;

    /// A body of several frames.
    struct Frames(VecDeque<Frame<Bytes>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            Poll::Ready(self.0.pop_front().map(Ok))
        }
    }

    #[tokio::test]
    async fn a_body_read_whole_is_replayed_with_the_same_frames() {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", "0".parse().unwrap());
        let frames = Frames(VecDeque::from([
            Frame::data(Bytes::from_static(b"hel")),
            Frame::data(Bytes::from_static(b"lo")),
            Frame::trailers(trailers.clone()),
        ]));
        let (body, keeper) = ReplayBody::keep(frames, 16);
        assert!(keeper.replay::<Frames>().is_none(), "not read yet");
        let first = body.collect().await.unwrap();
        assert_eq!(first.trailers(), Some(&trailers));
        assert_eq!(first.to_bytes(), "hello");
        let again = keeper.replay::<Frames>().expect("kept whole");
        assert_eq!(again.size_hint().exact(), Some(5));
        let again = again.collect().await.unwrap();
        assert_eq!(again.trailers(), Some(&trailers));
        assert_eq!(again.to_bytes(), "hello");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_streams_whole_but_is_not_kept() {
        let (body, keeper) = ReplayBody::keep(Full::new(Bytes::from_static(b"hello world")), 4);
        assert_eq!(body.collect().await.unwrap().to_bytes(), "hello world");
        assert!(keeper.replay::<Full<Bytes>>().is_none());
    }

    #[tokio::test]
    async fn a_reader_that_stops_at_the_last_data_frame_still_leaves_it_whole() {
        // hyper stops polling once a body of known length says it has ended.
        let (mut body, keeper) = ReplayBody::keep(Full::new(Bytes::from_static(b"abc")), 16);
        let frame = body.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "abc");
        assert!(body.is_end_stream());
        assert!(keeper.is_whole());
    }

    #[test]
    fn an_empty_body_is_kept_before_anyone_reads_it() {
        let (_body, keeper) = ReplayBody::keep(Empty::<Bytes>::new(), 0);
        assert!(keeper.replay::<Empty<Bytes>>().unwrap().is_end_stream());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]

        /// However the body is cut into frames, and however many frames each try reads before
        /// giving up, every later try gets the whole body: the kept part, then the rest.
        #[test]
        fn every_try_gets_the_whole_body(
            chunks in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..8), 0..6),
            with_trailers in proptest::bool::ANY,
            reads in proptest::collection::vec(0usize..8, 1..4),
            limit in 0usize..64,
        ) {
            let total: usize = chunks.iter().map(Vec::len).sum();
            let whole: Vec<u8> = chunks.concat();
            let mut trailers = HeaderMap::new();
            trailers.insert("x-sum", "1".parse().unwrap());
            let mut frames: VecDeque<Frame<Bytes>> =
                chunks.iter().map(|c| Frame::data(Bytes::from(c.clone()))).collect();
            if with_trailers {
                frames.push_back(Frame::trailers(trailers.clone()));
            }
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            rt.block_on(async {
                let (mut body, keeper) = ReplayBody::keep(Frames(frames), limit);
                for &n in &reads {
                    // This try reads `n` frames, then lets go of the body.
                    for _ in 0..n {
                        if body.frame().await.is_none() {
                            break;
                        }
                    }
                    drop(body);
                    match keeper.replay::<Frames>() {
                        Some(next) => body = next,
                        None => {
                            // Only a body larger than the limit is ever refused.
                            assert!(total > limit, "refused a {total}-byte body, limit {limit}");
                            return;
                        }
                    }
                }
                let got = body.collect().await.unwrap();
                assert_eq!(got.trailers().cloned(), with_trailers.then(|| trailers.clone()));
                assert_eq!(got.to_bytes().to_vec(), whole);
            });
        }
    }
}
