//! `ferry describe NAME`.

use std::time::Duration;

use ferry::introspect::{MethodDescription, ServerDescription};

use crate::exit::Failure;
use crate::render::Renderer;
use crate::target;

pub(crate) async fn run(name: &str, timeout: Duration) -> Result<(), Failure> {
    let name = target::name(name)?;
    let (_client, description) = target::describe(&name, timeout).await?;
    print!("{}", text(&name.address(), &description));
    Ok(())
}

/// The description as a person reads it.
pub(crate) fn text(address: &str, description: &ServerDescription) -> String {
    let mut out = format!(
        "{address}\n  server pid {}, ferry {}, protocol version {}\n",
        description.pid, description.ferry, description.protocol
    );
    for service in &description.services {
        out.push_str(&format!(
            "\nservice {} (signature {})\n",
            service.name, service.signature
        ));
        let mut renderer = Renderer::default();
        for method in &service.methods {
            out.push_str(&format!(
                "  {:>3}  {}\n",
                method.index,
                line(&mut renderer, method)
            ));
        }
        if !renderer.definitions.is_empty() {
            out.push_str("  types:\n");
            for definition in &renderer.definitions {
                out.push_str(&format!("    {definition}\n"));
            }
        }
    }
    out
}

/// One method: its signature and schema hash, or its name and why there is no schema.
fn line(renderer: &mut Renderer, method: &MethodDescription) -> String {
    match method.method_schema() {
        Some(Ok(schema)) => format!(
            "{}   [{}]",
            renderer.method(&schema),
            method.hash.as_deref().unwrap_or("?")
        ),
        Some(Err(err)) => format!("{}   (schema unreadable: {err})", method.name),
        None => format!("{}   (no schema)", method.name),
    }
}
