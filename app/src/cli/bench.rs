//! `glassbox bench` (filled in below).
use std::path::PathBuf;
use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value_t = super::Device::Cpu)]
    pub device: super::Device,
    #[arg(long)]
    pub json: bool,
}

pub fn run(_model: Option<PathBuf>, _args: BenchArgs) -> Result<()> {
    anyhow::bail!("bench: not written yet")
}
