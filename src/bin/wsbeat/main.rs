//! `wsbeat`: a command-line WebSocket client built on the wsbeat library. Stdin lines go out
//! as text messages, received messages come out on stdout, lifecycle events optionally as
//! JSON lines. One thread waits on stdin and the client's descriptor with `poll(2)`;
//! signals wake it through the client's `Waker` (SIGUSR1 through a signalfd). Under systemd
//! it speaks `sd_notify` (READY, STATUS, WATCHDOG, STOPPING: `device.rs`).
//!
//! `main` only parses, builds and maps errors to exit codes; the loop is in `io_loop`.
#![forbid(unsafe_code)]

mod args;
mod device;
mod duration;
mod events;
mod help;
mod hex;
mod io_loop;
mod json;
mod lines;
mod logging;
mod notify;
mod output;
mod settings;
mod signals;
mod stdin;
mod watchdog;

use std::process::ExitCode;
use std::time::Instant;

use args::{Args, Command, UsageError};

/// Exit status for usage and configuration errors.
const EXIT_USAGE: u8 = 2;
/// Exit status when the process cannot set itself up (signal handler, event file).
const EXIT_SETUP: u8 = 1;

fn main() -> ExitCode {
    // The zero point of every event's `t_ms`.
    let start = Instant::now();
    let args = match args::parse(std::env::args_os().skip(1)) {
        Ok(Command::Run(args)) => args,
        Ok(Command::Help) => {
            print!("{}", help::help());
            return ExitCode::SUCCESS;
        }
        Ok(Command::Version) => {
            println!("wsbeat {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => return usage_error(&e),
    };
    logging::init(args.verbosity);
    match run(&args, start) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Usage(e)) => usage_error(&e),
        Err(Failure::Setup(message)) => {
            eprintln!("wsbeat: {message}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}

/// Why `run` could not start the loop.
enum Failure {
    /// The user's mistake: exit 2.
    Usage(UsageError),
    /// The environment's: exit 1.
    Setup(String),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Failure {
        Failure::Usage(e)
    }
}

fn run(args: &Args, start: Instant) -> Result<u8, Failure> {
    let config = settings::config(args)?;
    let max_line = config.max_message_size;
    let write_timeout = config.write_timeout;
    if args.insecure {
        // Not a log line: it must show whatever the log level.
        eprintln!(
            "wsbeat: warning: --insecure: TLS certificates and host names are NOT verified; \
             anyone on the path can read and change the traffic"
        );
    }
    let client = wsbeat::Client::new(config).map_err(|e| settings::config_error(&e))?;
    let events = events::EventSink::open(args.events.as_deref(), start).map_err(|e| {
        UsageError::new(
            "--events",
            format!(
                "cannot open {:?}: {e}",
                args.events.as_deref().unwrap_or("")
            ),
        )
    })?;
    let signals = signals::Signals::install(client.waker())
        .map_err(|e| Failure::Setup(format!("cannot install the signal handler: {e}")))?;
    let stdin = stdin::StdinLines::open(max_line);
    let device = device::Device::new(args.stats_interval, write_timeout, Instant::now());
    let code = io_loop::IoLoop::new(
        client,
        events,
        output::Output::new(args.binary_stdout),
        signals,
        device,
        stdin,
        args.keep_open,
    )
    .run();
    Ok(u8::try_from(code).unwrap_or(EXIT_SETUP))
}

fn usage_error(e: &UsageError) -> ExitCode {
    eprintln!("wsbeat: {e}");
    eprintln!("Try `wsbeat --help` for the options.");
    ExitCode::from(EXIT_USAGE)
}
