//! A response body fed by a channel, for streamed blob downloads.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

/// Frames arrive on a bounded channel from a blocking reader thread; an `Err` item aborts the
/// response (the connection is reset rather than the body completed).
#[derive(Debug)]
pub(crate) struct ChannelBody {
    receiver: mpsc::Receiver<std::io::Result<Bytes>>,
    remaining: u64,
}

impl ChannelBody {
    /// A body of exactly `size` bytes.
    pub(crate) fn new(receiver: mpsc::Receiver<std::io::Result<Bytes>>, size: u64) -> Self {
        ChannelBody {
            receiver,
            remaining: size,
        }
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.receiver.poll_recv(cx) {
            Poll::Ready(Some(Ok(data))) => {
                self.remaining = self.remaining.saturating_sub(data.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error))),
            Poll::Ready(None) if self.remaining > 0 => {
                Poll::Ready(Some(Err(std::io::Error::other("blob stream ended early"))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}
