use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use git_mso::cli::{Cli, run};
use git_mso::error::{Error, exit};

mod pager;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("MSO_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let writes = cli.command.writes();
    git_mso::cli::set_colour(pager::colour(&cli));
    let pager = pager::choose(&cli);
    let result = match pager {
        Some(command) => pager::run_through(&command, |out| run(cli, out)),
        None => {
            let mut stdout = pager::Watched(std::io::stdout().lock());
            let result = run(cli, &mut stdout);
            let _ = stdout.flush();
            result
        }
    };
    match result {
        Ok(()) => ExitCode::from(exit::OK as u8),
        // A reader that stopped early (`git mso log | head -1`) is not an
        // error: only when it was our own output that was closed.
        Err(err) if pager::output_closed() && closed_pipe(&err) => ExitCode::from(exit::OK as u8),
        Err(err) => {
            let lib = err.chain().find_map(|e| e.downcast_ref::<Error>());
            let suffix = if writes && lib.is_some_and(Error::is_refusal) { "; nothing was written" } else { "" };
            eprintln!("error: {}{suffix}", one_line(&err));
            ExitCode::from(lib.map_or(exit::ERROR, Error::exit_code) as u8)
        }
    }
}

/// Whether the error is a write to a pipe whose reader has gone.
fn closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        let io = e.downcast_ref::<std::io::Error>().or_else(|| match e.downcast_ref::<Error>() {
            Some(Error::Io { source, .. }) => Some(source),
            _ => None,
        });
        let json = e.downcast_ref::<serde_json::Error>().and_then(serde_json::Error::io_error_kind);
        io.map(std::io::Error::kind).or(json) == Some(std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes on one line.
fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    // One line, and nothing in it (a value from the ledger, a pushed object,
    // a crew) can move the cursor or flip the text's direction.
    git_mso::core::text::line(&parts.join(": ").replace('\n', " ")).into_owned()
}
