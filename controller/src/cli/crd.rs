//! `homeostat crd`: prints the AdaptivePolicy CustomResourceDefinition (what `deploy/crd.yaml`
//! holds).

use anyhow::Result;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> Result<()> {
    print!("{}", crate::crd::crd_yaml());
    Ok(())
}
