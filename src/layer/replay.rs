//! [`ReplayBody`]: a request body kept as it streams, so that a retry or a mirror can send the
//! same request again.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, Request};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// The default limit on a kept request body: 64 KiB.
pub const DEFAULT_REPLAY_LIMIT: usize = 64 * 1024;

/// What has been kept of a request body so far.
#[derive(Default, Debug)]
pub(crate) struct Kept {
    chunks: Vec<Bytes>,
    len: usize,
    trailers: Option<HeaderMap>,
    /// The whole body went by (and fitted in the limit).
    complete: bool,
    /// The body outgrew the limit or failed: it cannot be sent again.
    lost: bool,
}

/// A handle on a request body being kept (not nameable outside the crate).
#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct Keeper {
    kept: Arc<Mutex<Kept>>,
    limit: usize,
}

impl Keeper {
    fn lock(&self) -> MutexGuard<'_, Kept> {
        // A panic while the lock was held cannot leave `Kept` half-written in a way that
        // matters: at worst a replay is refused.
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether the whole body has been kept.
    pub(crate) fn is_whole(&self) -> bool {
        let kept = self.lock();
        kept.complete && !kept.lost
    }

    /// A body equal to the one kept, if it was kept whole.
    pub(crate) fn replay<B>(&self) -> Option<ReplayBody<B>> {
        let kept = self.lock();
        if !kept.complete || kept.lost {
            return None;
        }
        Some(ReplayBody {
            state: State::Replay {
                chunks: kept.chunks.iter().cloned().collect(),
                trailers: kept.trailers.clone(),
                len: kept.len as u64,
            },
        })
    }
}

pin_project! {
    /// The request body a layer built with
    /// [`MeshLayer::replay_bodies`](super::MeshLayer::replay_bodies) hands to its inner
    /// service.
    ///
    /// For a request whose route retries or mirrors, it keeps a copy of the data as the inner
    /// service reads it, up to the layer's limit, so that a retry or a mirror can send the
    /// same body again. A body larger than the limit streams through all the same, but the
    /// request is then neither retried nor mirrored. For other requests it is the original
    /// body, untouched.
    pub struct ReplayBody<B> {
        #[pin]
        state: State<B>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<B> {
        // Passed through, nothing kept.
        Plain { #[pin] body: B },
        // Passed through, and kept.
        Keeping { #[pin] body: B, keeper: Keeper },
        // Sent again from what was kept.
        Replay { chunks: VecDeque<Bytes>, trailers: Option<HeaderMap>, len: u64 },
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.state {
            State::Plain { .. } => "plain",
            State::Keeping { .. } => "keeping",
            State::Replay { .. } => "replay",
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

    /// Keeps a copy of `body` of at most `limit` bytes as it is read, and the handle on it.
    pub(crate) fn keep(body: B, limit: usize) -> (Self, Keeper) {
        let mut kept = Kept::default();
        if body.is_end_stream() {
            kept.complete = true;
        } else if body.size_hint().lower() > limit as u64 {
            kept.lost = true;
        }
        let keeper = Keeper {
            kept: Arc::new(Mutex::new(kept)),
            limit,
        };
        let body = ReplayBody {
            state: State::Keeping {
                body,
                keeper: keeper.clone(),
            },
        };
        (body, keeper)
    }
}

/// Wraps a request's body to keep it (`Some(limit)`) or to pass it through (`None`).
pub(crate) fn wrap<B: Body>(
    req: Request<B>,
    limit: Option<usize>,
) -> (Request<ReplayBody<B>>, Option<Keeper>) {
    match limit {
        None => (req.map(ReplayBody::plain), None),
        Some(limit) => {
            let (parts, body) = req.into_parts();
            let (body, keeper) = ReplayBody::keep(body, limit);
            (Request::from_parts(parts, body), Some(keeper))
        }
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
            StateProj::Keeping { mut body, keeper } => {
                let frame = ready!(body.as_mut().poll_frame(cx));
                let mut kept = keeper.lock();
                match &frame {
                    _ if kept.lost => {}
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            kept.len += data.len();
                            if kept.len > keeper.limit {
                                kept.lost = true;
                                kept.chunks = Vec::new();
                            } else if !data.is_empty() {
                                kept.chunks.push(data.clone());
                            }
                        } else if let Some(trailers) = frame.trailers_ref() {
                            kept.trailers = Some(trailers.clone());
                        }
                    }
                    Some(Err(_)) => kept.lost = true,
                    None => kept.complete = true,
                }
                // A reader that knows the length (hyper does) stops at the last data frame
                // without asking for the end.
                if body.is_end_stream() {
                    kept.complete = true;
                }
                Poll::Ready(frame)
            }
            StateProj::Replay {
                chunks, trailers, ..
            } => Poll::Ready(match chunks.pop_front() {
                Some(data) => Some(Ok(Frame::data(data))),
                None => trailers.take().map(|t| Ok(Frame::trailers(t))),
            }),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.state {
            State::Plain { body } => body.is_end_stream(),
            State::Keeping { body, keeper } => {
                let end = body.is_end_stream();
                if end {
                    keeper.lock().complete = true;
                }
                end
            }
            State::Replay {
                chunks, trailers, ..
            } => chunks.is_empty() && trailers.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.state {
            State::Plain { body } | State::Keeping { body, .. } => body.size_hint(),
            State::Replay { len, .. } => SizeHint::with_exact(*len),
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
}
