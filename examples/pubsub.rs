//! Publish/subscribe with server push: 100 subscribers, one publisher, every message
//! delivered to every subscriber in order.
//!
//! ```text
//! cargo run --release --example pubsub                   # 100 subscribers, 1000 messages
//! cargo run --release --example pubsub -- 20 5000        # 20 subscribers, 5000 messages
//! ```
//!
//! The server keeps a [`ferry::StreamSender`] per subscriber (the handle that pushes to that
//! client later); `publish` fans each message out to all of them. Flow control is per
//! subscriber: a slow one slows the publisher instead of growing the server's memory.

use std::sync::Mutex;
use std::time::Instant;

use futures::StreamExt;

/// A topic anyone on the machine's same user can subscribe to.
#[ferry::service]
pub trait Topic {
    /// Receives everything published from now on.
    async fn subscribe(&self) -> ferry::Streaming<String>;
    /// How many subscribers are connected.
    async fn subscribers(&self) -> usize;
    /// Sends `message` to every subscriber; returns how many got it.
    async fn publish(&self, message: String) -> usize;
}

#[derive(Default)]
struct TopicImpl {
    subscribers: Mutex<Vec<ferry::StreamSender<String>>>,
}

impl Topic for TopicImpl {
    async fn subscribe(&self) -> ferry::Streaming<String> {
        let (sender, stream) = ferry::Streaming::channel(64);
        self.subscribers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(sender);
        stream
    }

    async fn subscribers(&self) -> usize {
        self.subscribers
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    }

    async fn publish(&self, message: String) -> usize {
        let subscribers = {
            let mut subscribers = self
                .subscribers
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            // Forget subscribers that went away.
            subscribers.retain(|subscriber| !subscriber.is_closed());
            subscribers.clone()
        };
        let mut delivered = 0;
        for subscriber in subscribers {
            if subscriber.send(message.clone()).await.is_ok() {
                delivered += 1;
            }
        }
        delivered
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(100);
    let messages: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);

    let name = format!("ferry-pubsub-{}", std::process::id());
    let server = ferry::Server::new()
        .serve(TopicServer::new(TopicImpl::default()))
        .bind(name.as_str())
        .await?;
    println!("listening on {}", server.address());
    let shutdown = server.shutdown_handle();
    let serving = tokio::spawn(server.run());

    let mut receivers = Vec::new();
    for _ in 0..subscribers {
        let client = TopicClient::connect(name.as_str()).await?;
        let mut stream = client.subscribe().await?;
        receivers.push(tokio::spawn(async move {
            let _connection = client;
            let mut next = 0usize;
            while next < messages {
                match stream.next().await {
                    Some(Ok(message)) if message == format!("message {next}") => next += 1,
                    Some(Ok(message)) => {
                        return Err(format!("expected message {next}, got {message:?}"))
                    }
                    Some(Err(err)) => return Err(err.to_string()),
                    None => return Err(format!("stream ended after {next} messages")),
                }
            }
            Ok(next)
        }));
    }

    let publisher = TopicClient::connect(name.as_str()).await?;
    while publisher.subscribers().await? < subscribers {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    for n in 0..messages {
        publisher.publish(format!("message {n}")).await?;
    }
    let mut failed = 0;
    for receiver in receivers {
        match receiver.await? {
            Ok(_) => {}
            Err(err) => {
                failed += 1;
                eprintln!("pubsub: a subscriber failed: {err}");
            }
        }
    }
    let elapsed = started.elapsed();
    shutdown.shutdown();
    drop(publisher);
    let _ = serving.await;
    println!(
        "pubsub: {subscribers} subscribers, {messages} messages, {} deliveries, {failed} failed subscribers, {:.0} deliveries/s",
        subscribers * messages,
        (subscribers * messages) as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    if failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}
