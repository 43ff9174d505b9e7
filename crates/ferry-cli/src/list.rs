//! `ferry list [NAME...]`.

use std::time::Duration;

use ferry::introspect::{IntrospectClient, ServerDescription, RESERVED_PREFIX};
use ferry::transport::TransportError;
use ferry::{Error, Name};
use futures::future::join_all;

use crate::exit::{Code, Failure};
use crate::target;

/// What a probe of one endpoint found.
enum State {
    Live(ServerDescription),
    /// The endpoint exists but nobody serves it (a socket left behind).
    Stale,
    /// Something answered, but not as a ferry server would, or not in time.
    Unreachable(String),
}

pub(crate) async fn run(names: &[String], timeout: Duration) -> Result<(), Failure> {
    let scanning = names.is_empty();
    let endpoints: Vec<(String, Name)> = if scanning {
        scan()?
    } else {
        names
            .iter()
            .map(|n| Ok((n.clone(), target::name(n)?)))
            .collect::<Result<_, Failure>>()?
    };
    // On Windows a scan asks every pipe of the machine, most of them not ferry's: those
    // get a short wait and are not shown unless they answer as ferry servers.
    let windows_scan = scanning && cfg!(windows);
    let wait = if windows_scan {
        timeout.min(Duration::from_millis(500))
    } else {
        timeout
    };
    let states = join_all(endpoints.iter().map(|(_, name)| probe(name, wait))).await;
    let mut rows = Vec::new();
    for ((label, _), state) in endpoints.iter().zip(states) {
        let (state, pid, services) = match state {
            State::Live(d) => {
                let services: Vec<&str> = d
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .filter(|s| !s.starts_with(RESERVED_PREFIX))
                    .collect();
                ("live".to_owned(), d.pid.to_string(), services.join(","))
            }
            State::Stale if windows_scan => continue,
            State::Unreachable(_) if windows_scan => continue,
            State::Stale => ("stale".to_owned(), "-".to_owned(), "-".to_owned()),
            State::Unreachable(why) => (
                format!("unreachable: {why}"),
                "-".to_owned(),
                "-".to_owned(),
            ),
        };
        rows.push([label.clone(), state, pid, services]);
    }
    rows.sort();
    if scanning {
        println!("# {}", Name::plain_directory().display());
    }
    let header = ["NAME", "STATE", "PID", "SERVICES"].map(str::to_owned);
    let widths: Vec<usize> = (0..3)
        .map(|i| {
            rows.iter()
                .chain([&header])
                .map(|r| r[i].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in [&header].into_iter().chain(&rows) {
        println!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    Ok(())
}

/// The endpoints of the plain-name directory.
fn scan() -> Result<Vec<(String, Name)>, Failure> {
    let dir = Name::plain_directory();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        // No server ever ran as this user: nothing to list.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(Failure::new(
                Code::Other,
                format!(
                    "cannot list {}: {err}; name the endpoints instead: ferry list NAME...",
                    dir.display()
                ),
            ))
        }
    };
    let mut endpoints = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(plain) = file_name.to_str().and_then(Name::plain_name_of) else {
            continue;
        };
        if let Ok(name) = Name::new(plain) {
            endpoints.push((plain.to_owned(), name));
        }
    }
    Ok(endpoints)
}

async fn probe(name: &Name, wait: Duration) -> State {
    let asking = async {
        let client = IntrospectClient::connect_with(name, &target::options(wait)).await?;
        client.describe().await
    };
    match tokio::time::timeout(wait, asking).await {
        Ok(Ok(description)) => State::Live(description),
        Ok(Err(err)) if not_found(&err) => State::Stale,
        Ok(Err(err)) => State::Unreachable(format!("{err:#}")),
        Err(_) => State::Unreachable(format!("no answer within {wait:?}")),
    }
}

/// Whether nobody listens at the endpoint.
fn not_found(err: &Error) -> bool {
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<TransportError>())
        .is_some_and(TransportError::is_not_found)
}
