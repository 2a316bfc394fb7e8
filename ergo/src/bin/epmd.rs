//! A drop-in for Erlang's `epmd`: the same options, the same answers, the
//! same output, so that `erl -sname x` registers with it and
//! `epmd -names` or `net_adm:names()` list what it holds.
//!
//! ```text
//! epmd [-d] [-port N] [-address A,B] [-relaxed_command_check] [-daemon]
//! epmd [-port N] -names | -kill | -stop NAME
//! ```
//!
//! The port is `-port`, else `ERL_EPMD_PORT`, else 4369.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use ergo::dist::epmd::{self, EpmdServer, ServerOptions};

struct Args {
    port: u16,
    addresses: Vec<IpAddr>,
    debug: bool,
    daemon: bool,
    relaxed: bool,
    command: Option<Command>,
}

enum Command {
    Names,
    Kill,
    Stop(String),
}

const USAGE: &str =
    "usage: epmd [-d|-debug] [-port No] [-address Addresses] [-relaxed_command_check] [-daemon]
       epmd [-d|-debug] [-port No] [-names|-kill|-stop name]";

fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        port: epmd::port_from_env(),
        addresses: Vec::new(),
        debug: false,
        daemon: false,
        relaxed: std::env::var_os("ERL_EPMD_RELAXED_COMMAND_CHECK").is_some(),
        command: None,
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-d" | "-debug" => a.debug = true,
            "-daemon" | "-detached" => a.daemon = true,
            "-relaxed_command_check" => a.relaxed = true,
            "-port" => {
                let p = it.next().ok_or("-port needs a port number")?;
                a.port = p.parse().map_err(|_| format!("bad port number {p:?}"))?;
            }
            "-address" => {
                let list = it.next().ok_or("-address needs a list of addresses")?;
                for s in list.split([',', ' ']).filter(|s| !s.is_empty()) {
                    a.addresses
                        .push(s.parse().map_err(|_| format!("bad address {s:?}"))?);
                }
            }
            // Accepted for compatibility; they tune Erlang's select loop.
            "-packet_timeout" | "-delay_accept" | "-delay_write" => {
                it.next().ok_or(format!("{arg} needs a value"))?;
            }
            "-names" => a.command = Some(Command::Names),
            "-kill" => a.command = Some(Command::Kill),
            "-stop" => {
                let n = it.next().ok_or("-stop needs a node name")?;
                a.command = Some(Command::Stop(n));
            }
            "-h" | "-help" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown option {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    if args.debug {
        tracing_subscriber::fmt()
            .with_env_filter("ergo=debug")
            .with_writer(std::io::stderr)
            .init();
    }
    if args.daemon && args.command.is_none() {
        // Start again without -daemon, detached from this terminal.
        let me = match std::env::current_exe() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("epmd: cannot find myself to daemonize: {e}");
                return ExitCode::FAILURE;
            }
        };
        let rest: Vec<String> = std::env::args()
            .skip(1)
            .filter(|a| a != "-daemon" && a != "-detached")
            .collect();
        // In a session of its own, as Erlang's epmd: a Ctrl-C or a hang-up
        // meant for the shell that started it does not reach it.
        return match std::process::Command::new(me)
            .process_group(0)
            .args(rest)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
        {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("epmd: cannot start in the background: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("epmd: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port);
    match args.command {
        Some(Command::Names) => match epmd::names(local).await {
            Ok((port, names)) => {
                println!("epmd: up and running on port {port} with data:");
                for (name, port) in names {
                    println!("name {name} at port {port}");
                }
                ExitCode::SUCCESS
            }
            Err(_) => {
                eprintln!("epmd: Cannot connect to local epmd");
                ExitCode::FAILURE
            }
        },
        Some(Command::Kill) => match epmd::kill(local).await {
            Ok(true) => {
                println!("Killed");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                println!("Killing not allowed - living nodes in database.");
                ExitCode::FAILURE
            }
            Err(_) => {
                eprintln!("epmd: Cannot connect to local epmd");
                ExitCode::FAILURE
            }
        },
        Some(Command::Stop(name)) => match epmd::stop_name(local, &name).await {
            Ok(true) => {
                println!("STOPPED");
                ExitCode::SUCCESS
            }
            Ok(false) => {
                println!("NOEXIST");
                ExitCode::FAILURE
            }
            Err(_) => {
                eprintln!("epmd: Cannot connect to local epmd");
                ExitCode::FAILURE
            }
        },
        None => serve(args).await,
    }
}

async fn serve(args: Args) -> ExitCode {
    let options = ServerOptions {
        relaxed_command_check: args.relaxed,
    };
    let addrs: Vec<IpAddr> = if args.addresses.is_empty() {
        vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)]
    } else {
        // Erlang's EPMD always listens on the loopback address too.
        let mut a = args.addresses.clone();
        if !a.iter().any(|x| x.is_loopback()) {
            a.push(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        a
    };
    let mut servers = Vec::new();
    for ip in addrs {
        match EpmdServer::start(SocketAddr::new(ip, args.port), options.clone()).await {
            Ok(s) => servers.push(s),
            Err(e) => {
                eprintln!("epmd: cannot listen on {ip} port {}: {e}", args.port);
                return ExitCode::FAILURE;
            }
        }
    }
    // Until one of them is killed (KILL_REQ) or the process is interrupted.
    tokio::select! {
        _ = any_stopped(&servers) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    for s in &servers {
        s.shutdown();
    }
    ExitCode::SUCCESS
}

/// Resolves when any of the servers has stopped.
async fn any_stopped(servers: &[EpmdServer]) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    for s in servers {
        let s = s.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            s.stopped().await;
            let _ = tx.send(()).await;
        });
    }
    drop(tx);
    let _ = rx.recv().await;
}
