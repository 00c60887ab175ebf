//! `homeostat rules`: prints the shipped Prometheus rules, as a `PrometheusRule` for the
//! Prometheus Operator (the default) or as a plain rule file.

use anyhow::{Result, bail};

use crate::rules;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Name of the PrometheusRule.
    #[arg(long, default_value = "homeostat")]
    pub name: String,
    /// Namespace of the PrometheusRule.
    #[arg(long, short = 'n', default_value = "homeostat-system")]
    pub namespace: String,
    /// Extra metadata label, KEY=VALUE (repeatable): what the Operator's `ruleSelector` matches.
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Print a plain Prometheus rule file (`groups:`) instead, for a Prometheus without the
    /// Operator.
    #[arg(long)]
    pub plain: bool,
}

pub fn run(args: Args) -> Result<()> {
    print!("{}", render(&args)?);
    Ok(())
}

/// The YAML `run` prints.
pub fn render(args: &Args) -> Result<String> {
    let mut labels = Vec::new();
    for l in &args.labels {
        let Some((k, v)) = l.split_once('=') else {
            bail!("--label {l:?}: expected KEY=VALUE");
        };
        if k.is_empty() {
            bail!("--label {l:?}: the key is empty");
        }
        labels.push((k.to_string(), v.to_string()));
    }
    let doc = if args.plain {
        let mut m = serde_yaml::Mapping::new();
        m.insert(
            "groups".into(),
            serde_yaml::Value::Sequence(rules::groups()?),
        );
        serde_yaml::Value::Mapping(m)
    } else {
        rules::prometheus_rule(&args.name, &args.namespace, &labels)?
    };
    Ok(serde_yaml::to_string(&doc)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(labels: &[&str], plain: bool) -> Args {
        Args {
            name: "homeostat".into(),
            namespace: "monitoring".into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            plain,
        }
    }

    #[test]
    fn labels_reach_the_metadata_and_bad_ones_are_refused() {
        let out = render(&args(&["release=prometheus"], false)).unwrap();
        let v: serde_yaml::Value = serde_yaml::from_str(&out).unwrap();
        assert_eq!(v["metadata"]["labels"]["release"], "prometheus");
        assert_eq!(v["metadata"]["namespace"], "monitoring");
        assert!(render(&args(&["release"], false)).is_err());
        assert!(render(&args(&["=x"], false)).is_err());
        // --plain is a rule file: groups only.
        let plain: serde_yaml::Value =
            serde_yaml::from_str(&render(&args(&[], true)).unwrap()).unwrap();
        let keys: Vec<&str> = plain
            .as_mapping()
            .unwrap()
            .keys()
            .map(|k| k.as_str().unwrap())
            .collect();
        assert_eq!(keys, ["groups"]);
    }
}
