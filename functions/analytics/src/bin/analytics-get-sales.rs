//! `GET /analytics/sales`: units and revenue per day, sku and currency of confirmed
//! orders net of cancellations, for `?from=&to=` (dates) and optionally `&sku=` (admin only).

use analytics::SalesProjection;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let sales = SalesProjection::from_env().await?;
    shared::http::serve(|req| analytics::api::get_sales(&sales, req)).await
}
