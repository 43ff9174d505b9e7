//! Raw byte-level clients, the steady well-behaved client, a log capture and an
//! allocation probe.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use ferry::codec::{Frame, FrameDecoder, FrameKind, Hello, Welcome};
use ferry::transport::{Stream, ToName};
use ferry::{FormatId, Server, ServerOptions, ShutdownHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

use crate::support::*;

/// The system allocator, recording the largest single allocation this test binary made.
struct Probe;

static LARGEST_ALLOCATION: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` unchanged; the counter has no effect on memory.
unsafe impl GlobalAlloc for Probe {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Probe = Probe;

/// The largest single allocation made so far in this process.
pub fn largest_allocation() -> usize {
    LARGEST_ALLOCATION.load(Ordering::Relaxed)
}

/// Everything the server logged at `WARN` or above, captured for assertions.
#[derive(Clone)]
struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_sink() -> &'static LogSink {
    static SINK: OnceLock<LogSink> = OnceLock::new();
    SINK.get_or_init(|| {
        let sink = LogSink(Arc::new(Mutex::new(Vec::new())));
        let writer = sink.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        sink
    })
}

/// Installs the log capture (idempotent). Call at the start of a test that checks logs.
pub fn capture_logs() {
    log_sink();
}

/// Whether a captured log line contains `text`.
pub fn logged(text: &str) -> bool {
    let bytes = log_sink().0.lock().unwrap_or_else(|p| p.into_inner());
    String::from_utf8_lossy(&bytes).contains(text)
}

/// Waits (bounded) until `text` shows up in the captured logs.
pub async fn wait_logged(text: &str) {
    within(async {
        while !logged(text) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

/// A Calc server with `options`; returns its name and handle.
pub async fn calc_server(options: ServerOptions) -> (String, ShutdownHandle) {
    let (service, _probe) = calc();
    let (name, handle, _task) =
        start(Server::with_options(options).serve(CalcServer::new(service))).await;
    (name, handle)
}

/// Waits (bounded) until the server has exactly `count` open connections.
pub async fn wait_connections(server: &ShutdownHandle, count: usize) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while server.connections() != count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "server has {} connections, expected {count}",
        server.connections()
    );
}

/// A well-behaved client calling `add` in a loop until [`Steady::finish`].
pub struct Steady {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    task: JoinHandle<Result<CalcClient, String>>,
}

impl Steady {
    pub async fn start(name: &str) -> Steady {
        let calc = within(CalcClient::connect(name))
            .await
            .expect("steady client connects");
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn({
            let stop = Arc::clone(&stop);
            let calls = Arc::clone(&calls);
            async move {
                let mut i = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let got = tokio::time::timeout(Duration::from_secs(10), calc.add(i, 1))
                        .await
                        .map_err(|_| format!("call {i} hung"))?
                        .map_err(|err| format!("call {i} failed: {err}"))?;
                    if got != i + 1 {
                        return Err(format!("call {i} returned {got}"));
                    }
                    calls.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                Ok(calc)
            }
        });
        let steady = Steady { stop, calls, task };
        steady.wait_for_calls(1).await;
        steady
    }

    /// Waits (bounded) until `more` further calls have succeeded: the server still serves.
    pub async fn wait_for_calls(&self, more: u64) {
        let target = self.calls.load(Ordering::Relaxed) + more;
        within(async {
            while self.calls.load(Ordering::Relaxed) < target && !self.task.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(
            !self.task.is_finished() || self.calls.load(Ordering::Relaxed) >= target,
            "the steady client stopped early"
        );
    }

    /// Proves the server still answers, stops the loop and fails the test if any call
    /// failed. Returns the client (dropping it closes its connection).
    pub async fn finish(self) -> CalcClient {
        self.wait_for_calls(3).await;
        self.stop.store(true, Ordering::Relaxed);
        let calc = within(self.task)
            .await
            .expect("steady task")
            .unwrap_or_else(|err| panic!("the well-behaved client failed: {err}"));
        assert_eq!(within(calc.add(20, 22)).await.expect("last call"), 42);
        calc
    }
}

/// A client speaking raw bytes.
pub struct Raw {
    pub stream: Stream,
    buf: BytesMut,
    decoder: FrameDecoder,
}

impl Raw {
    pub async fn connect(name: &str) -> Raw {
        let name = name.to_name().expect("name");
        let stream = within(ferry::transport::connect(&name))
            .await
            .expect("raw connect");
        Raw {
            stream,
            buf: BytesMut::new(),
            decoder: FrameDecoder::default(),
        }
    }

    /// Connects and completes a correct handshake for `Calc` in bincode.
    pub async fn calc(name: &str) -> Raw {
        let mut raw = Raw::connect(name).await;
        let welcome = raw.hello(&calc_hello()).await;
        assert!(welcome.status.is_ok(), "refused: {welcome:?}");
        raw
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        within(self.stream.write_all(bytes))
            .await
            .expect("raw write");
    }

    pub async fn send_frame(&mut self, frame: &Frame) {
        let mut out = BytesMut::new();
        frame.encode(&mut out);
        self.send(&out).await;
    }

    /// Sends `hello` and reads the server's Welcome.
    pub async fn hello(&mut self, hello: &Hello) -> Welcome {
        let mut out = BytesMut::new();
        hello.encode(&mut out).expect("encodable hello");
        self.send(&out).await;
        self.welcome().await
    }

    /// Reads the server's Welcome.
    pub async fn welcome(&mut self) -> Welcome {
        loop {
            if let Some(welcome) = Welcome::decode(&mut self.buf).expect("a valid welcome") {
                return welcome;
            }
            let read = within(self.stream.read_buf(&mut self.buf))
                .await
                .expect("read the welcome");
            assert!(read > 0, "server closed without a welcome");
        }
    }

    /// The next frame from the server, or `None` at end of stream.
    pub async fn frame(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.decoder.decode(&mut self.buf).expect("a valid frame") {
                return Some(frame);
            }
            let read = within(self.stream.read_buf(&mut self.buf)).await;
            match read {
                Ok(0) => {
                    assert!(self.buf.is_empty(), "stream ended inside a frame");
                    return None;
                }
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(err) => panic!("raw read failed: {err}"),
            }
        }
    }

    /// Expects an ERROR frame for `id` with `status`; returns its message.
    pub async fn expect_error(&mut self, id: u64, status: ferry::StatusCode) -> String {
        let frame = self
            .frame()
            .await
            .expect("an error frame, not end of stream");
        assert_eq!(frame.kind, FrameKind::ERROR, "{frame:?}");
        assert_eq!(frame.id, id, "{frame:?}");
        assert_eq!(frame.status(), status, "{}", frame.message());
        frame.message().into_owned()
    }

    /// Expects the server to close the connection (after nothing but what was read).
    pub async fn expect_closed(&mut self) {
        if let Some(frame) = self.frame().await {
            panic!("expected the connection to close, got {frame:?}");
        }
    }

    /// Calls `add(a, b)` with request id `id` and checks the answer.
    pub async fn add(&mut self, id: u64, a: i64, b: i64) {
        self.send_frame(&add_request(id, a, b)).await;
        let frame = self.frame().await.expect("a reply");
        assert_eq!(
            frame.kind,
            FrameKind::RESPONSE,
            "{frame:?}: {}",
            frame.message()
        );
        assert_eq!(frame.id, id);
        let sum: i64 = FormatId::Bincode.decode(&frame.body).expect("an i64");
        assert_eq!(sum, a + b);
    }
}

/// A correct hello for the test service `Calc`.
pub fn calc_hello() -> Hello {
    Hello::new(
        CALC_SERVICE_INFO.name,
        CALC_SERVICE_INFO.signature,
        FormatId::Bincode,
    )
}

/// Method ids of `Calc`, by name.
pub fn method(name: &str) -> u16 {
    let index = CALC_SERVICE_INFO
        .methods
        .iter()
        .position(|m| *m == name)
        .expect("a Calc method");
    u16::try_from(index).expect("small index")
}

/// Encodes an argument tuple in bincode.
pub fn args<T: serde::Serialize>(value: &T) -> Bytes {
    let mut out = BytesMut::new();
    FormatId::Bincode
        .encode(value, &mut out)
        .expect("encodable");
    out.freeze()
}

pub fn add_request(id: u64, a: i64, b: i64) -> Frame {
    Frame::request(id, method("add"), args(&(a, b)))
}
