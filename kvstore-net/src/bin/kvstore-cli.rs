//! `kvstore-cli`: a command-line client for `kvstore-server` (redis-cli works too).
//!
//! ```text
//! kvstore-cli put k v | get k | delete k | scan [pattern] | info [section] | digest | raw CMD ARGS…
//! ```

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use kvstore_net::{Client, Frame};

/// Talks to a kvstore-server.
#[derive(Debug, Parser)]
#[command(name = "kvstore-cli", version)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:5555")]
    addr: String,
    /// Password, sent with AUTH before the command.
    #[arg(long)]
    password: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set a key.
    Put { key: String, value: String },
    /// Print a key's value ("(nil)" if absent).
    Get { key: String },
    /// Remove a key.
    Delete { key: String },
    /// Print every key matching a glob pattern, in order.
    Scan {
        #[arg(default_value = "*")]
        pattern: String,
    },
    /// Print INFO (all sections, or one).
    Info { section: Option<String> },
    /// Print the DIGEST of all keys and values.
    Digest,
    /// Send any command and print the reply.
    Raw {
        #[arg(required = true, num_args = 1..)]
        args: Vec<String>,
    },
}

fn run(args: Args) -> kvstore_net::Result<()> {
    let mut client = Client::connect(&args.addr)?;
    if let Some(password) = &args.password {
        client.auth(password)?;
    }
    match args.command {
        Command::Put { key, value } => {
            client.set(key.as_bytes(), value.as_bytes())?;
            println!("OK");
        }
        Command::Get { key } => match client.get(key.as_bytes())? {
            Some(value) => println!("{}", String::from_utf8_lossy(&value)),
            None => println!("(nil)"),
        },
        Command::Delete { key } => println!("{}", i64::from(client.del(key.as_bytes())?)),
        Command::Scan { pattern } => {
            let mut cursor = "0".to_string();
            loop {
                let reply = client.call(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", "1000"])?;
                let Frame::Array(parts) = reply else { break };
                let [Frame::Bulk(next), Frame::Array(keys)] = parts.as_slice() else {
                    break;
                };
                for key in keys {
                    if let Frame::Bulk(key) = key {
                        println!("{}", String::from_utf8_lossy(key));
                    }
                }
                cursor = String::from_utf8_lossy(next).into_owned();
                if cursor == "0" {
                    break;
                }
            }
        }
        Command::Info { section } => {
            let section = section.unwrap_or_else(|| "all".into());
            print!(
                "{}",
                client.text(&["INFO", &section])?.replace("\r\n", "\n")
            );
        }
        Command::Digest => println!("{}", client.digest()?),
        Command::Raw { args } => println!("{}", client.command(&args)?),
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kvstore-cli: {e}");
            ExitCode::FAILURE
        }
    }
}
