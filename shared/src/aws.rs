//! AWS clients, built once per cold start from the standard SDK settings.
//!
//! Endpoints, region and credentials come from the environment the SDK already reads
//! (`AWS_ENDPOINT_URL`, `AWS_REGION`, ...), so the local stack points the same code at
//! the emulator and nothing here knows whether it runs locally or in AWS.

use crate::config::ConfigError;
use crate::metrics::DynamoDbRequestCounter;
pub use aws_config::SdkConfig;
use aws_config::{AppName, BehaviorVersion};

/// Loads the shared SDK configuration from the environment, with the one HTTPS client
/// every SDK client of the process shares (see [`http_client`]).
///
/// Inside a function, the SDK's user agent names it (`app/<function name>`): CloudTrail
/// records it with every call, and the local emulator holds each function's calls against
/// the actions the declaration grants it (`local/sdk_calls.py`), which is how a call
/// that IAM would deny in AWS fails a test here.
///
/// Fails (at cold start) only when `COMMERCE_TLS_ROOTS` has a value it does not take.
pub async fn sdk_config() -> Result<SdkConfig, ConfigError> {
    let loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client()?);
    Ok(
        match crate::config::optional("AWS_LAMBDA_FUNCTION_NAME").and_then(|n| AppName::new(n).ok())
        {
            Some(app) => loader.app_name(app).load().await,
            None => loader.load().await,
        },
    )
}

/// The root certificates AWS service endpoints chain to, from Amazon Trust Services
/// (<https://www.amazontrust.com/repository/>): Amazon Root CA 1 to 4 and Starfield
/// Services Root Certificate Authority - G2, the set the AWS SDKs' documentation says a
/// trust store needs for AWS endpoints. `shared/certs/aws-roots.pem`; the test below pins
/// their SHA-256 fingerprints.
pub const AWS_TRUST_ROOTS_PEM: &[u8] = include_bytes!("../certs/aws-roots.pem");

/// Which roots the HTTPS client trusts: `COMMERCE_TLS_ROOTS`, read once per cold start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustRoots {
    /// AWS's roots only ([`AWS_TRUST_ROOTS_PEM`], built in): the default. Functions talk
    /// to AWS endpoints only, and loading the system's roots (a bundle of about 140
    /// certificates, then every file of the certificate directory) was most of a cold
    /// start's init (docs/decisions.md, "TLS roots"; `local/bench/roots.py` measures it).
    Aws,
    /// The system's roots (`COMMERCE_TLS_ROOTS=system`): for a deployment that sends SDK
    /// calls through a TLS-inspecting proxy or to endpoints with other certificates.
    System,
}

impl TrustRoots {
    /// `COMMERCE_TLS_ROOTS`, see [`TrustRoots::parse`].
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::parse(crate::config::optional("COMMERCE_TLS_ROOTS").as_deref())
    }

    /// Unset or `aws` is [`TrustRoots::Aws`], `system` is [`TrustRoots::System`]; anything
    /// else is refused at cold start, not guessed at.
    pub fn parse(value: Option<&str>) -> Result<Self, ConfigError> {
        match value {
            None | Some("aws") => Ok(Self::Aws),
            Some("system") => Ok(Self::System),
            Some(other) => Err(ConfigError::Invalid {
                name: "COMMERCE_TLS_ROOTS",
                reason: format!("{other:?}; it takes \"aws\" (the default) or \"system\""),
            }),
        }
    }
}

/// The HTTPS client (rustls with ring, hyper) every SDK client of the process shares:
/// one connection pool, and one trust store, [`TrustRoots`]. Plain-HTTP endpoints (the
/// local stack's emulator) go through it too.
pub fn http_client() -> Result<aws_sdk_dynamodb::config::SharedHttpClient, ConfigError> {
    use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
    let roots = TrustRoots::from_env()?;
    let trust_store = match roots {
        TrustRoots::Aws => TrustStore::empty().with_pem_certificate(AWS_TRUST_ROOTS_PEM),
        TrustRoots::System => TrustStore::default(),
    };
    let tls_context = TlsContext::builder()
        .with_trust_store(trust_store)
        .build()
        .map_err(|e| ConfigError::Invalid {
            name: "COMMERCE_TLS_ROOTS",
            reason: format!("the TLS context does not build: {e}"),
        })?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .tls_context(tls_context)
        .build_https())
}

/// A DynamoDB client whose requests are counted for the per-invocation metrics
/// (see [`crate::metrics`]), so every operation's round trips are visible.
pub fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    dynamodb_with_counter(config, DynamoDbRequestCounter::default())
}

