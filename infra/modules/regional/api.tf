# The HTTP API: one route per declared function route, behind the JWT authorizer (Cognito)
# unless declared `"auth": "none"`. Reachable only through its custom domains (the execute-api endpoint is off):
# origin.<api domain>, latency-routed, behind CloudFront and WAF; and <region>.<api domain>.
#
# Home-region writes: outside the home region, a route whose function writes a
# home-written table (orders, inventory, idempotency), or drives a state machine (they run in
# the home region, where the saga starts; a task token only works there), is not served by
# the local function but forwarded (HTTP_PROXY, headers and body as they came) to the home
# region's API, which checks the token again and runs the function there. Reads are served
# locally from the replica. Every route also has its local integration, forwarded or not, so promoting a
# region to home is repointing routes (README.md, "Failover"), nothing to create.

locals {
  routed = { for name, spec in local.functions : name => spec if try(spec.route, null) != null }

  write_actions = [
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLInsert", "dynamodb:PartiQLUpdate", "dynamodb:PartiQLDelete",
  ]
  home_only = {
    for name, spec in local.functions : name => length(try(spec.state_machines, {})) > 0 || anytrue([
      for table, actions in try(spec.tables, {}) :
      contains(var.home_written_tables, table) && length(setintersection(actions, local.write_actions)) > 0
    ])
  }

  forwarded_routes = { for name, spec in local.routed : name => spec if !local.is_home && local.home_only[name] }

  # A forwarded route's target is its home integration (merge: the later map wins).
  integration_ids = merge(
    { for name, i in aws_apigatewayv2_integration.function : name => i.id },
    { for name, i in aws_apigatewayv2_integration.home : name => i.id },
  )
}

resource "aws_apigatewayv2_api" "http" {
  name                         = "${var.name_prefix}-api"
  protocol_type                = "HTTP"
  disable_execute_api_endpoint = true
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  api_id           = aws_apigatewayv2_api.http.id
  name             = "cognito-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]

  jwt_configuration {
    issuer   = var.jwt_issuer
    audience = var.jwt_audience
  }
}

resource "aws_apigatewayv2_integration" "function" {
  for_each = local.routed

  api_id                 = aws_apigatewayv2_api.http.id
  integration_type       = "AWS_PROXY"
  integration_uri        = aws_lambda_function.this[each.key].invoke_arn
  payload_format_version = "2.0"
}

resource "aws_apigatewayv2_integration" "home" {
  for_each = local.forwarded_routes

  api_id                 = aws_apigatewayv2_api.http.id
  description            = "Forwarded to the home region (${var.home_region})"
  integration_type       = "HTTP_PROXY"
  integration_method     = split(" ", each.value.route)[0]
  integration_uri        = "https://${var.home_api_domain}"
  payload_format_version = "1.0"
  request_parameters = {
    "overwrite:path" = "$request.path"
  }
}

# Every route is behind the JWT authorizer except one declared `"auth": "none"`: GET /health,
# which Route 53's health checkers call without an identity (domain.tf).
resource "aws_apigatewayv2_route" "function" {
  for_each = local.routed

  api_id             = aws_apigatewayv2_api.http.id
  route_key          = each.value.route
  target             = "integrations/${local.integration_ids[each.key]}"
  authorization_type = try(each.value.auth, "jwt") == "none" ? "NONE" : "JWT"
  authorizer_id      = try(each.value.auth, "jwt") == "none" ? null : aws_apigatewayv2_authorizer.jwt.id
}

resource "aws_lambda_permission" "api" {
  for_each = local.routed

  statement_id  = "AllowHttpApi"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this[each.key].function_name
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_apigatewayv2_api.http.execution_arn}/*/*"
}

resource "aws_cloudwatch_log_group" "api" {
  #checkov:skip=CKV_AWS_338:Retention is an operator choice (var.log_retention_days, default 30 days): access logs for operations; the audit trail is CloudTrail's.
  name              = "/aws/apigateway/${var.name_prefix}-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.regional.arn
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.http.id
  name        = "$default"
  auto_deploy = true

  default_route_settings {
    throttling_burst_limit = var.api_throttling_burst_limit
    throttling_rate_limit  = var.api_throttling_rate_limit
  }

  # Route-level metrics for the health route only (domain.tf); they are billed per metric.
  route_settings {
    route_key                = var.api_health_route
    detailed_metrics_enabled = true
    throttling_burst_limit   = var.api_throttling_burst_limit
    throttling_rate_limit    = var.api_throttling_rate_limit
  }

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.api.arn
    format = jsonencode({
      requestId      = "$context.requestId"
      routeKey       = "$context.routeKey"
      status         = "$context.status"
      latencyMs      = "$context.responseLatency"
      integrationErr = "$context.integrationErrorMessage"
      authorizerErr  = "$context.authorizer.error"
      sourceIp       = "$context.identity.sourceIp"
      domainName     = "$context.domainName"
    })
  }

  depends_on = [aws_apigatewayv2_route.function]
}
