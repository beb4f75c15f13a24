use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tessera::cli::run().await
}
