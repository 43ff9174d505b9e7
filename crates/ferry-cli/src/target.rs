//! Reaching an endpoint's introspection service.

use std::time::Duration;

use ferry::introspect::{IntrospectClient, ServerDescription};
use ferry::transport::ToName;
use ferry::{ClientOptions, Name};

use crate::exit::{Code, Failure};

/// The endpoint `name`, or a usage failure that says why it is not one.
pub(crate) fn name(name: &str) -> Result<Name, Failure> {
    name.to_name()
        .map_err(|err| Failure::new(Code::Usage, format!("`{name}` is not an endpoint: {err}")))
}

/// The options of every connection the command makes.
pub(crate) fn options(timeout: Duration) -> ClientOptions {
    ClientOptions::new()
        .handshake_timeout(timeout)
        .timeout(timeout)
}

/// What the server at `name` says about itself.
pub(crate) async fn describe(
    name: &Name,
    timeout: Duration,
) -> Result<(IntrospectClient, ServerDescription), Failure> {
    let doing = format!("cannot reach {}", name.address());
    let options = options(timeout);
    let connecting = IntrospectClient::connect_with(name, &options);
    let client = tokio::time::timeout(timeout, connecting)
        .await
        .map_err(|_| {
            Failure::new(
                Code::Timeout,
                format!("{doing}: no answer within {timeout:?}"),
            )
        })?
        .map_err(|err| Failure::ferry(&doing, &err))?;
    let description = client
        .describe()
        .await
        .map_err(|err| Failure::ferry(&format!("cannot describe {}", name.address()), &err))?;
    Ok((client, description))
}
