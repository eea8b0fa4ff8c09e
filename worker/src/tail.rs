//! `clockworks-worker tail`: watch a namespace's fired events from a terminal. The watching
//! itself lives in [`clockworks::tail`], which the `clockworks` command-line client shares.

use anyhow::{Result, anyhow};
use clockworks::tail::Tail;

use crate::config::TailArgs;
use crate::shutdown;

/// Prints fired events until the operator stops it or the broker connection ends.
pub async fn run(args: TailArgs) -> Result<()> {
    let binding = args.binding().map_err(|problem| anyhow!(problem))?;
    let tail = Tail::bind(&args.amqp.amqp_url, &args.amqp.exchange, &binding).await?;
    tracing::info!(exchange = %args.amqp.exchange, %binding, "tailing fired events");

    let mut out = std::io::stdout().lock();
    tail.print_until(shutdown::requested(), args.json, &mut out)
        .await?;
    Ok(())
}
