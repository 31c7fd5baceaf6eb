# This region's API under two names, one certificate:
#   origin.<api domain>   latency record (one per region, same name) with this region's
#                         health check: CloudFront's origin; Route 53 answers with the
#                         lowest-latency healthy region
#   <region>.<api domain> this region alone: the home region's forwarding target, operators
#
# Health: the region is judged by a calculated check over
#   (a) an HTTPS check of GET /health on the regional name from Route 53's checkers around
#       the world: the one route without the authorizer, whose function answers 503 when
#       this region's tables or bus do not answer (functions/health), and
#   (b) a CloudWatch alarm on the 5xx answers of one local read route, var.api_health_route
#       (route-level metrics): what customers meet. Not the whole stage,
#       whose 5xx include the writes forwarded to the home region, which fail in every
#       region when the home region is down and would take every region out of rotation
#       at once.

resource "aws_acm_certificate" "api" {
  domain_name               = var.origin_domain
  subject_alternative_names = [var.regional_domain]
  validation_method         = "DNS"

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# ACM's DNS validation record for a name is the same for every certificate of this account
# that asks for it, and must stay for renewals. The origin name is in every region's
# certificate: its record belongs to the primary region's stack, which lives as long as the
# deployment, so removing another region never deletes it. Each region owns the record of
# its own name.
resource "aws_route53_record" "api_validation" {
  # Keyed by the names asked for (known at plan), not by the certificate's answer.
  for_each = var.region == var.primary_region ? toset([var.origin_domain, var.regional_domain]) : toset([var.regional_domain])

  allow_overwrite = true
  zone_id         = var.hosted_zone_id
  name            = local.api_validation[each.key].resource_record_name
  type            = local.api_validation[each.key].resource_record_type
  records         = [local.api_validation[each.key].resource_record_value]
  ttl             = 300
}

locals {
  api_validation = { for o in aws_acm_certificate.api.domain_validation_options : o.domain_name => o }
}

# Waits until ACM has issued the certificate (in other regions, the origin name's record
# comes from the primary region's stack).
resource "aws_acm_certificate_validation" "api" {
  certificate_arn = aws_acm_certificate.api.arn

  depends_on = [aws_route53_record.api_validation]
}

resource "aws_apigatewayv2_domain_name" "api" {
  for_each = {
    origin   = var.origin_domain
    regional = var.regional_domain
  }

  domain_name = each.value

  domain_name_configuration {
    certificate_arn = aws_acm_certificate_validation.api.certificate_arn
    endpoint_type   = "REGIONAL"
    security_policy = "TLS_1_2"
  }
}

resource "aws_apigatewayv2_api_mapping" "api" {
  for_each = aws_apigatewayv2_domain_name.api

  api_id      = aws_apigatewayv2_api.http.id
  domain_name = each.value.id
  stage       = aws_apigatewayv2_stage.default.id
}

resource "aws_route53_record" "regional" {
  zone_id = var.hosted_zone_id
  name    = var.regional_domain
  type    = "A"

  alias {
    name                   = aws_apigatewayv2_domain_name.api["regional"].domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.api["regional"].domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = false
  }
}

resource "aws_route53_record" "origin_latency" {
  zone_id        = var.hosted_zone_id
  name           = var.origin_domain
  type           = "A"
  set_identifier = var.region

  latency_routing_policy {
    region = var.region
  }

  health_check_id = aws_route53_health_check.api.id

  alias {
    name                   = aws_apigatewayv2_domain_name.api["origin"].domain_name_configuration[0].target_domain_name
    zone_id                = aws_apigatewayv2_domain_name.api["origin"].domain_name_configuration[0].hosted_zone_id
    evaluate_target_health = true
  }
}

resource "aws_cloudwatch_metric_alarm" "api_health" {
  alarm_name          = "${var.name_prefix}-api-health"
  alarm_description   = "${var.api_health_route} answers 5xx in ${var.region}: the region's health check fails and the latency records stop sending traffic here"
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  threshold           = var.api_health_5xx_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  # An HTTP API publishes route-level metrics only for routes with detailed metrics (api.tf).
  # AWS's guide names their dimensions ApiId, Method, Resource, Stage (an older edition said
  # ApiId, Stage, Route): after the first deploy, check the alarm has data with
  # `aws cloudwatch list-metrics --namespace AWS/ApiGateway --metric-name 5xx
  # --dimensions Name=ApiId,Value=<api id>` (infra/README.md, "Failover").
  dimensions = {
    ApiId    = aws_apigatewayv2_api.http.id
    Stage    = aws_apigatewayv2_stage.default.name
    Method   = split(" ", var.api_health_route)[0]
    Resource = split(" ", var.api_health_route)[1]
  }

  lifecycle {
    precondition {
      condition     = contains([for name, spec in local.routed : spec.route if !local.home_only[name]], var.api_health_route)
      error_message = "api_health_route must be a declared route served locally in every region (not one forwarded to the home region)."
    }
  }
}

resource "aws_route53_health_check" "api_alarm" {
  type                            = "CLOUDWATCH_METRIC"
  cloudwatch_alarm_name           = aws_cloudwatch_metric_alarm.api_health.alarm_name
  cloudwatch_alarm_region         = var.region
  insufficient_data_health_status = "LastKnownStatus"

  tags = {
    Name = "${var.name_prefix}-api-alarm-${var.region}"
  }
}

# Route 53 gives the endpoint 4 s to connect and 2 s more to answer 2xx/3xx; the health
# function bounds its own checks to 1.5 s (functions/health, CHECK_TIMEOUT).
resource "aws_route53_health_check" "api_https" {
  type              = "HTTPS"
  fqdn              = var.regional_domain
  port              = 443
  resource_path     = local.health_path
  enable_sni        = true # API Gateway custom domains are served by SNI
  request_interval  = 30
  failure_threshold = 3

  tags = {
    Name = "${var.name_prefix}-api-https-${var.region}"
  }

  depends_on = [aws_route53_record.regional, aws_apigatewayv2_api_mapping.api, aws_apigatewayv2_stage.default]
}

locals {
  # The path of the declared route without an authorizer (GET /health).
  health_path = one([
    for name, spec in local.routed : split(" ", spec.route)[1] if try(spec.auth, "jwt") == "none" && startswith(spec.route, "GET ")
  ])
}

resource "aws_route53_health_check" "api" {
  type                   = "CALCULATED"
  child_health_threshold = 2
  child_healthchecks     = [aws_route53_health_check.api_alarm.id, aws_route53_health_check.api_https.id]

  tags = {
    Name = "${var.name_prefix}-api-${var.region}"
  }
}
