//! `ferry call NAME Service.method '<json args>'`.

use std::io::Write;
use std::time::Duration;

use ferry::codec::schema::{MethodSchema, TypeSchema};
use ferry::dynamic::DynamicClient;
use ferry::introspect::{MethodDescription, ServiceDescription};
use futures::StreamExt;
use serde_json::{json, Value};

use crate::exit::{Code, Failure};
use crate::render::Renderer;
use crate::target;

pub(crate) async fn run(
    name: &str,
    target: &str,
    args: &str,
    timeout: Duration,
) -> Result<(), Failure> {
    let name = target::name(name)?;
    let Some((service_name, method_name)) = target.rsplit_once('.') else {
        return Err(Failure::new(
            Code::Usage,
            format!("`{target}` is not `Service.method` (for example `Calc.add`)"),
        ));
    };
    let args: Value = serde_json::from_str(args).map_err(|err| {
        Failure::new(
            Code::BadArguments,
            format!(
                "the arguments are not valid JSON ({err}); they are one JSON array with an element per argument, e.g. '[1, 2]'"
            ),
        )
    })?;
    let (_introspect, description) = target::describe(&name, timeout).await?;
    let address = name.address();
    let service = description.service(service_name).ok_or_else(|| {
        let hosted: Vec<&str> = description
            .services
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        Failure::new(
            Code::Unknown,
            format!(
                "no service `{service_name}` at {address}; it hosts {}",
                hosted.join(", ")
            ),
        )
    })?;
    let method = service.method(method_name).ok_or_else(|| {
        let methods: Vec<&str> = service.methods.iter().map(|m| m.name.as_str()).collect();
        Failure::new(
            Code::Unknown,
            format!(
                "service `{service_name}` has no method `{method_name}`; its methods are {}",
                methods.join(", ")
            ),
        )
    })?;
    let reply = check(service, method, &args)?;
    let streaming = reply != Reply::Value;
    // A reply stream runs until it ends or Ctrl-C: no deadline for its call.
    let mut options = target::options(timeout);
    if streaming {
        options = ferry::ClientOptions::new().handshake_timeout(timeout);
    }
    let doing = format!("calling {target} at {address}");
    let client = tokio::time::timeout(
        timeout,
        DynamicClient::connect_described(&name, service, &options),
    )
    .await
    .map_err(|_| {
        Failure::new(
            Code::Timeout,
            format!("{doing}: no connection within {timeout:?}"),
        )
    })?
    .map_err(|err| Failure::ferry(&doing, &err))?;
    let called = client.method(&method.name).ok_or_else(|| {
        Failure::new(
            Code::Unknown,
            format!("service `{service_name}` has no method `{method_name}`"),
        )
    })?;
    let work = async {
        if streaming {
            let answer = if reply == Reply::StreamResult {
                client.call_streaming_result(called, &args).await
            } else {
                client.call_streaming(called, &args).await.map(Ok)
            };
            let mut items = match answer.map_err(|err| Failure::ferry(&doing, &err))? {
                Ok(items) => items,
                // The method refused before its stream: its error, as a plain reply.
                Err(error) => {
                    let _ = writeln!(std::io::stdout().lock(), "{}", json!({ "Err": error }));
                    return Ok(());
                }
            };
            let mut out = std::io::stdout().lock();
            while let Some(item) = items.next().await {
                let item = item.map_err(|err| Failure::ferry(&doing, &err))?;
                if writeln!(out, "{item}").and_then(|()| out.flush()).is_err() {
                    // Whoever reads our output stopped (`| head`): so do we.
                    return Ok(());
                }
            }
            Ok(())
        } else {
            let reply = client
                .call(called, &args)
                .await
                .map_err(|err| Failure::ferry(&doing, &err))?;
            let text = serde_json::to_string_pretty(&reply).unwrap_or_else(|_| reply.to_string());
            let _ = writeln!(std::io::stdout().lock(), "{text}");
            Ok(())
        }
    };
    tokio::select! {
        done = work => done,
        _ = tokio::signal::ctrl_c() => Err(Failure::new(Code::Interrupted, "interrupted")),
    }
}

/// What a method replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reply {
    /// One value.
    Value,
    /// A stream (`Streaming<T>`).
    Stream,
    /// A result, then after `Ok` a stream (`Result<Streaming<T>, E>`).
    StreamResult,
}

/// Checks `args` against the method's schema when the server described it; returns
/// what the method replies.
fn check(
    service: &ServiceDescription,
    method: &MethodDescription,
    args: &Value,
) -> Result<Reply, Failure> {
    let full = format!("{}.{}", service.name, method.name);
    let schema: Option<MethodSchema> = method.method_schema().transpose().map_err(|err| {
        Failure::new(Code::Other, format!("the server's schema of {full}: {err}"))
    })?;
    let Some(schema) = schema else {
        // No schema: the server checks the arguments itself.
        return Ok(reply_by_signature(&service.canonical, &method.name));
    };
    let signature = Renderer::default().method(&schema);
    if schema.args.iter().any(TypeSchema::is_stream) {
        return Err(Failure::new(
            Code::Usage,
            format!("{full} takes a stream argument, which `ferry call` cannot send ({signature})"),
        ));
    }
    schema.check_json_args(args).map_err(|mismatch| {
        Failure::new(
            Code::BadArguments,
            format!("bad arguments for {full}: {mismatch}; the method is {signature}"),
        )
    })?;
    Ok(match schema.returns {
        TypeSchema::Value(_) => Reply::Value,
        TypeSchema::Stream(_) => Reply::Stream,
        TypeSchema::StreamResult { .. } => Reply::StreamResult,
    })
}

/// What method `method` replies, read from the canonical signature text (docs/protocol.md
/// section 7) of a service that describes no schemas.
fn reply_by_signature(canonical: &str, method: &str) -> Reply {
    let Some(start) = canonical.find(&format!(" {method}(")) else {
        return Reply::Value;
    };
    let rest = &canonical[start..];
    let Some(arrow) = rest.find(")->") else {
        return Reply::Value;
    };
    let returns = &rest[arrow + 3..];
    let stream = |text: &str| {
        ["Streaming<", "ferry::Streaming<", "::ferry::Streaming<"]
            .iter()
            .any(|prefix| text.starts_with(prefix))
    };
    let absolute = returns.trim_start_matches("::");
    let result = ["Result<", "std::result::Result<", "core::result::Result<"]
        .iter()
        .find_map(|prefix| absolute.strip_prefix(prefix));
    match result {
        _ if stream(returns) => Reply::Stream,
        Some(ok) if stream(ok) => Reply::StreamResult,
        _ => Reply::Value,
    }
}

#[cfg(test)]
mod tests {
    use super::{reply_by_signature, Reply};

    #[test]
    fn a_stream_is_seen_in_the_signature_text() {
        let text = "service Jobs { add(i64,i64)->i64; watch(u64)->ferry::Streaming<u32>; \
                    tail(String)->Result<Streaming<String>,Missing>; \
                    div(i64,i64)->Result<i64,DivError>; }";
        assert_eq!(reply_by_signature(text, "add"), Reply::Value);
        assert_eq!(reply_by_signature(text, "watch"), Reply::Stream);
        assert_eq!(reply_by_signature(text, "tail"), Reply::StreamResult);
        assert_eq!(reply_by_signature(text, "div"), Reply::Value);
        assert_eq!(reply_by_signature(text, "nope"), Reply::Value);
    }
}
