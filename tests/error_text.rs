//! The texts of ferry's errors, pinned: each level of an error chain says what failed at
//! that level, once, and leaves the cause to `source()`; `{:#}` and `ferry::ErrorChain`
//! print the whole chain on one line.

mod support;

use std::error::Error as _;

use ferry::transport::TransportError;
use ferry::{Error, ErrorChain, ErrorKind, Server};
use support::CalcServer;
use support::{assert_chain_distinct, calc, levels, start_calc, unique_name, within, CalcClient};

/// `err`'s source as a transport error.
fn transport_source(err: &Error) -> &TransportError {
    err.source()
        .and_then(|source| source.downcast_ref::<TransportError>())
        .unwrap_or_else(|| panic!("no transport error under {err:?}"))
}

/// `cannot connect` / `no server at X` / what the system said: three levels, each once.
#[tokio::test]
async fn connecting_to_no_server_says_each_cause_once() {
    // A server of this process makes sure the runtime directory exists, so what fails is
    // the connect itself.
    let (_running, _shutdown, _probe) = start_calc().await;
    let name = unique_name("absent");
    let address = ferry::Name::new(&name).expect("name").address();

    let err = within(CalcClient::connect(name.as_str()))
        .await
        .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Connect);
    assert!(err.is_safe_to_retry());
    assert_eq!(err.to_string(), "cannot connect");
    let texts = levels(&err);
    assert_eq!(texts.len(), 3, "{texts:?}");
    assert_eq!(texts[1], format!("no server at {address}"));
    assert!(transport_source(&err).is_not_found());
    let os = err
        .source()
        .and_then(|source| source.source())
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .expect("the system's error under the transport error");
    assert_eq!(os.kind(), std::io::ErrorKind::NotFound);
    #[cfg(target_os = "linux")]
    assert_eq!(texts[2], "No such file or directory (os error 2)");
    assert_chain_distinct(&err);

    // The printers join the levels once each.
    assert_eq!(format!("{err:#}"), texts.join(": "));
    assert_eq!(ErrorChain::new(&err).to_string(), texts.join(": "));
    #[cfg(target_os = "linux")]
    assert_eq!(
        format!("{err:#}"),
        format!("cannot connect: no server at {address}: No such file or directory (os error 2)")
    );
}

/// Binding a name a live server holds names that server's process (Unix: read from the
/// peer credentials of a probe connection).
#[tokio::test]
async fn binding_a_name_in_use_names_the_process_that_holds_it() {
    // Wine does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE: a second server on the name gets
    // an instance of its own there. Real Windows refuses it, and this test runs there.
    if std::env::var_os("FERRY_UNDER_WINE").is_some() {
        eprintln!("skipped under Wine: it does not enforce first_pipe_instance");
        return;
    }
    let (name, _shutdown, _probe) = start_calc().await;
    let address = ferry::Name::new(&name).expect("name").address();
    let (service, _probe) = calc();

    let err = within(
        Server::new()
            .serve(CalcServer::new(service))
            .bind(name.as_str()),
    )
    .await
    .unwrap_err();

    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(err.to_string(), "cannot bind the endpoint");
    let source = transport_source(&err);
    assert!(
        matches!(source, TransportError::AddressInUse { .. }),
        "{source:?}"
    );
    #[cfg(unix)]
    {
        let me = ferry::PeerCredentials::of_this_process().expect("own credentials");
        let uid = me.uid().expect("a uid on unix");
        assert_eq!(
            levels(&err),
            [
                "cannot bind the endpoint".to_owned(),
                format!(
                    "address {address} is in use by a running server (process {}, user {uid})",
                    std::process::id()
                ),
            ]
        );
    }
    #[cfg(windows)]
    assert_eq!(
        levels(&err),
        [
            "cannot bind the endpoint".to_owned(),
            format!("address {address} is in use by a running server"),
        ]
    );
    assert_chain_distinct(&err);
}

/// A plain name with a `/` is refused, saying how to write a path; connect and bind alike.
#[tokio::test]
async fn a_plain_name_with_a_slash_is_refused_with_the_way_to_write_a_path() {
    let invalid = "invalid endpoint name \"myapp/calc\": a plain name cannot contain '/'; a \
                   socket path starts with '/', './' or '../' (write \"./myapp/calc\" for a path \
                   relative to the working directory)";

    let err = within(CalcClient::connect("myapp/calc")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    assert_eq!(levels(&err), ["cannot connect", invalid]);
    assert!(matches!(
        transport_source(&err),
        TransportError::InvalidName { .. }
    ));

    let (service, _probe) = calc();
    let err = within(
        Server::new()
            .serve(CalcServer::new(service))
            .bind("myapp/calc"),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Server);
    assert_eq!(levels(&err), ["cannot bind the endpoint", invalid]);
    assert_eq!(
        format!("{err:#}"),
        format!("cannot bind the endpoint: {invalid}")
    );
}

/// `Error::new` is its message; `with_source` adds a cause that `{}` does not repeat and
/// `{:#}` prints after it.
#[test]
fn a_users_error_prints_like_ferrys() {
    let err = Error::new(ErrorKind::Closed, "the connection closed");
    assert!(err.is_closed());
    assert_eq!(err.status(), None);
    assert_eq!(err.to_string(), "the connection closed");
    assert_eq!(format!("{err:#}"), "the connection closed");
    assert!(err.source().is_none());

    let io = std::io::Error::new(std::io::ErrorKind::BrokenPipe, "pipe closed by the peer");
    let err = Error::new(ErrorKind::Closed, "the connection failed while writing").with_source(io);
    assert_eq!(err.to_string(), "the connection failed while writing");
    assert_eq!(
        format!("{err:#}"),
        "the connection failed while writing: pipe closed by the peer"
    );
    let source = err.source().expect("a source");
    assert_eq!(
        source.downcast_ref::<std::io::Error>().map(|io| io.kind()),
        Some(std::io::ErrorKind::BrokenPipe)
    );
    assert_chain_distinct(&err);

    // A ferry error inside a chain prints its own text once: no level twice.
    let outer = Error::new(ErrorKind::Usage, "the fake client failed").with_source(err);
    assert_eq!(
        format!("{outer:#}"),
        "the fake client failed: the connection failed while writing: pipe closed by the peer"
    );
    assert_eq!(ErrorChain::new(&outer).to_string(), format!("{outer:#}"));
}

/// The checker itself: an error that repeats its source's text is caught.
#[test]
#[should_panic(expected = "repeats the text of its source")]
fn a_repeated_cause_is_caught() {
    let io = std::io::Error::other("disk full");
    let err = Error::new(ErrorKind::Server, "cannot bind: disk full").with_source(io);
    assert_chain_distinct(&err);
}
