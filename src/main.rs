//! The `dxstack` command: `serve` the API, or `audit verify` a chain offline.

use clap::{Parser, Subcommand};

/// glibc's allocator spends a fifth of the committer's time in `malloc`/`free` under load
/// (measured with perf); mimalloc's thread-local heaps cut that sharply.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "dxstack",
    version,
    about = "Governed orchestration between partners and providers"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the service (the default when no command is given).
    Serve {
        /// Configuration file; every key is optional.
        #[arg(long, default_value = "config.toml")]
        config: PathBuf,
    },
    /// Audit chain tools.
    Audit {
        #[command(subcommand)]
        command: AuditCmd,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Verify every hash of the chain, from a stopped store or from an export file.
    Verify {
        /// The `store.path` directory of a stopped service.
        #[arg(long, conflicts_with = "file")]
        store: Option<PathBuf>,
        /// A JSON Lines export (`GET /v1/ops/audit/export`).
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Cmd::Serve {
        config: PathBuf::from("config.toml"),
    }) {
        Cmd::Serve { config } => serve(config),
        Cmd::Audit {
            command: AuditCmd::Verify { store, file },
        } => verify(store, file),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DXSTACK_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn serve(config_path: PathBuf) -> ExitCode {
    init_tracing();
    let config = match dxstack::config::Config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dxstack: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dxstack: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.server.listen)
            .await
            .map_err(|e| anyhow::anyhow!("[server] listen {}: {e}", config.server.listen))?;
        dxstack::run(config, listener, shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dxstack: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn verify(store_dir: Option<PathBuf>, file: Option<PathBuf>) -> ExitCode {
    let report = match (store_dir, file) {
        (Some(dir), None) => {
            let mut config = dxstack::config::Config::default();
            config.store.path = dir;
            dxstack::open_store(&config)
                .and_then(|s| store::audit::verify_store(&s).map_err(anyhow::Error::from))
        }
        (None, Some(path)) => std::fs::File::open(&path)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            .and_then(|f| {
                use std::io::BufRead;
                let lines = std::io::BufReader::new(f)
                    .split(b'\n')
                    .map(|l| l.map_err(store::Error::from));
                store::audit::verify_lines(lines).map_err(anyhow::Error::from)
            }),
        _ => Err(anyhow::anyhow!("give --store DIR or --file export.jsonl")),
    };
    match report {
        Ok(r) if r.ok => {
            println!("ok {} entries, head {}", r.entries, r.head_hash);
            ExitCode::SUCCESS
        }
        Ok(r) => {
            println!(
                "broken at seq {}: {} ({} entries verified before it)",
                r.broken_seq.unwrap_or(0),
                r.reason.unwrap_or_default(),
                r.entries
            );
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("dxstack: {e:#}");
            ExitCode::from(2)
        }
    }
}
