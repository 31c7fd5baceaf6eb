//! The region's health, as the Route 53 health check in front of it asks for it.
//!
//! A region is healthy when what every request needs answers: each table that a request
//! reads or writes, and the bus that carries what they publish. Each part is asked once,
//! all at once, with a read that changes nothing (`DescribeTable`, `DescribeEventBus`), and
//! the whole check is bounded ([`CHECK_TIMEOUT`]), so a region whose DynamoDB or EventBridge
//! hangs answers 503 in time instead of timing the health checker out. The tables' items
//! are not read: their attributes belong to the services that own them.

use aws_sdk_dynamodb::types::TableStatus;
use serde::Serialize;
use shared::config::{self, ConfigError};
use std::future::Future;
use std::time::Duration;

/// How long the whole check may take. Route 53 gives an HTTPS endpoint 2 seconds to answer
/// once connected; a check still waiting after this counts as unreachable.
pub const CHECK_TIMEOUT: Duration = Duration::from_millis(1500);

/// What this region serves from: the physical names of its tables (by the declaration's
/// name) and of its bus.
#[derive(Debug, Clone)]
pub struct Region {
    /// AWS region name, for the report.
    pub name: String,
    /// (declared name, physical name) of each table a request touches.
    pub tables: Vec<(String, String)>,
    /// The event bus's name.
    pub bus: String,
}

impl Region {
    /// The tables and bus this function is given (infra/declaration.json, `health-check`).
    pub fn from_env() -> Result<Self, ConfigError> {
        let tables = vec![
            ("users".to_owned(), config::required("USERS_TABLE")?),
            ("inventory".to_owned(), config::required("INVENTORY_TABLE")?),
            ("orders".to_owned(), config::required("ORDERS_TABLE")?),
            ("payments".to_owned(), config::required("PAYMENTS_TABLE")?),
            (
                "idempotency".to_owned(),
                config::required("IDEMPOTENCY_TABLE")?,
            ),
        ];
        Ok(Self {
            name: config::optional("AWS_REGION").unwrap_or_else(|| "unknown".to_owned()),
            tables,
            bus: config::required("EVENT_BUS_NAME")?,
        })
    }
}

/// Why a part is not usable, in words safe to show to anyone (the route is public); the
/// cause goes to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unusable(pub String);

/// Asks one part of the region whether it answers. Implemented over the AWS SDK
/// ([`AwsProbe`]) and, in tests of the logic, in memory.
pub trait Probe: Clone + Send + Sync + 'static {
    /// Whether table `name` answers and serves requests.
    fn table(&self, name: &str) -> impl Future<Output = Result<(), Unusable>> + Send;
    /// Whether bus `name` answers.
    fn bus(&self, name: &str) -> impl Future<Output = Result<(), Unusable>> + Send;
}

/// The probe over DynamoDB and EventBridge.
#[derive(Debug, Clone)]
pub struct AwsProbe {
    dynamodb: aws_sdk_dynamodb::Client,
    events: aws_sdk_eventbridge::Client,
}

impl AwsProbe {
    /// Clients from the shared SDK configuration.
    pub fn new(sdk: &shared::aws::SdkConfig) -> Self {
        Self {
            dynamodb: shared::aws::dynamodb(sdk),
            events: aws_sdk_eventbridge::Client::new(sdk),
        }
    }
}

impl Probe for AwsProbe {
    async fn table(&self, name: &str) -> Result<(), Unusable> {
        let out = self
            .dynamodb
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| {
                tracing::warn!(table = name, error = %shared::problem::error_chain(&e), "table unreachable");
                Unusable("unreachable".into())
            })?;
        // UPDATING (a new index, a replica being added) still serves reads and writes.
        match out.table().and_then(|t| t.table_status()) {
            Some(TableStatus::Active | TableStatus::Updating) => Ok(()),
            Some(other) => Err(Unusable(format!("table status {}", other.as_str()))),
            None => Err(Unusable("no table status".into())),
        }
    }

    async fn bus(&self, name: &str) -> Result<(), Unusable> {
        self.events
            .describe_event_bus()
            .name(name)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                tracing::warn!(bus = name, error = %shared::problem::error_chain(&e), "bus unreachable");
                Unusable("unreachable".into())
            })
    }
}

/// One part's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was asked: `table <declared name>` or `bus`.
    pub name: String,
    /// Whether it answered in time and is usable.
    pub ok: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The region's answer: healthy only if every part is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// `healthy` or `unhealthy`.
    pub status: &'static str,
    /// The AWS region answering.
    pub region: String,
    /// Every part, in the order asked.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every part answered.
    pub fn healthy(&self) -> bool {
        self.status == "healthy"
    }
}

