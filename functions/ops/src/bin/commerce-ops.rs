//! commerce-ops: the operator's command line; see `commerce-ops --help` and the README
//! ("Replay and redrive"). Not a Lambda: it runs where the operator is, with the
//! standard AWS SDK settings (profile, region, `AWS_ENDPOINT_URL` for the local stack).

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = ops::Cli::parse();
    match ops::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("commerce-ops: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
