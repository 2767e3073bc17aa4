//! Per-cluster credentials: a CA, a serving certificate for 127.0.0.1/localhost (used by
//! kube-apiserver and by KWOK's kubelet endpoint), a service-account signing key, an
//! admin bearer token in the group system:masters, and a second one of the same rights for
//! Gantry under test, whose requests alone the apiserver's audit log records.

use std::path::{Path, PathBuf};

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::{Error, Result};

pub(crate) struct Pki {
    pub ca_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub service_account_key_pem: String,
    pub service_account_pub_pem: String,
    pub admin_token: String,
    /// The user `gantry` (system:masters): what Gantry under test connects as.
    pub gantry_token: String,
}

/// Where `Pki::write` put the files.
pub(crate) struct PkiFiles {
    pub ca: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub service_account_key: PathBuf,
    /// The public half: kube-apiserver's key-file reader takes PKCS#8 EC keys only as public keys.
    pub service_account_pub: PathBuf,
    pub tokens: PathBuf,
}

impl Pki {
    pub fn generate(cluster: &str) -> Result<Pki> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = distinguished_name(&format!("gantry-testbed-ca-{cluster}"));
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca = ca_params.self_signed(&ca_key)?;

        let serving_key = KeyPair::generate()?;
        let mut serving_params = CertificateParams::new(
            [
                "127.0.0.1",
                "localhost",
                "10.96.0.1",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
            ]
            .map(String::from)
            .to_vec(),
        )?;
        serving_params.distinguished_name = distinguished_name("kube-apiserver");
        serving_params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        serving_params.extended_key_usages =
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let serving = serving_params.signed_by(&serving_key, &ca, &ca_key)?;

        let service_account_key = KeyPair::generate()?;
        let token = || -> String {
            let bytes: [u8; 24] = rand::thread_rng().r#gen();
            bytes.iter().map(|b| format!("{b:02x}")).collect()
        };
        Ok(Pki {
            ca_pem: ca.pem(),
            serving_cert_pem: serving.pem(),
            serving_key_pem: serving_key.serialize_pem(),
            service_account_key_pem: service_account_key.serialize_pem(),
            service_account_pub_pem: service_account_key.public_key_pem(),
            admin_token: token(),
            gantry_token: token(),
        })
    }

    pub fn write(&self, dir: &Path) -> Result<PkiFiles> {
        std::fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
        let files = PkiFiles {
            ca: dir.join("ca.crt"),
            serving_cert: dir.join("serving.crt"),
            serving_key: dir.join("serving.key"),
            service_account_key: dir.join("service-account.key"),
            service_account_pub: dir.join("service-account.pub"),
            tokens: dir.join("tokens.csv"),
        };
        let tokens = format!(
            "{},admin,admin-uid,\"system:masters\"\n{},gantry,gantry-uid,\"system:masters\"\n",
            self.admin_token, self.gantry_token
        );
        for (path, text) in [
            (&files.ca, &self.ca_pem),
            (&files.serving_cert, &self.serving_cert_pem),
            (&files.serving_key, &self.serving_key_pem),
            (&files.service_account_key, &self.service_account_key_pem),
            (&files.service_account_pub, &self.service_account_pub_pem),
            (&files.tokens, &tokens),
        ] {
            std::fs::write(path, text).map_err(Error::io(format!("writing {}", path.display())))?;
        }
        Ok(files)
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}
