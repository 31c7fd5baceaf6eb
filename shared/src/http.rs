//! The HTTP edge of every API function: one wrapper that gives each invocation its
//! span, ids, problem+json errors and metrics, and the body parsing that enforces the
//! API's conventions (64 KiB limit, JSON only, unknown fields rejected with their path).

use crate::config;
use crate::metrics::{self, InvocationMetrics};
use crate::problem::{ApiError, FieldError, PROBLEM_JSON};
use http::header::{CONTENT_TYPE, HeaderValue, LOCATION};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use std::future::Future;
use std::time::Instant;
use tracing::Instrument;

/// Largest request body the API accepts (API.md: over 64 KiB is a 413).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Header that carries the request id back to the client.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Header a client may send to tie its request to every event and log line it causes.
pub const CORRELATION_ID_HEADER: &str = "x-correlation-id";

/// Ids of the request being handled; the wrapper puts it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestMeta {
    /// API Gateway's request id (the problem document's `instance`, `x-request-id`).
    pub request_id: String,
    /// The client's `x-correlation-id` when it sent a usable one, else the request id.
    pub correlation_id: String,
}

impl RequestMeta {
    /// Reads the ids from the request; never fails, since every request needs ids even
    /// when its context is unusual.
    pub fn from_request(req: &Request) -> Self {
        let gateway_id = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(c)) => c.request_id.clone(),
            _ => None,
        };
        let request_id = gateway_id
            .filter(|id| !id.is_empty())
            .or_else(|| req.lambda_context_ref().map(|c| c.request_id.clone()))
            .unwrap_or_else(|| ulid::Ulid::new().to_string());
        let correlation_id = req
            .headers()
            .get(CORRELATION_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .filter(|v| valid_correlation_id(v))
            .map(str::to_owned)
            .unwrap_or_else(|| request_id.clone());
        Self {
            request_id,
            correlation_id,
        }
    }
}

/// The client's address as API Gateway saw it (`requestContext.http.sourceIp`), when the
/// request came through the gateway and the address parses.
pub fn source_ip(req: &Request) -> Option<std::net::IpAddr> {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.http.source_ip.as_deref()?.parse().ok(),
        _ => None,
    }
}

/// A correlation id we will carry: 1..=128 visible ASCII characters.
fn valid_correlation_id(v: &str) -> bool {
    (1..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_graphic())
}

/// Runs an API function: each request gets its ids, a span, and on error a problem
/// document; every answer carries `x-request-id` and `x-correlation-id`; one EMF line
/// per invocation reports latency, status and DynamoDB round trips.
pub async fn serve<F, Fut>(handler: F) -> Result<(), lambda_http::Error>
where
    F: Fn(Request) -> Fut + Sync,
    Fut: Future<Output = Result<Response<Body>, ApiError>> + Send,
{
    let handler = &handler;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<_, Infallible>(respond(handler, req).await)
    }))
    .await
}

/// One request through `handler`, with everything [`serve`] promises.
pub async fn respond<F, Fut>(handler: &F, mut req: Request) -> Response<Body>
where
    F: Fn(Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let counters = metrics::Counters::now();
    let meta = RequestMeta::from_request(&req);
    let route = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(c)) => c.route_key.clone().unwrap_or_default(),
        _ => String::new(),
    };
    let span = tracing::info_span!(
        "invocation",
        function = %config::function_name(),
        request_id = %meta.request_id,
        correlation_id = %meta.correlation_id,
        route = %route,
    );
    req.extensions_mut().insert(meta.clone());

    let mut response = async {
        match handler(req).await {
            Ok(response) => response,
            Err(err) => {
                let status = err.status();
                if status.is_server_error() {
                    tracing::error!(error = %err.cause_chain(), "request failed");
                } else {
                    tracing::info!(error = %err.cause_chain(), status = status.as_u16(), "request refused");
                }
                problem_response(err, &meta.request_id)
            }
        }
    }
    .instrument(span.clone())
    .await;

    set_header(&mut response, REQUEST_ID_HEADER, &meta.request_id);
    set_header(&mut response, CORRELATION_ID_HEADER, &meta.correlation_id);
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (dynamodb_requests, dynamodb_throttled) = counters.since();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_ms,
            dynamodb_requests,
            dynamodb_throttled,
            "request completed"
        );
    });
    metrics::emit(&InvocationMetrics {
        function: config::function_name(),
        request_id: &meta.request_id,
        status,
        latency_ms,
        dynamodb_requests,
        dynamodb_throttled,
    });
    response
}

fn set_header(response: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        response.headers_mut().insert(name, v);
    }
}

