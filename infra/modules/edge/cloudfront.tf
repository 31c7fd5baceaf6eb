# The public API: api.<domain> -> CloudFront (web ACL from waf.tf) -> origin.<domain>,
# Route 53 latency records over the regional HTTP APIs, each with its health check. An
# unhealthy region drops out of the answers and CloudFront's next resolution goes to the
# next-lowest-latency healthy region. Nothing is cached: every method passes through with
# all viewer headers (Authorization, Idempotency-Key) except Host, so the regional custom
# domain sees its own name.

resource "aws_acm_certificate" "api" {
  domain_name       = var.api_domain_name
  validation_method = "DNS"

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "api_validation" {
  # Keyed by the names asked for (known at plan), not by the certificate's answer.
  for_each = toset([var.api_domain_name])

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

resource "aws_acm_certificate_validation" "api" {
  certificate_arn         = aws_acm_certificate.api.arn
  validation_record_fqdns = [for r in aws_route53_record.api_validation : r.fqdn]
}

data "aws_cloudfront_cache_policy" "disabled" {
  name = "Managed-CachingDisabled"
}

data "aws_cloudfront_origin_request_policy" "all_viewer_except_host" {
  name = "Managed-AllViewerExceptHostHeader"
}

data "aws_cloudfront_response_headers_policy" "security_headers" {
  name = "Managed-SecurityHeadersPolicy"
}

resource "aws_cloudfront_distribution" "api" {
  #checkov:skip=CKV_AWS_86:Every request is logged by WAF (waf.tf, full request metadata, Authorization redacted) and by each regional API's access log; CloudFront standard logs would be a third copy in an S3 bucket of their own.
  #checkov:skip=CKV_AWS_310:Origin groups fail over only GET, HEAD and OPTIONS; failover for every method is Route 53's: the origin name is latency records with health checks over the regions.
  #checkov:skip=CKV_AWS_305:An API, not a website: there is no root object to serve.
  #checkov:skip=CKV2_AWS_47:The Log4j protection this check is about is AWSManagedRulesKnownBadInputsRuleSet, which the web ACL has (waf.tf); the check also demands AWSManagedRulesAnonymousIpList, which blocks customers behind VPNs and proxies: a business decision, not a default.
  #checkov:skip=CKV_AWS_374:A commerce API sells wherever it ships; country restrictions are a business decision, not a default.
  enabled         = true
  comment         = "${var.name_prefix} API: WAF in front of the regional HTTP APIs"
  aliases         = [var.api_domain_name]
  price_class     = var.price_class
  http_version    = "http2and3"
  is_ipv6_enabled = true
  web_acl_id      = aws_wafv2_web_acl.api.arn

  origin {
    origin_id   = "regional-apis"
    domain_name = var.origin_domain

    custom_origin_config {
      http_port              = 80
      https_port             = 443
      origin_protocol_policy = "https-only"
      origin_ssl_protocols   = ["TLSv1.2"]
      origin_read_timeout    = 30
    }
  }

  default_cache_behavior {
    target_origin_id           = "regional-apis"
    viewer_protocol_policy     = "https-only"
    allowed_methods            = ["DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"]
    cached_methods             = ["GET", "HEAD"]
    compress                   = true
    cache_policy_id            = data.aws_cloudfront_cache_policy.disabled.id
    origin_request_policy_id   = data.aws_cloudfront_origin_request_policy.all_viewer_except_host.id
    response_headers_policy_id = data.aws_cloudfront_response_headers_policy.security_headers.id
  }

  restrictions {
    geo_restriction {
      restriction_type = "none"
    }
  }

  viewer_certificate {
    acm_certificate_arn      = aws_acm_certificate_validation.api.certificate_arn
    ssl_support_method       = "sni-only"
    minimum_protocol_version = "TLSv1.2_2021"
  }
}

resource "aws_route53_record" "api" {
  for_each = toset(["A", "AAAA"])

  zone_id = var.hosted_zone_id
  name    = var.api_domain_name
  type    = each.key

  alias {
    name                   = aws_cloudfront_distribution.api.domain_name
    zone_id                = aws_cloudfront_distribution.api.hosted_zone_id
    evaluate_target_health = false
  }
}
