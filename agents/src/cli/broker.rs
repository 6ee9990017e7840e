//! `kibitz-agent broker`: run the embedded PeerJS-compatible broker.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use agent_runtime::broker::{Broker, BrokerHandle, BrokerOptions};
use clap::Args;

use super::exit::{self, CliError};
use super::{Ctx, RunCommand};

const EXAMPLES: &str = "\
Examples:
  kibitz-agent broker                                   # ws://127.0.0.1:9000/, key peerjs
  kibitz-agent broker --listen 127.0.0.1:9100 --path /kbz --key peerjs
  kibitz-agent broker --listen 127.0.0.1:0 --json       # pick a free port, print it as JSON

PeerJS clients (and kibitz-agent) reach it with host 127.0.0.1, the port, the path, the key and
secure=false. It runs until Ctrl-C. Only bind a non-loopback address on a network you trust:
the broker sees every peer id and all SDP it relays.";

/// Arguments of `broker`.
#[derive(Debug, Clone, Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct BrokerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub(crate) listen: SocketAddr,
    /// Mount path (PeerJS `path`).
    #[arg(long, default_value = "/")]
    pub(crate) path: String,
    /// API key clients must present (PeerJS `key`).
    #[arg(long, default_value = "peerjs")]
    pub(crate) key: String,
    /// Milliseconds an undeliverable message waits before `EXPIRE` is sent back.
    #[arg(long, default_value_t = 5000)]
    pub(crate) expire_timeout: u64,
    /// Milliseconds without `HEARTBEAT` after which a client is dropped.
    #[arg(long, default_value_t = 60_000)]
    pub(crate) alive_timeout: u64,
    /// Most peer ids registered at once.
    #[arg(long, default_value_t = 5000)]
    pub(crate) concurrent_limit: usize,
}

impl BrokerArgs {
    fn options(&self) -> BrokerOptions {
        BrokerOptions {
            path: self.path.clone(),
            key: self.key.clone(),
            expire_timeout: Duration::from_millis(self.expire_timeout),
            alive_timeout: Duration::from_millis(self.alive_timeout),
            concurrent_limit: self.concurrent_limit,
            ..BrokerOptions::default()
        }
    }
}

impl RunCommand for BrokerArgs {
    fn run(self, ctx: Ctx) -> Result<(), CliError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| CliError::new(exit::INTERNAL, format!("cannot start runtime: {e}")))?;
        rt.block_on(serve_until(self, ctx, async {
            let _ = tokio::signal::ctrl_c().await;
        }))
    }
}

/// Binds the broker.
async fn start(args: &BrokerArgs) -> Result<(BrokerHandle, BrokerTask), CliError> {
    Broker::bind(args.listen, args.options())
        .await
        .map_err(|e| CliError::new(exit::IO, format!("cannot listen on {}: {e}", args.listen)))
}

type BrokerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Runs the broker until `stop` completes, printing where it listens.
pub(crate) async fn serve_until(
    args: BrokerArgs,
    ctx: Ctx,
    stop: impl Future<Output = ()>,
) -> Result<(), CliError> {
    let (handle, task) = start(&args).await?;
    let url = handle.ws_url();
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({ "listening": url, "key": args.key })
        );
    } else {
        println!("broker listening on {url}");
    }
    let mut task = task;
    tokio::select! {
        _ = stop => {}
        res = &mut task => return finished(res),
    }
    handle.shutdown();
    finished(task.await)
}

fn finished(res: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), CliError> {
    match res {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(CliError::new(exit::IO, format!("broker failed: {e}"))),
        Err(e) => Err(CliError::new(
            exit::INTERNAL,
            format!("broker task failed: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrap {
        #[command(flatten)]
        args: BrokerArgs,
    }

    #[test]
    fn defaults_are_loopback_and_peerjs() {
        let w = Wrap::try_parse_from(["x"]).unwrap();
        assert_eq!(
            w.args.listen,
            "127.0.0.1:9000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(w.args.path, "/");
        assert_eq!(w.args.key, "peerjs");
        let o = w.args.options();
        assert_eq!(o.expire_timeout, Duration::from_millis(5000));
        assert_eq!(o.alive_timeout, Duration::from_millis(60_000));
    }

    #[tokio::test]
    async fn serves_ids_until_stopped() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let w = Wrap::try_parse_from(["x", "--listen", "127.0.0.1:0", "--path", "/kbz"]).unwrap();
        let (handle, task) = start(&w.args).await.unwrap();
        assert_eq!(
            handle.ws_url(),
            format!("ws://{}/kbz/", handle.local_addr())
        );
        let mut tcp = tokio::net::TcpStream::connect(handle.local_addr())
            .await
            .unwrap();
        tcp.write_all(b"GET /kbz/peerjs/id HTTP/1.0\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut resp = String::new();
        tcp.read_to_string(&mut resp).await.unwrap();
        assert!(resp.starts_with("HTTP/1.0 200"), "{resp}");
        let id = resp.rsplit("\r\n\r\n").next().unwrap();
        assert_eq!(id.len(), 36, "{id}");
        handle.shutdown();
        task.await.unwrap().unwrap();

        let w = Wrap::try_parse_from(["x", "--listen", "127.0.0.1:0"]).unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_until(w.args, Ctx { json: false }, async {
            let _ = rx.await;
        }));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!server.is_finished());
        tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn busy_port_is_an_io_error() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap().to_string();
        let w = Wrap::try_parse_from(["x", "--listen", &addr]).unwrap();
        let err = serve_until(w.args, Ctx { json: false }, std::future::pending())
            .await
            .unwrap_err();
        assert_eq!(err.code, exit::IO);
        assert!(err.message.contains("cannot listen"), "{}", err.message);
    }
}
