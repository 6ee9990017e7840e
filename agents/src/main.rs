//! The `kibitz-agent` command-line tool.
fn main() {}
