fn main() -> std::process::ExitCode {
    trove::cli::main()
}
