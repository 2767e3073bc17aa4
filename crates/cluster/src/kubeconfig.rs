//! Turning kubeconfig text into a client, with clear errors and without
//! trusting an uploaded file to run commands or read server files.

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::hub::one_line;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KubeconfigError {
    #[error("the kubeconfig is not valid YAML: {0}")]
    Malformed(String),
    #[error("the kubeconfig has no context named {0:?} (it has: {1})")]
    UnknownContext(String, String),
    #[error("the kubeconfig has no contexts")]
    NoContexts,
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot build a client from context {0:?}: {1}")]
    Invalid(String, String),
    #[error("cannot reach the cluster of context {0:?}: {1}")]
    Unreachable(String, String),
}

pub fn parse(text: &str) -> Result<Kubeconfig, KubeconfigError> {
    let config = Kubeconfig::from_yaml(text).map_err(|e| KubeconfigError::Malformed(one_line(&e)))?;
    if config.contexts.is_empty() {
        return Err(KubeconfigError::NoContexts);
    }
    Ok(config)
}

pub fn context_names(config: &Kubeconfig) -> Vec<String> {
    config.contexts.iter().map(|c| c.name.clone()).collect()
}

/// Uploaded kubeconfigs come from a browser: refuse the parts that would
/// make the server run a program or read one of its own files.
pub fn check_self_contained(config: &Kubeconfig, context: &str) -> Result<(), KubeconfigError> {
    let ctx = config
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.clone())
        .ok_or_else(|| KubeconfigError::UnknownContext(context.to_string(), context_names(config).join(", ")))?;
    let cluster = config.clusters.iter().find(|c| c.name == ctx.cluster).and_then(|c| c.cluster.as_ref());
    if cluster.is_some_and(|c| c.certificate_authority.is_some()) {
        return Err(KubeconfigError::Unsupported(
            "an uploaded kubeconfig must embed certificate-authority-data, not point at a file".into(),
        ));
    }
    let user_name = ctx.user.clone().unwrap_or_default();
    if let Some(user) = config.auth_infos.iter().find(|u| u.name == user_name).and_then(|u| u.auth_info.as_ref()) {
        if user.exec.is_some() || user.auth_provider.is_some() {
            return Err(KubeconfigError::Unsupported(
                "an uploaded kubeconfig may not use exec or auth-provider credentials; use a token or client certificate".into(),
            ));
        }
        if user.client_certificate.is_some() || user.client_key.is_some() || user.token_file.is_some() {
            return Err(KubeconfigError::Unsupported(
                "an uploaded kubeconfig must embed its credentials (client-certificate-data, client-key-data or token), not point at files".into(),
            ));
        }
    }
    Ok(())
}

/// A client for one context. Does not contact the cluster.
pub async fn client_for(config: &Kubeconfig, context: &str) -> Result<(Client, Config), KubeconfigError> {
    if !config.contexts.iter().any(|c| c.name == context) {
        return Err(KubeconfigError::UnknownContext(context.to_string(), context_names(config).join(", ")));
    }
    let options = KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
    let mut cfg = Config::from_custom_kubeconfig(config.clone(), &options)
        .await
        .map_err(|e| KubeconfigError::Invalid(context.to_string(), one_line(&e)))?;
    cfg.connect_timeout = Some(std::time::Duration::from_secs(5));
    cfg.read_timeout = None;
    let client =
        Client::try_from(cfg.clone()).map_err(|e| KubeconfigError::Invalid(context.to_string(), one_line(&e)))?;
    Ok((client, cfg))
}

/// Asks the cluster for its version, to prove the credentials work.
pub async fn probe(client: &Client, context: &str) -> Result<String, KubeconfigError> {
    match tokio::time::timeout(std::time::Duration::from_secs(8), client.apiserver_version()).await {
        Ok(Ok(info)) => Ok(info.git_version),
        Ok(Err(e)) => Err(KubeconfigError::Unreachable(context.to_string(), one_line(&e))),
        Err(_) => Err(KubeconfigError::Unreachable(context.to_string(), "no answer within 8 s".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: { server: "https://127.0.0.1:1", certificate-authority-data: "" }
users:
- name: u
  user: { token: abc }
contexts:
- name: prod
  context: { cluster: c, user: u }
current-context: prod
"#;

    #[test]
    fn parses_and_lists_contexts() {
        let config = parse(GOOD).unwrap();
        assert_eq!(context_names(&config), vec!["prod"]);
        assert!(check_self_contained(&config, "prod").is_ok());
        assert!(matches!(check_self_contained(&config, "dev"), Err(KubeconfigError::UnknownContext(..))));
    }

    #[test]
    fn refuses_garbage_and_unsafe_uploads() {
        assert!(matches!(parse("{{{"), Err(KubeconfigError::Malformed(_))));
        assert!(matches!(parse("apiVersion: v1\nkind: Config\n"), Err(KubeconfigError::NoContexts)));
        let exec = GOOD.replace(
            "user: { token: abc }",
            "user: { exec: { command: /bin/sh, apiVersion: client.authentication.k8s.io/v1 } }",
        );
        assert!(matches!(check_self_contained(&parse(&exec).unwrap(), "prod"), Err(KubeconfigError::Unsupported(_))));
        let file =
            GOOD.replace("user: { token: abc }", "user: { client-key: /etc/shadow, client-certificate: /etc/passwd }");
        assert!(matches!(check_self_contained(&parse(&file).unwrap(), "prod"), Err(KubeconfigError::Unsupported(_))));
    }
}
