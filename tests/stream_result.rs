//! Methods that return `Result<ferry::Streaming<T>, E>`: the server's error arrives before
//! any item, or the stream, across a real connection, in both payload formats and from the
//! blocking client.

mod support;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ferry::{ClientOptions, FormatId, Server, StreamSender, Streaming};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use support::{serve_on_thread, unique_name, within};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpenError {
    NotFound(String),
    Denied,
}

#[ferry::service]
pub trait Logs {
    /// The lines of log `name` from now on, or why it cannot be followed. `fixed` holds two
    /// lines and ends; `boom` panics before it answers; `stuck` never answers.
    async fn follow(&self, name: String) -> Result<ferry::Streaming<String>, OpenError>;
    /// Sends `line` to every follower of `name`; returns how many took it.
    async fn append(&self, name: String, line: String) -> usize;
    /// Waits until every follower of `name` is gone; returns how many there were.
    async fn wait_unfollowed(&self, name: String) -> usize;
}

#[derive(Default)]
struct LogsImpl {
    followers: Mutex<HashMap<String, Vec<StreamSender<String>>>>,
}

impl LogsImpl {
    fn followers_of(&self, name: &str) -> Vec<StreamSender<String>> {
        let followers = self.followers.lock().unwrap();
        followers.get(name).cloned().unwrap_or_default()
    }
}

impl Logs for LogsImpl {
    async fn follow(&self, name: String) -> Result<Streaming<String>, OpenError> {
        match name.as_str() {
            "app" => {
                let (sender, stream) = Streaming::channel(8);
                let mut followers = self.followers.lock().unwrap();
                followers.entry(name).or_default().push(sender);
                Ok(stream)
            }
            "fixed" => Ok(Streaming::from_iter(["one".to_owned(), "two".to_owned()])),
            "secret" => Err(OpenError::Denied),
            "boom" => panic!("cannot open the log"),
            "stuck" => std::future::pending().await,
            _ => Err(OpenError::NotFound(name)),
        }
    }

    async fn append(&self, name: String, line: String) -> usize {
        let mut took = 0;
        for follower in self.followers_of(&name) {
            if follower.send(line.clone()).await.is_ok() {
                took += 1;
            }
        }
        took
    }

    async fn wait_unfollowed(&self, name: String) -> usize {
        let followers = self.followers_of(&name);
        for follower in &followers {
            follower.closed().await;
        }
        followers.len()
    }
}

async fn start_logs() -> LogsClient {
    let name = unique_name("logs");
    let bound = Server::new()
        .serve(LogsServer::new(LogsImpl::default()))
        .bind(name.as_str())
        .await
        .unwrap();
    tokio::spawn(bound.run());
    within(LogsClient::connect(name.as_str())).await.unwrap()
}

#[tokio::test]
async fn the_error_arrives_before_any_item_and_ends_the_call() {
    let logs = start_logs().await;
    let missing = within(logs.follow("missing".into())).await.unwrap();
    assert_eq!(missing.unwrap_err(), OpenError::NotFound("missing".into()));
    let denied = within(logs.follow("secret".into())).await.unwrap();
    assert_eq!(denied.unwrap_err(), OpenError::Denied);
    // The connection goes on serving, streams included.
    let lines: Vec<String> = within(async {
        let stream = logs.follow("fixed".into()).await.unwrap().unwrap();
        stream.map(Result::unwrap).collect().await
    })
    .await;
    assert_eq!(lines, ["one", "two"]);
}

#[tokio::test]
async fn the_stream_is_returned_as_soon_as_the_server_accepted_the_call() {
    let logs = start_logs().await;
    // Nothing has been appended: a client that waited for a first item would hang here.
    let mut lines = within(logs.follow("app".into())).await.unwrap().unwrap();
    assert_eq!(
        within(logs.append("app".into(), "hello".into()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(within(lines.next()).await.unwrap().unwrap(), "hello");
    // Dropping the stream cancels the call on the server, as for a plain reply stream.
    drop(lines);
    assert_eq!(within(logs.wait_unfollowed("app".into())).await.unwrap(), 1);
}

#[tokio::test]
async fn a_failure_before_the_answer_is_the_call_s_error() {
    let logs = start_logs().await;
    let err = within(logs.follow("boom".into())).await.unwrap_err();
    assert!(err.is_internal(), "{err:?}");
    let err = within(
        logs.with_timeout(Duration::from_millis(100))
            .follow("stuck".into()),
    )
    .await
    .unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let fixed = within(logs.follow("fixed".into())).await.unwrap().unwrap();
    assert_eq!(within(fixed.count()).await, 2);
}

#[tokio::test]
async fn both_answers_travel_in_json_too() {
    let (server_end, client_end) = ferry::transport::pair().unwrap();
    tokio::spawn(
        Server::new()
            .serve(LogsServer::new(LogsImpl::default()))
            .serve_stream(server_end),
    );
    let options = ClientOptions::new().format(FormatId::Json);
    let logs = within(LogsClient::from_stream(client_end, &options))
        .await
        .unwrap();
    let missing = within(logs.follow("nope".into())).await.unwrap();
    assert_eq!(missing.unwrap_err(), OpenError::NotFound("nope".into()));
    let lines: Vec<String> = within(async {
        let stream = logs.follow("fixed".into()).await.unwrap().unwrap();
        stream.map(Result::unwrap).collect().await
    })
    .await;
    assert_eq!(lines, ["one", "two"]);
}

#[test]
fn the_blocking_client_gets_the_error_or_an_iterator() {
    let name = serve_on_thread(|| Server::new().serve(LogsServer::new(LogsImpl::default())));
    let logs = LogsBlockingClient::connect(name.as_str()).unwrap();
    assert_eq!(
        logs.follow("secret".into()).unwrap().unwrap_err(),
        OpenError::Denied
    );
    let lines: Vec<String> = logs
        .follow("fixed".into())
        .unwrap()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(lines, ["one", "two"]);
    let mut live = logs.follow("app".into()).unwrap().unwrap();
    assert_eq!(logs.append("app".into(), "x".into()).unwrap(), 1);
    assert_eq!(live.next().unwrap().unwrap(), "x");
}

#[tokio::test]
async fn the_dynamic_client_reads_the_schema_and_both_answers() {
    let name = unique_name("logs-dynamic");
    let bound = Server::new()
        .serve(LogsServer::new(LogsImpl::default()))
        .bind(name.as_str())
        .await
        .unwrap();
    tokio::spawn(bound.run());
    let logs = within(ferry::dynamic::DynamicClient::connect(
        name.as_str(),
        "Logs",
        &ClientOptions::new(),
    ))
    .await
    .unwrap();
    let follow = logs.method("follow").unwrap();
    let schema = logs
        .service()
        .method("follow")
        .unwrap()
        .method_schema()
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            schema.returns,
            ferry::codec::schema::TypeSchema::StreamResult { .. }
        ),
        "{schema:?}"
    );
    let refused = within(logs.call_streaming_result(follow, &serde_json::json!(["secret"])))
        .await
        .unwrap();
    assert_eq!(refused.unwrap_err(), serde_json::json!("Denied"));
    let stream = within(logs.call_streaming_result(follow, &serde_json::json!(["fixed"])))
        .await
        .unwrap()
        .unwrap();
    let lines: Vec<_> = within(stream.map(Result::unwrap).collect::<Vec<_>>()).await;
    assert_eq!(lines, [serde_json::json!("one"), serde_json::json!("two")]);
}
