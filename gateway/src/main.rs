//! The `coffre-gateway` binary (filled in by the server work).

fn main() {
    eprintln!("coffre-gateway: not built yet");
    std::process::exit(2);
}
