//! `ferry ping NAME [--count N]`.

use std::time::{Duration, Instant};

use ferry::ErrorKind;

use crate::exit::{Code, Failure};
use crate::target;

pub(crate) async fn run(name: &str, count: u32, timeout: Duration) -> Result<(), Failure> {
    if count == 0 {
        return Err(Failure::new(Code::Usage, "--count must be at least 1"));
    }
    let name = target::name(name)?;
    let address = name.address();
    let start = Instant::now();
    let (client, description) = target::describe(&name, timeout).await?;
    println!(
        "{address}: server pid {}, connected and described in {}",
        description.pid,
        micros(start.elapsed())
    );
    let mut times = Vec::new();
    let mut how = "PING frame";
    for round in 1..=count {
        let rtt = match client.client().ping().await {
            Ok(rtt) => rtt,
            Err(err) if err.kind() == ErrorKind::Usage => {
                // Protocol version 1 has no PING: a call to the introspection service.
                how = "ferry.introspect describe call (protocol version 1 has no PING)";
                let start = Instant::now();
                client
                    .describe()
                    .await
                    .map_err(|err| Failure::ferry(&format!("pinging {address}"), &err))?;
                start.elapsed()
            }
            Err(err) => return Err(Failure::ferry(&format!("pinging {address}"), &err)),
        };
        println!("round trip {round}: {} ({how})", micros(rtt));
        times.push(rtt);
    }
    let min = times.iter().min().copied().unwrap_or_default();
    let max = times.iter().max().copied().unwrap_or_default();
    let avg = times.iter().sum::<Duration>() / u32::try_from(times.len()).unwrap_or(1).max(1);
    println!(
        "{count} round trips: min {}, avg {}, max {}",
        micros(min),
        micros(avg),
        micros(max)
    );
    Ok(())
}

/// `123.4 us`.
fn micros(d: Duration) -> String {
    format!("{:.1} us", d.as_secs_f64() * 1e6)
}
