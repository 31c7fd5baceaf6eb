output "distribution_id" {
  value = aws_cloudfront_distribution.api.id
}

output "web_acl_arn" {
  value = aws_wafv2_web_acl.api.arn
}
