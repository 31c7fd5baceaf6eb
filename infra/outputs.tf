output "api_url" {
  description = "The public API: CloudFront + WAF, in front of the regional APIs."
  value       = "https://${var.api_domain_name}"
}

output "regional_api_urls" {
  description = "Each regional API by its own name (bypasses CloudFront and WAF: operators and health checks only)."
  value       = { for region, domain in local.regional_domains : region => "https://${domain}" }
}

output "home_region" {
  description = "The region that takes the writes of the home-written tables and runs the event pipeline."
  value       = local.home_region
}

output "cognito_user_pool_id" {
  value = module.global.user_pool_id
}

output "cognito_app_client_id" {
  value = module.global.app_client_id
}

output "jwt_issuer" {
  value = local.jwt_issuer
}

output "event_endpoint_url" {
  description = "URL of the EventBridge global endpoint (null with a single region); its EndpointId for PutEvents is the host part before .endpoint.events.amazonaws.com."
  value       = local.event_endpoint_enabled ? aws_cloudwatch_event_endpoint.commerce[0].endpoint_url : null
}

output "table_names" {
  value = { for name, t in module.global.tables_by_region[var.regions.primary] : name => t.name }
}

output "promotion" {
  description = "Per region, the identifiers the failover runbook (README.md) needs to promote it to home without Terraform."
  value = merge(
    { (var.regions.primary) = module.primary.promotion },
    var.regions.secondary == null ? {} : { (var.regions.secondary) = module.secondary[0].promotion },
    var.regions.third == null ? {} : { (var.regions.third) = module.third[0].promotion },
  )
}
