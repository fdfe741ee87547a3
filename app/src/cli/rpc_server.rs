//! `glassbox rpc-server`: serves this machine's CPU to other machines' `--rpc` through ggml's
//! RPC server, so every machine runs the same binary. The protocol has no authentication:
//! it listens on 127.0.0.1 unless told otherwise (reach it through an SSH tunnel).

use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct RpcServerArgs {
    /// Address to listen on. Anything but a loopback address lets anyone on the network run
    /// code-sized requests against this machine: the protocol has no authentication
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 50052)]
    pub port: u16,
    /// CPU threads that compute the layers sent here
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

#[cfg(feature = "llamacpp")]
pub fn run(args: RpcServerArgs) -> Result<()> {
    if !glassbox_llamacpp::rpc::is_loopback(&args.host) {
        eprintln!("glassbox: WARNING: listening on {} — ggml's RPC protocol has NO authentication and llama.cpp calls it insecure:", args.host);
        eprintln!("glassbox: WARNING: anyone who can reach port {} can use this machine and read what it computes. Prefer 127.0.0.1 and an SSH tunnel.", args.port);
    }
    eprintln!("glassbox: rpc-server on {}:{} ({} threads)", args.host, args.port, args.threads);
    glassbox_llamacpp::rpc::serve(&args.host, args.port, args.threads).map_err(anyhow::Error::msg)
}

#[cfg(not(feature = "llamacpp"))]
pub fn run(_args: RpcServerArgs) -> Result<()> {
    anyhow::bail!("{}", super::engine::NOT_BUILT)
}
