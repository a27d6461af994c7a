fn main() -> std::process::ExitCode {
    // Like other command-line tools, end quietly when the reader of stdout goes away
    // (`trove exp list | head`) instead of failing on the broken pipe.
    // SAFETY: restoring the default action of a signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    // Run by ssh as its askpass program, to answer a password or passphrase prompt.
    if std::env::var_os(trove::remote::openssh::ASKPASS_VAR).is_some() {
        return std::process::ExitCode::from(trove::remote::openssh::askpass() as u8);
    }
    trove::git::start_without_certificates();
    trove::cli::main()
}
