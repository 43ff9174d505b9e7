//! The channel as a ferry service: one method, `send`, whose reply means "queued".

use std::any::TypeId;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Mutex, OnceLock};

use tokio::sync::mpsc;

use crate::channel::Item;
use ferry_codec::schema::TypeSchema;

use crate::contract::{
    Call, Handler, MethodSchemaBuilder, SchemaTable, ServiceDispatch, ServiceInfo,
};

/// The service name every channel endpoint hosts.
pub(crate) const SERVICE_NAME: &str = "ferry.channel";

/// Method id of `send`.
pub(crate) const SEND: u16 = 0;

/// The reply of `send`: `Ok(())` once the item is queued, `Err(reason)` when the receiver
/// is closed.
pub(crate) type SendReply = Result<(), String>;

/// The wire identity of a channel of `T`.
///
/// [`ServiceInfo`] holds `&'static` data and Rust has no generic statics, so each item type
/// gets its identity built once and leaked, kept in a process-wide table by `TypeId`: a
/// bounded cost of one small allocation per item type used in the process.
pub(crate) fn info<T: Item>() -> &'static ServiceInfo {
    static TABLE: OnceLock<Mutex<HashMap<TypeId, &'static ServiceInfo>>> = OnceLock::new();
    let mut table = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    table.entry(TypeId::of::<T>()).or_insert_with(|| {
        let canonical: &'static str = Box::leak(canonical::<T>().into_boxed_str());
        let schemas: &'static SchemaTable = Box::leak(Box::new(schemas::<T>()));
        Box::leak(Box::new(
            ServiceInfo::new(SERVICE_NAME, canonical, &["send"]).with_schema_table(schemas),
        ))
    })
}

/// The method schemas of a channel of `T`: `send(T) -> Result<(), String>`.
fn schemas<T: Item>() -> SchemaTable {
    let send = MethodSchemaBuilder::new(SERVICE_NAME, "send")
        .arg(TypeSchema::of::<T>())
        .returns(TypeSchema::of::<SendReply>())?;
    Ok(vec![send])
}

/// The canonical signature of a channel of `T`, in the form the service macro uses.
fn canonical<T: Item>() -> String {
    let item: String = std::any::type_name::<T>()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    format!("service {SERVICE_NAME} {{ send(({item},))->Result<(),String>; }}")
}

/// Serves `send` by pushing each item into the receiver's bounded queue.
pub(crate) struct ChannelService<T> {
    queue: mpsc::Sender<T>,
    _item: PhantomData<fn(T)>,
}

impl<T> ChannelService<T> {
    pub(crate) fn new(queue: mpsc::Sender<T>) -> Self {
        ChannelService {
            queue,
            _item: PhantomData,
        }
    }
}

impl<T> fmt::Debug for ChannelService<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelService")
            .field("item", &std::any::type_name::<T>())
            .finish_non_exhaustive()
    }
}

impl<T: Item> ServiceDispatch for ChannelService<T> {
    fn info(&self) -> &'static ServiceInfo {
        info::<T>()
    }

    fn dispatch(&self, method: u16, call: Call) -> Handler {
        if method != SEND {
            return Handler::unknown_method(method);
        }
        let (item,) = match call.args::<(T,)>() {
            Ok(args) => args,
            Err(err) => return Handler::bad_arguments(err),
        };
        let queue = self.queue.clone();
        Handler::run(async move {
            // Waits while the queue is full: the sender's call stays unanswered, which is
            // the backpressure. A closed or dropped receiver fails it at once.
            let reply: SendReply = queue
                .send(item)
                .await
                .map_err(|_| "the receiver is closed".to_owned());
            call.reply(&reply).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_depends_on_the_item_type() {
        let numbers = info::<u32>();
        let text = info::<String>();
        assert_eq!(numbers.name, SERVICE_NAME);
        assert_ne!(numbers.signature, text.signature);
        assert!(numbers.canonical.contains("u32"), "{}", numbers.canonical);
        assert!(text.canonical.contains("String"), "{}", text.canonical);
        assert!(std::ptr::eq(numbers, info::<u32>()), "built once per type");
        let schemas = numbers.method_schemas().unwrap();
        assert_eq!(
            schemas[0].canonical(),
            r#"(u32)->enum"Result"{"Ok"newtype(unit),"Err"newtype(string)}"#
        );
    }
}