/// A DynamoDB client that also counts into `counter`; tests use it to prove how many
/// round trips an operation makes.
pub fn dynamodb_with_counter(
    config: &SdkConfig,
    counter: DynamoDbRequestCounter,
) -> aws_sdk_dynamodb::Client {
    let conf = aws_sdk_dynamodb::config::Builder::from(config)
        .interceptor(counter)
        .build();
    aws_sdk_dynamodb::Client::from_conf(conf)
}

/// The ARN of execution `name` of the Step Functions state machine `state_machine_arn`
/// (the same account, region and machine name, resource type `execution`).
pub fn execution_arn(state_machine_arn: &str, name: &str) -> String {
    format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    )
}

#[cfg(test)]
mod execution_arn_tests {
    #[test]
    fn an_execution_arn_is_built_from_its_state_machine() {
        assert_eq!(
            super::execution_arn(
                "arn:aws:states:eu-west-1:123456789012:stateMachine:commerce-cancel-order",
                "cancel-01J-2"
            ),
            "arn:aws:states:eu-west-1:123456789012:execution:commerce-cancel-order:cancel-01J-2"
        );
    }
}

#[cfg(test)]
mod trust_root_tests {
    use super::{AWS_TRUST_ROOTS_PEM, TrustRoots};
    use base64::Engine;
    use sha2::{Digest, Sha256};

    /// SHA-256 of each certificate in `AWS_TRUST_ROOTS_PEM`, as Amazon Trust Services
    /// publishes them (and Mozilla's store carries them): the file is these five roots,
    /// byte for byte, and nothing else.
    const FINGERPRINTS: [(&str, &str); 5] = [
        (
            "Amazon Root CA 1",
            "8ecde6884f3d87b1125ba31ac3fcb13d7016de7f57cc904fe1cb97c6ae98196e",
        ),
        (
            "Amazon Root CA 2",
            "1ba5b2aa8c65401a82960118f80bec4f62304d83cec4713a19c39c011ea46db4",
        ),
        (
            "Amazon Root CA 3",
            "18ce6cfe7bf14e60b2e347b8dfe868cb31d02ebb3ada271569f50343b46db3a4",
        ),
        (
            "Amazon Root CA 4",
            "e35d28419ed02025cfa69038cd623962458da5c695fbdea3c22b0bfb25897092",
        ),
        (
            "Starfield Services Root Certificate Authority - G2",
            "568d6905a2c88708a4b3025190edcfedb1974a606a13c6e5290fcb2ae63edab5",
        ),
    ];

    fn certificates() -> Vec<Vec<u8>> {
        let pem = std::str::from_utf8(AWS_TRUST_ROOTS_PEM).unwrap();
        pem.split("-----BEGIN CERTIFICATE-----")
            .skip(1)
            .map(|block| {
                let body = block.split("-----END CERTIFICATE-----").next().unwrap();
                let b64: String = body.split_whitespace().collect();
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn the_built_in_roots_are_amazon_trust_services_five() {
        let got: Vec<String> = certificates()
            .iter()
            .map(|der| {
                Sha256::digest(der)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect()
            })
            .collect();
        let want: Vec<String> = FINGERPRINTS.iter().map(|(_, f)| (*f).to_owned()).collect();
        assert_eq!(
            got, want,
            "shared/certs/aws-roots.pem is not {FINGERPRINTS:?}"
        );
    }

    #[test]
    fn the_roots_setting_takes_aws_or_system_and_refuses_the_rest() {
        assert_eq!(TrustRoots::parse(None).unwrap(), TrustRoots::Aws);
        assert_eq!(TrustRoots::parse(Some("aws")).unwrap(), TrustRoots::Aws);
        assert_eq!(
            TrustRoots::parse(Some("system")).unwrap(),
            TrustRoots::System
        );
        let refused = TrustRoots::parse(Some("mozilla")).unwrap_err().to_string();
        assert!(
            refused.contains("COMMERCE_TLS_ROOTS") && refused.contains("\"mozilla\""),
            "{refused}"
        );
    }

    #[test]
    fn the_https_client_builds_with_either_store() {
        // The client's TLS configuration is made from the store on first use; both must
        // parse (an unparsable PEM would fail every call, at its first request).
        assert!(super::http_client().is_ok());
        let store = aws_smithy_http_client::tls::TrustStore::empty()
            .with_pem_certificate(AWS_TRUST_ROOTS_PEM);
        assert!(
            aws_smithy_http_client::tls::TlsContext::builder()
                .with_trust_store(store)
                .build()
                .is_ok()
        );
    }
}
