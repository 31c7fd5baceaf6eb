//! `GET /analytics/sales`: units and revenue per day, sku and currency of confirmed
//! orders net of cancellations, for `?from=&to=` (dates) and optionally `&sku=` (admin only).

use analytics::SalesProjection;

/// The function's entry point, here and in the one deployed binary (functions/bootstrap).
#[tokio::main]
pub async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sdk = shared::aws::sdk_config().await?;
    let sales = SalesProjection::from_env(shared::aws::dynamodb(&sdk))?;
    shared::http::serve(|req| analytics::api::get_sales(&sales, req)).await
}
