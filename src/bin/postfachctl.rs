//! postfachctl: the admin CLI of postfach over its D-Bus API (ARCHITECTURE.md "The D-Bus API").
//!
//! Thin on purpose: flags are parsed here, the work is in `postfach::ctl`.
//! Exit status: 0 ok, 1 the daemon or the bus refused (one line on stderr:
//! `postfachctl: <ErrorName>: <message>`), 2 usage error.

use clap::{Parser, Subcommand};
use postfach::ctl::commands::Ctl;
use postfach::ctl::draft::DraftArgs;
use postfach::ctl::employee::EmployeeCommand;
use postfach::ctl::folders::FoldersCommand;
use postfach::ctl::inbox::InboxArgs;
use postfach::ctl::send::SendArgs;
use postfach::ctl::settings::SettingsArgs;
use postfach::ctl::signature::SignatureCommand;
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
    Account(Box<AccountCommand>),
    /// Fetch an account's mail now and print "N new messages".
    ///
    /// Shows a progress bar while the fetch runs when stdout is a terminal.
    Fetch {
        /// Account id (see `account list`).
        id: String,
    },
    /// List stored mail, newest first.
    ///
    /// A table (ID, date in local time, from, subject, size, flags: R read,
    /// A assigned to a contact, P private) and "shown X of TOTAL".
    /// `--json` prints {"total", "offset", "messages": [dicts]}.
    Inbox {
        #[command(flatten)]
        args: InboxArgs,
    },
    /// List mail being sent, newest first: the same filters as `inbox`.
    ///
    /// A table (ID, date, to, subject, size, STATE: queued, sending, sent,
    /// failed; ERROR: the server's reply, cut — `--json` has it whole) and
    /// "shown X of TOTAL".
    Outbox {
        #[command(flatten)]
        args: InboxArgs,
    },
    /// Show one mail: headers, the text body, the attachments.
    ///
    /// A mail without a text part shows its HTML part with the tags removed
    /// (and says so). `--json` prints the daemon's message dict.
    Show {
        /// Message id (first column of `inbox`).
        id: u64,
        /// Act for this CRM user ("" = admin view).
        #[arg(long, default_value = "")]
        user: String,
    },
    /// Assign a mail to a CRM contact [Journalzuordnung].
    ///
    /// An assigned mail is visible to every user, also from a private
    /// account, and stays when its account is deleted.
    Assign {
        /// Message id.
        id: u64,
        /// The CRM's contact reference, e.g. K-10042.
        contact: String,
        /// Act for this CRM user ("" = admin view).
        #[arg(long, default_value = "")]
        user: String,
    },
    /// Remove a mail's contact assignment.
    Unassign {
        /// Message id.
        id: u64,
        /// Act for this CRM user ("" = admin view).
        #[arg(long, default_value = "")]
        user: String,
    },
    /// Mark a mail read (or unread with --unread).
    Read {
        /// Message id.
        id: u64,
        /// Mark it unread instead.
        #[arg(long)]
        unread: bool,
        /// Act for this CRM user ("" = admin view).
        #[arg(long, default_value = "")]
        user: String,
    },
    /// Delete a mail.
    ///
    /// On an IMAP account with a Trash folder the daemon first moves it
    /// there on the server; if that fails nothing is deleted.
    Delete {
        /// Message id.
        id: u64,
        /// Act for this CRM user ("" = admin view).
        #[arg(long, default_value = "")]
        user: String,
    },
    /// Write one stored mail to stdout exactly as the server sent it.
    ///
    /// E.g. `postfachctl raw 42 > mail.eml`.
    Raw {
        /// Message id (first column of `inbox`).
        id: u64,
        /// Act for this CRM user ("" = admin view).
        #[arg(long, default_value = "")]
        user: String,
    },
    /// Signatures per tenant: the general one and per-user ones.
    #[command(subcommand)]
    Signature(SignatureCommand),
    /// Employees whose data fills the signatures' placeholders.
    #[command(subcommand)]
    Employee(EmployeeCommand),
    /// Queue a mail from an account; the body from --body FILE or stdin.
    Send(Box<SendArgs>),
    /// Save a draft in an IMAP account's Drafts folder; --replace DRAFT replaces one.
    Draft(Box<DraftArgs>),
    /// An IMAP account's folders on the server.
    #[command(subcommand)]
    Folders(FoldersCommand),
    /// Version, installation id, accounts by state, outbox and store size.
    Status,
    /// Write a backup of the whole installation (mail, accounts, settings) to FILE.
    ///
    /// Without --passphrase-file it holds no passwords.
    Backup {
        file: std::path::PathBuf,
        /// Seal the passwords into the backup with the passphrase in this file's first line.
        #[arg(long)]
        passphrase_file: Option<std::path::PathBuf>,
    },
    /// Replace the whole installation by the backup in FILE.
    ///
    /// Delete-on-server is switched off on every account that had it.
    /// Asks for confirmation on a terminal; --yes elsewhere.
    Restore {
        file: std::path::PathBuf,
        /// The passphrase the backup's passwords were sealed with (first line).
        #[arg(long)]
        passphrase_file: Option<std::path::PathBuf>,
        /// Do not ask.
        #[arg(long)]
        yes: bool,
    },
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
    /// Test a connection step by step, one line per step.
    ///
    /// Steps: resolve, connect, TLS, greeting, login, open inbox, SMTP …;
    /// exit status 1 when a step failed.
    ///
    /// `account test ID` tests a saved account. Without an ID it tests the
    /// settings given as flags (the same flags as `account add`) without
    /// saving anything; the password is asked for once, or read from stdin
    /// with --password-stdin.
    #[command(after_help = "Examples:\n  postfachctl account test 3f2a9c\n  \
                      postfachctl account test --kind imap --host mail.example.com --port 993 \\\n      \
                      --username info@example.com")]
    Test {
        /// Account id; leave out to test unsaved settings given as flags.
        #[arg(conflicts_with_all = ["password_stdin", "smtp_password"])]
        id: Option<String>,
        #[command(flatten)]
        settings: SettingsArgs,
        /// Read the password(s) from stdin, one per line, instead of asking.
        #[arg(long)]
        password_stdin: bool,
        /// Also test with a separate SMTP password.
        #[arg(long)]
        smtp_password: bool,
    },
    /// Sign an Office 365 account in; waits until it is signed in.
    ///
    /// Prints the address to open and the code to type there (device
    /// sign-in), or with --browser the address to open, then reads the
    /// address the browser ended on from stdin.
    Connect {
        id: String,
        /// Sign in in a browser on this machine instead of with a code.
        #[arg(long)]
        browser: bool,
    },
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
    // Usage errors first: they need no daemon.
    if let Command::Account(cmd) = &cli.command {
        if let AccountCommand::Test {
            id: Some(_),
            settings,
            ..
        } = cmd.as_ref()
        {
            if *settings != SettingsArgs::default() {
                return Err(CtlError::usage(
                    "give either an account ID or settings flags, not both",
                ));
            }
        }
    }
    let ctl = Ctl::connect(cli.session, cli.json).await?;
    match cli.command {
        Command::Account(cmd) => match *cmd {
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
            AccountCommand::Connect { id, browser } => ctl.connect_account(&id, browser).await,
            AccountCommand::Test { id: Some(id), .. } => ctl.test_saved(&id).await,
            AccountCommand::Test {
                id: None,
                settings,
                password_stdin,
                smtp_password,
            } => {
                ctl.test_settings(&settings, password_stdin, smtp_password)
                    .await
            }
        },
        Command::Fetch { id } => ctl.fetch(&id).await,
        Command::Inbox { args } => ctl.inbox(&args).await,
        Command::Outbox { args } => ctl.outbox(&args).await,
        Command::Show { id, user } => ctl.show_message(id, &user).await,
        Command::Assign { id, contact, user } => ctl.assign(id, &contact, &user).await,
        Command::Unassign { id, user } => ctl.unassign(id, &user).await,
        Command::Read { id, unread, user } => ctl.mark_read(id, !unread, &user).await,
        Command::Delete { id, user } => ctl.delete_message(id, &user).await,
        Command::Raw { id, user } => ctl.raw(id, &user).await,
        Command::Signature(cmd) => ctl.signature(cmd).await,
        Command::Employee(cmd) => ctl.employee(cmd).await,
        Command::Send(args) => ctl.send(&args).await,
        Command::Draft(args) => ctl.draft(&args).await,
        Command::Folders(cmd) => ctl.folders(cmd).await,
        Command::Backup {
            file,
            passphrase_file,
        } => ctl.backup(&file, passphrase_file.as_deref()).await,
        Command::Restore {
            file,
            passphrase_file,
            yes,
        } => ctl.restore(&file, passphrase_file.as_deref(), yes).await,
        Command::Status => ctl.status().await,
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
