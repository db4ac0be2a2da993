//! postfachctl: the admin CLI of postfach over its D-Bus API (DESIGN.md §3).
//!
//! Thin on purpose: flags are parsed here, the work is in `postfach::ctl`.
//! Exit status: 0 ok, 1 the daemon or the bus refused (one line on stderr:
//! `postfachctl: <ErrorName>: <message>`), 2 usage error.

use clap::{Parser, Subcommand};
use postfach::ctl::commands::Ctl;
use postfach::ctl::settings::SettingsArgs;
use postfach::ctl::CtlError;

#[derive(Parser, Debug)]
#[command(
    name = "postfachctl",
    version,
    about = "Administer the postfach mail engine"
)]
struct Cli {
    /// Talk to the daemon on the session bus (development, tests) instead
    /// of the system bus.
    #[arg(long, global = true)]
    session: bool,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Mail accounts.
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Subcommand, Debug)]
enum AccountCommand {
    /// Create an account; prints its id. The password is asked for on the
    /// terminal (not for Office 365 kinds, which use `Connect`).
    Add {
        #[command(flatten)]
        settings: SettingsArgs,
        /// Read the password(s) from stdin, one per line, instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// Also set a separate SMTP password (asked after the password, or
        /// the next line on stdin).
        #[arg(long)]
        smtp_password: bool,
    },
    /// List the accounts.
    List,
    /// Show every property of an account.
    Show { id: String },
    /// Change settings of an account; only the given keys change.
    Set {
        id: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Delete an account and its mails (mails assigned to a contact stay).
    Delete { id: String },
    /// Set the password of an account.
    Passwd {
        id: String,
        /// Set the SMTP password instead of the incoming one.
        #[arg(long)]
        smtp: bool,
        /// Read the password from stdin instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
}

async fn run(cli: Cli) -> Result<(), CtlError> {
    let ctl = Ctl::connect(cli.session, cli.json).await?;
    match cli.command {
        Command::Account(cmd) => match cmd {
            AccountCommand::Add {
                settings,
                password_stdin,
                smtp_password,
            } => ctl.add(&settings, password_stdin, smtp_password).await,
            AccountCommand::List => ctl.list().await,
            AccountCommand::Show { id } => ctl.show(&id).await,
            AccountCommand::Set { id, settings } => ctl.set(&id, &settings).await,
            AccountCommand::Delete { id } => ctl.delete(&id).await,
            AccountCommand::Passwd {
                id,
                smtp,
                password_stdin,
            } => ctl.passwd(&id, smtp, password_stdin).await,
        },
    }
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "{}",
                CtlError::local("Failed", format!("cannot start: {e}"))
            );
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run(cli)) {
        eprintln!("{e}");
        std::process::exit(e.exit_code);
    }
}