/// Asks every part of `region` at once; a part that has not answered within `timeout` is
/// reported as timed out.
pub async fn assess<P: Probe>(probe: &P, region: &Region, timeout: Duration) -> Report {
    let mut asked = tokio::task::JoinSet::new();
    let parts = region
        .tables
        .iter()
        .map(|(declared, physical)| (format!("table {declared}"), Some(physical.clone())))
        .chain(std::iter::once(("bus".to_owned(), None)));
    for (index, (name, table)) in parts.enumerate() {
        let probe = probe.clone();
        let bus = region.bus.clone();
        asked.spawn(async move {
            let answer = match table {
                Some(table) => tokio::time::timeout(timeout, probe.table(&table)).await,
                None => tokio::time::timeout(timeout, probe.bus(&bus)).await,
            };
            let detail = match answer {
                Ok(Ok(())) => None,
                Ok(Err(Unusable(why))) => Some(why),
                Err(_) => Some(format!("no answer within {} ms", timeout.as_millis())),
            };
            (
                index,
                Check {
                    name,
                    ok: detail.is_none(),
                    detail,
                },
            )
        });
    }
    let mut checks: Vec<(usize, Check)> = asked.join_all().await;
    checks.sort_by_key(|(index, _)| *index);
    let checks: Vec<Check> = checks.into_iter().map(|(_, c)| c).collect();
    Report {
        status: if checks.iter().all(|c| c.ok) {
            "healthy"
        } else {
            "unhealthy"
        },
        region: region.name.clone(),
        checks,
    }
}

/// The HTTP side of `GET /health`.
pub mod api {
    use super::{CHECK_TIMEOUT, Probe, Region, assess};
    use http::StatusCode;
    use http::header::{CACHE_CONTROL, HeaderValue};
    use lambda_http::{Body, Response};
    use shared::ApiError;

    /// 200 with the report when the region is healthy, 503 with it when not; never
    /// cached, so every health checker's request asks the region again.
    pub async fn check<P: Probe>(probe: &P, region: &Region) -> Result<Response<Body>, ApiError> {
        let report = assess(probe, region, CHECK_TIMEOUT).await;
        let status = if report.healthy() {
            StatusCode::OK
        } else {
            tracing::warn!(checks = ?report.checks, "region unhealthy");
            StatusCode::SERVICE_UNAVAILABLE
        };
        let mut response = shared::http::json(status, &report)?;
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::sync::Arc;

    /// How a part answers, and after how long.
    type Answer = (Duration, Result<(), Unusable>);

    /// Parts by physical name.
    #[derive(Clone, Default)]
    struct Parts(Arc<HashMap<String, Answer>>);

    impl Parts {
        fn with(answers: &[(&str, u64, Result<(), Unusable>)]) -> Self {
            Self(Arc::new(
                answers
                    .iter()
                    .map(|(n, ms, a)| ((*n).to_owned(), (Duration::from_millis(*ms), a.clone())))
                    .collect(),
            ))
        }

        async fn ask(&self, name: &str) -> Result<(), Unusable> {
            match self.0.get(name) {
                Some((after, answer)) => {
                    tokio::time::sleep(*after).await;
                    answer.clone()
                }
                None => Err(Unusable("unreachable".into())),
            }
        }
    }

    impl Probe for Parts {
        async fn table(&self, name: &str) -> Result<(), Unusable> {
            self.ask(name).await
        }
        async fn bus(&self, name: &str) -> Result<(), Unusable> {
            self.ask(name).await
        }
    }

    fn region() -> Region {
        Region {
            name: "eu-west-1".into(),
            tables: vec![
                ("orders".into(), "commerce-orders".into()),
                ("inventory".into(), "commerce-inventory".into()),
            ],
            bus: "commerce".into(),
        }
    }

    #[tokio::test]
    async fn a_region_whose_parts_all_answer_is_healthy() {
        let parts = Parts::with(&[
            ("commerce-orders", 0, Ok(())),
            ("commerce-inventory", 0, Ok(())),
            ("commerce", 0, Ok(())),
        ]);
        let report = assess(&parts, &region(), Duration::from_secs(5)).await;
        assert!(report.healthy());
        let names: Vec<_> = report.checks.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["table orders", "table inventory", "bus"]);
    }

    #[tokio::test]
    async fn one_table_away_makes_the_region_unhealthy_and_is_named() {
        let parts = Parts::with(&[("commerce-inventory", 0, Ok(())), ("commerce", 0, Ok(()))]);
        let report = assess(&parts, &region(), Duration::from_secs(5)).await;
        assert!(!report.healthy());
        assert_eq!(
            report.checks[0],
            Check {
                name: "table orders".into(),
                ok: false,
                detail: Some("unreachable".into())
            }
        );
        assert!(report.checks[1].ok && report.checks[2].ok);
    }

    #[tokio::test]
    async fn a_part_that_hangs_is_reported_as_timed_out_within_the_bound() {
        // The bus would answer after ten minutes; the check gives up after its bound.
        let parts = Parts::with(&[
            ("commerce-orders", 0, Ok(())),
            ("commerce-inventory", 0, Ok(())),
            ("commerce", 600_000, Ok(())),
        ]);
        let report = assess(&parts, &region(), Duration::from_millis(200)).await;
        assert!(!report.healthy());
        assert_eq!(
            report.checks[2].detail.as_deref(),
            Some("no answer within 200 ms")
        );
        assert!(report.checks[0].ok && report.checks[1].ok);
    }

    #[tokio::test]
    async fn an_unhealthy_region_answers_503_uncached_with_the_report() {
        let parts = Parts::with(&[("commerce-orders", 0, Ok(())), ("commerce", 0, Ok(()))]);
        let response = api::check(&parts, &region()).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
        assert_eq!(body["status"], "unhealthy");
        assert_eq!(body["checks"][1]["name"], "table inventory");
        assert_eq!(body["checks"][1]["ok"], false);
    }
}
