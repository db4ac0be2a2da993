//! `postfachd`: flags, config, logging, then `daemon::run`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use postfach::config::Config;
use postfach::daemon::{self, Options};

/// The postfach mail engine daemon.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Serve on the system bus (the default).
    #[arg(long, conflicts_with = "session")]
    system: bool,
    /// Serve on the session bus (development and tests).
    #[arg(long)]
    session: bool,
    /// Config file (TOML); see packaging/postfach.toml.example.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// State directory [default: $STATE_DIRECTORY, else /var/lib/postfach
    /// for root, else $XDG_DATA_HOME/postfach].
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("postfachd: {e}");
                return ExitCode::from(2);
            }
        },
        // The system daemon reads /etc/postfach/postfach.toml when it exists.
        None if !args.session => {
            match Config::load_or_default(std::path::Path::new(postfach::config::DEFAULT_PATH)) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("postfachd: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        None => Config::default(),
    };
    let log = match postfach::logging::init(config.log_level.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("postfachd: cannot set up logging: {e}");
            return ExitCode::from(2);
        }
    };
    let Some(state_dir) = args.state_dir.clone().or_else(daemon::default_state_dir) else {
        eprintln!(
            "postfachd: no state directory: give --state-dir, or set STATE_DIRECTORY or HOME"
        );
        return ExitCode::from(2);
    };
    let opts = Options {
        session: args.session,
        state_dir,
        config_path: args
            .config
            .clone()
            .or_else(|| (!args.session).then(|| PathBuf::from(postfach::config::DEFAULT_PATH))),
    };
    fixed_mmap_threshold();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("postfachd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(daemon::run(config, opts, log)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "postfachd stopped with an error");
            eprintln!("postfachd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Big mails (10 MB and more) pass through in a few large buffers. glibc
/// serves those with mmap and unmaps them on free, but its *dynamic* mmap
/// threshold rises to the size of the first such buffer freed, after which
/// later ones come from the per-thread heaps and stay there: the daemon held
/// 159 MB after 10 mails of 10 MB, 38 MB after one. Setting the threshold
/// explicitly turns that adjustment off (mallopt(3)), so large buffers go
/// back to the system when freed (54 MB after 10 mails). The value is
/// glibc's default starting threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fixed_mmap_threshold() {
    use nix::libc::{mallopt, M_MMAP_THRESHOLD};
    // SAFETY: mallopt only changes allocator tunables; it is called before
    // the runtime starts any thread.
    let _ = unsafe { mallopt(M_MMAP_THRESHOLD, 128 * 1024) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fixed_mmap_threshold() {}
