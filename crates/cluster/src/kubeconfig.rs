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

/// Settings in a kubeconfig context that an administrator should know about
/// before registering it: each weakens how Gantry reaches the cluster.
pub fn risks(config: &Kubeconfig, context: &str) -> Vec<String> {
    let cluster_name =
        config.contexts.iter().find(|c| c.name == context).and_then(|c| c.context.as_ref()).map(|c| &c.cluster);
    let Some(cluster) = config.clusters.iter().find(|c| Some(&c.name) == cluster_name).and_then(|c| c.cluster.as_ref())
    else {
        return Vec::new();
    };
    let mut risks = Vec::new();
    if cluster.insecure_skip_tls_verify == Some(true) {
        risks.push(
            "insecure-skip-tls-verify is on: Gantry would not check the apiserver's certificate, so anyone on the network path could impersonate the cluster and read the credentials".to_string(),
        );
    }
    if let Some(proxy) = &cluster.proxy_url {
        risks.push(format!("proxy-url sends every request, with its credentials, through {proxy}"));
    }
    risks
}

/// The client configuration of one context. Does not contact the cluster.
pub async fn config_for(config: &Kubeconfig, context: &str) -> Result<Config, KubeconfigError> {
    if !config.contexts.iter().any(|c| c.name == context) {
        return Err(KubeconfigError::UnknownContext(context.to_string(), context_names(config).join(", ")));
    }
    let options = KubeConfigOptions { context: Some(context.to_string()), ..Default::default() };
    let mut cfg = Config::from_custom_kubeconfig(config.clone(), &options)
        .await
        .map_err(|e| KubeconfigError::Invalid(context.to_string(), one_line(&e)))?;
    cfg.connect_timeout = Some(std::time::Duration::from_secs(5));
    Ok(cfg)
}

/// The configuration of the cluster Gantry runs in, from its pod's service account.
pub fn in_cluster() -> Result<Config, String> {
    Config::incluster().map_err(|e| format!("in-cluster configuration: {e}"))
}

/// Keeps only the chosen context (and its cluster and user) of a kubeconfig,
/// so other credentials in an upload are never stored.
pub fn single_context(text: &str, context: &str) -> Result<String, KubeconfigError> {
    let mut config = parse(text)?;
    let ctx = config
        .contexts
        .iter()
        .find(|c| c.name == context)
        .cloned()
        .ok_or_else(|| KubeconfigError::UnknownContext(context.to_string(), context_names(&config).join(", ")))?;
    let cluster_name = ctx.context.as_ref().map(|c| c.cluster.clone()).unwrap_or_default();
    let user_name = ctx.context.as_ref().and_then(|c| c.user.clone()).unwrap_or_default();
    config.contexts = vec![ctx];
    config.clusters.retain(|c| c.name == cluster_name);
    config.auth_infos.retain(|u| u.name == user_name);
    config.current_context = Some(context.to_string());
    serde_yaml::to_string(&config).map_err(|e| KubeconfigError::Malformed(one_line(&e)))
}

/// The names of every namespace of a cluster (for the demo set-up, which
/// maps the demo fleet's namespaces to teams before Gantry watches it).
pub async fn namespaces(config: &Config, context: &str) -> Result<Vec<String>, KubeconfigError> {
    let client =
        Client::try_from(config.clone()).map_err(|e| KubeconfigError::Invalid(context.to_string(), one_line(&e)))?;
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
    let list = api
        .list(&Default::default())
        .await
        .map_err(|e| KubeconfigError::Unreachable(context.to_string(), one_line(&e)))?;
    Ok(list.items.into_iter().filter_map(|n| n.metadata.name).collect())
}

/// Asks the cluster for its version, to prove the credentials work.
pub async fn probe(config: &Config, context: &str) -> Result<String, KubeconfigError> {
    let client =
        Client::try_from(config.clone()).map_err(|e| KubeconfigError::Invalid(context.to_string(), one_line(&e)))?;
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

    #[test]
    fn risky_settings_are_named() {
        assert!(risks(&parse(GOOD).unwrap(), "prod").is_empty());
        let risky = GOOD.replace(
            r#"certificate-authority-data: "" }"#,
            r#"insecure-skip-tls-verify: true, proxy-url: "http://proxy.example:3128" }"#,
        );
        let found = risks(&parse(&risky).unwrap(), "prod");
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found[0].contains("insecure-skip-tls-verify") && found[1].contains("proxy.example"));
    }

    #[test]
    fn a_single_context_keeps_only_its_own_credentials() {
        let two = format!("{GOOD}\n",).replace(
            "users:\n- name: u\n  user: { token: abc }",
            "users:\n- name: u\n  user: { token: abc }\n- name: other\n  user: { token: secret-of-other }",
        );
        let single = single_context(&two, "prod").unwrap();
        assert!(single.contains("abc") && !single.contains("secret-of-other"), "{single}");
        assert!(matches!(single_context(&two, "dev"), Err(KubeconfigError::UnknownContext(..))));
    }

    /// A kubeconfig with arbitrary values where a real one has a server URL,
    /// certificates, a token, a user name, flags and a namespace; or any text.
    fn kubeconfig() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let value = prop_oneof![
            "[ -~]{0,40}".prop_map(|v| format!("{v:?}")),
            "[A-Za-z0-9+/=]{0,64}",
            Just("https://127.0.0.1:6443".to_string()),
            Just("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUI=".to_string()),
            Just("[]".to_string()),
            Just("{}".to_string()),
            Just("null".to_string()),
            Just("true".to_string()),
            "-?[0-9]{1,20}",
        ];
        let document = proptest::collection::vec(value, 9).prop_map(|v| {
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {}\n    certificate-authority-data: {}\n    insecure-skip-tls-verify: {}\n    proxy-url: {}\n\
                 users:\n- name: u\n  user:\n    token: {}\n    client-certificate-data: {}\n    client-key-data: {}\n    username: {}\n\
                 contexts:\n- name: prod\n  context: {{ cluster: c, user: u, namespace: {} }}\ncurrent-context: prod\n",
                v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]
            )
        });
        prop_oneof![
            document.clone(),
            (document, any::<usize>()).prop_map(|(d, cut)| d[..cut % (d.len() + 1)].to_string()),
            any::<String>()
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// Whatever a person uploads, Gantry answers with a client
        /// configuration or one of its errors, never a panic.
        #[test]
        fn any_kubeconfig_text_is_a_client_or_an_error(text in kubeconfig()) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let Ok(config) = parse(&text) else { return Ok(()) };
            let _ = risks(&config, "prod");
            if check_self_contained(&config, "prod").is_err() {
                return Ok(());
            }
            let _ = single_context(&text, "prod");
            if let Ok(client_config) = runtime.block_on(config_for(&config, "prod")) {
                let _guard = runtime.enter();
                let _ = Client::try_from(client_config);
            }
        }
    }
}