/// The problem+json response for `err`.
pub fn problem_response(err: ApiError, request_id: &str) -> Response<Body> {
    let retry_after = err.retry_after_secs();
    let problem = err.into_problem(request_id);
    let status = problem.status;
    let body = serde_json::to_string(&problem).unwrap_or_else(|_| {
        // Serializing a struct of strings cannot fail; keep a valid document regardless.
        format!(r#"{{"type":"about:blank","title":"Error","status":{status}}}"#)
    });
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: http::StatusCode, value: &T) -> Result<Response<Body>, ApiError> {
    let body = serde_json::to_string(value).map_err(ApiError::internal)?;
    let mut response = Response::new(Body::Text(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(response)
}

/// A JSON response with a `Location` header (201 Created, 202 Accepted).
pub fn json_at<T: Serialize>(
    status: http::StatusCode,
    location: &str,
    value: &T,
) -> Result<Response<Body>, ApiError> {
    let mut response = json(status, value)?;
    let loc = HeaderValue::from_str(location).map_err(ApiError::internal)?;
    response.headers_mut().insert(LOCATION, loc);
    Ok(response)
}

/// An empty response (204 No Content).
pub fn empty(status: http::StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::Empty);
    *response.status_mut() = status;
    response
}

/// A path parameter the route declares; its absence means the route and the function
/// disagree, which is our fault, not the client's.
pub fn path_param(req: &Request, name: &str) -> Result<String, ApiError> {
    req.path_parameters_ref()
        .and_then(|p| p.first(name))
        .map(str::to_owned)
        .ok_or_else(|| {
            ApiError::internal(std::io::Error::other(format!(
                "route has no path parameter {name}"
            )))
        })
}

/// The request's ids as the wrapper recorded them.
pub fn meta(req: &Request) -> RequestMeta {
    req.extensions()
        .get::<RequestMeta>()
        .cloned()
        .unwrap_or_else(|| RequestMeta::from_request(req))
}

/// Parses the body as `T`, enforcing the API's conventions: at most
/// [`MAX_BODY_BYTES`] (413), JSON by content type when one is given (415), valid JSON
/// (400), and every unknown, missing or ill-typed field reported by its path (400).
pub fn parse_json<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    if let Some(ct) = req.headers().get(CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        if !(essence == "application/json" || essence.ends_with("+json")) {
            return Err(ApiError::UnsupportedMediaType(essence.to_owned()));
        }
    }
    parse_json_bytes(req.body().as_ref())
}

/// [`parse_json`] without the request: the size limit, JSON syntax and field paths.
pub fn parse_json_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "A JSON request body is required".into(),
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                ApiError::Validation(vec![field_error(&path, &inner)])
            }
            _ => ApiError::BadRequest(format!("The body is not valid JSON: {inner}")),
        }
    })
}

/// Names the field a serde data error is about. A missing field is reported at the
/// enclosing object's path with its name only in the message; we append it.
fn field_error(path: &str, err: &serde_json::Error) -> FieldError {
    let msg = err.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
    let base = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|prefix| msg.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let field = match named {
        // An unknown field is already the last segment of the path.
        Some(name) if base == name || base.ends_with(&format!(".{name}")) => base.to_owned(),
        Some(name) if base.is_empty() => name.to_owned(),
        Some(name) => format!("{base}.{name}"),
        None => base.to_owned(),
    };
    let message = if msg.starts_with("unknown field") {
        "unknown field".to_owned()
    } else {
        msg
    };
    FieldError::new(field, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        sku: String,
        quantity: u32,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Order {
        items: Vec<Line>,
    }

    fn field_of(err: ApiError) -> FieldError {
        match err {
            ApiError::Validation(mut errors) => errors.remove(0),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn unknown_fields_are_named_by_path() {
        let err =
            parse_json_bytes::<Order>(br#"{"items":[{"sku":"A","quantity":1,"colour":"red"}]}"#)
                .unwrap_err();
        assert_eq!(
            field_of(err),
            FieldError::new("items[0].colour", "unknown field")
        );
        let err = parse_json_bytes::<Order>(br#"{"items":[],"extra":1}"#).unwrap_err();
        assert_eq!(field_of(err).field, "extra");
    }

    #[test]
    fn ill_typed_and_missing_fields_are_named_by_path() {
        let err =
            parse_json_bytes::<Order>(br#"{"items":[{"sku":"A","quantity":-1}]}"#).unwrap_err();
        assert_eq!(field_of(err).field, "items[0].quantity");
        let err = parse_json_bytes::<Order>(br#"{"items":[{"sku":"A"}]}"#).unwrap_err();
        assert_eq!(field_of(err).field, "items[0].quantity");
    }

    #[test]
    fn bodies_over_64_kib_are_refused_before_parsing() {
        let big = vec![b' '; MAX_BODY_BYTES + 1];
        assert!(matches!(
            parse_json_bytes::<Order>(&big),
            Err(ApiError::PayloadTooLarge {
                limit: MAX_BODY_BYTES
            })
        ));
    }

    #[test]
    fn broken_or_empty_json_is_a_malformed_request() {
        assert!(matches!(
            parse_json_bytes::<Order>(b"{\"items\":"),
            Err(ApiError::BadRequest(_))
        ));
        assert!(matches!(
            parse_json_bytes::<Order>(b""),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn correlation_ids_must_be_short_visible_ascii() {
        assert!(valid_correlation_id("abc-123"));
        assert!(!valid_correlation_id(""));
        assert!(!valid_correlation_id("has space"));
        assert!(!valid_correlation_id(&"x".repeat(129)));
    }
}
