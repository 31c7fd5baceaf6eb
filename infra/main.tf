# The root module. Everything the system is made of comes from declaration.json, the file
# the local stack provisions from too, so local and AWS cannot drift apart.
#
#   modules/global    once, in the primary region: DynamoDB global tables (a replica in every
#                     region), their multi-Region KMS key, the Cognito user pool
#   modules/regional  once per region: functions, HTTP API (custom domain, latency record,
#                     health check), bus, queues, mappings, alarms, state machines, streams
#   modules/edge      once, in us-east-1: CloudFront + WAF in front of the regional APIs
#   event_endpoint.tf the EventBridge global endpoint over the primary and secondary buses

locals {
  declaration = jsondecode(file("${path.module}/declaration.json"))

  region_list = compact([var.regions.primary, var.regions.secondary, var.regions.third])
  home_region = coalesce(var.home_region, var.regions.primary)

  jwt_issuer   = coalesce(var.jwt_issuer, module.global.jwt_issuer)
  jwt_audience = var.jwt_audience != null ? var.jwt_audience : module.global.jwt_audience

  # api.example.com -> CloudFront; origin.api.example.com -> latency records over the
  # regional APIs; <region>.api.example.com -> one regional API (health checks, proxying
  # writes to the home region).
  origin_domain    = "origin.${var.api_domain_name}"
  regional_domains = { for r in local.region_list : r => "${r}.${var.api_domain_name}" }

  # What every regional stack shares.
  regional_common = {
    declaration                  = local.declaration
    name_prefix                  = var.name_prefix
    primary_region               = var.regions.primary
    home_region                  = local.home_region
    home_api_domain              = local.regional_domains[local.home_region]
    home_written_tables          = var.home_written_tables
    lambda_artifacts_dir         = abspath("${path.module}/${var.lambda_artifacts_dir}")
    lambda_reserved_concurrency  = var.lambda_reserved_concurrency
    jwt_issuer                   = local.jwt_issuer
    jwt_audience                 = local.jwt_audience
    log_retention_days           = var.log_retention_days
    event_archive_retention_days = var.event_archive_retention_days
    origin_domain                = local.origin_domain
    hosted_zone_id               = var.hosted_zone_id
    api_throttling_rate_limit    = var.api_throttling_rate_limit
    api_throttling_burst_limit   = var.api_throttling_burst_limit
    api_health_5xx_threshold     = var.api_health_5xx_threshold
    api_health_route             = var.api_health_route
    alarm_email                  = var.alarm_email
    iterator_age_alarm_ms        = var.iterator_age_alarm_ms
    state_machines_dir           = abspath("${path.module}/state-machines")
    state_machine_template_vars  = var.state_machine_template_vars
  }
}

module "global" {
  source = "./modules/global"
  providers = {
    aws           = aws.primary
    aws.secondary = aws.secondary
    aws.third     = aws.third
  }

  declaration = local.declaration
  name_prefix = var.name_prefix
  regions     = var.regions
}

module "primary" {
  source = "./modules/regional"
  providers = {
    aws = aws.primary
  }

  region          = var.regions.primary
  regional_domain = local.regional_domains[var.regions.primary]
  tables          = module.global.tables_by_region[var.regions.primary]
  table_key_arn   = module.global.table_key_arns[var.regions.primary]

  declaration                  = local.regional_common.declaration
  name_prefix                  = local.regional_common.name_prefix
  primary_region               = local.regional_common.primary_region
  home_region                  = local.regional_common.home_region
  home_api_domain              = local.regional_common.home_api_domain
  home_written_tables          = local.regional_common.home_written_tables
  lambda_artifacts_dir         = local.regional_common.lambda_artifacts_dir
  lambda_reserved_concurrency  = local.regional_common.lambda_reserved_concurrency
  jwt_issuer                   = local.regional_common.jwt_issuer
  jwt_audience                 = local.regional_common.jwt_audience
  log_retention_days           = local.regional_common.log_retention_days
  event_archive_retention_days = local.regional_common.event_archive_retention_days
  origin_domain                = local.regional_common.origin_domain
  hosted_zone_id               = local.regional_common.hosted_zone_id
  api_throttling_rate_limit    = local.regional_common.api_throttling_rate_limit
  api_throttling_burst_limit   = local.regional_common.api_throttling_burst_limit
  api_health_5xx_threshold     = local.regional_common.api_health_5xx_threshold
  api_health_route             = local.regional_common.api_health_route
  alarm_email                  = local.regional_common.alarm_email
  iterator_age_alarm_ms        = local.regional_common.iterator_age_alarm_ms
  state_machines_dir           = local.regional_common.state_machines_dir
  state_machine_template_vars  = local.regional_common.state_machine_template_vars
}

module "secondary" {
  source = "./modules/regional"
  count  = var.regions.secondary == null ? 0 : 1
  providers = {
    aws = aws.secondary
  }

  region          = var.regions.secondary
  regional_domain = local.regional_domains[var.regions.secondary]
  tables          = module.global.tables_by_region[var.regions.secondary]
  table_key_arn   = module.global.table_key_arns[var.regions.secondary]

  declaration                  = local.regional_common.declaration
  name_prefix                  = local.regional_common.name_prefix
  primary_region               = local.regional_common.primary_region
  home_region                  = local.regional_common.home_region
  home_api_domain              = local.regional_common.home_api_domain
  home_written_tables          = local.regional_common.home_written_tables
  lambda_artifacts_dir         = local.regional_common.lambda_artifacts_dir
  lambda_reserved_concurrency  = local.regional_common.lambda_reserved_concurrency
  jwt_issuer                   = local.regional_common.jwt_issuer
  jwt_audience                 = local.regional_common.jwt_audience
  log_retention_days           = local.regional_common.log_retention_days
  event_archive_retention_days = local.regional_common.event_archive_retention_days
  origin_domain                = local.regional_common.origin_domain
  hosted_zone_id               = local.regional_common.hosted_zone_id
  api_throttling_rate_limit    = local.regional_common.api_throttling_rate_limit
  api_throttling_burst_limit   = local.regional_common.api_throttling_burst_limit
  api_health_5xx_threshold     = local.regional_common.api_health_5xx_threshold
  api_health_route             = local.regional_common.api_health_route
  alarm_email                  = local.regional_common.alarm_email
  iterator_age_alarm_ms        = local.regional_common.iterator_age_alarm_ms
  state_machines_dir           = local.regional_common.state_machines_dir
  state_machine_template_vars  = local.regional_common.state_machine_template_vars
}

module "third" {
  source = "./modules/regional"
  count  = var.regions.third == null ? 0 : 1
  providers = {
    aws = aws.third
  }

  region          = var.regions.third
  regional_domain = local.regional_domains[var.regions.third]
  tables          = module.global.tables_by_region[var.regions.third]
  table_key_arn   = module.global.table_key_arns[var.regions.third]

  declaration                  = local.regional_common.declaration
  name_prefix                  = local.regional_common.name_prefix
  primary_region               = local.regional_common.primary_region
  home_region                  = local.regional_common.home_region
  home_api_domain              = local.regional_common.home_api_domain
  home_written_tables          = local.regional_common.home_written_tables
  lambda_artifacts_dir         = local.regional_common.lambda_artifacts_dir
  lambda_reserved_concurrency  = local.regional_common.lambda_reserved_concurrency
  jwt_issuer                   = local.regional_common.jwt_issuer
  jwt_audience                 = local.regional_common.jwt_audience
  log_retention_days           = local.regional_common.log_retention_days
  event_archive_retention_days = local.regional_common.event_archive_retention_days
  origin_domain                = local.regional_common.origin_domain
  hosted_zone_id               = local.regional_common.hosted_zone_id
  api_throttling_rate_limit    = local.regional_common.api_throttling_rate_limit
  api_throttling_burst_limit   = local.regional_common.api_throttling_burst_limit
  api_health_5xx_threshold     = local.regional_common.api_health_5xx_threshold
  api_health_route             = local.regional_common.api_health_route
  alarm_email                  = local.regional_common.alarm_email
  iterator_age_alarm_ms        = local.regional_common.iterator_age_alarm_ms
  state_machines_dir           = local.regional_common.state_machines_dir
  state_machine_template_vars  = local.regional_common.state_machine_template_vars
}

module "edge" {
  source = "./modules/edge"
  providers = {
    aws = aws.edge
  }

  name_prefix        = var.name_prefix
  api_domain_name    = var.api_domain_name
  origin_domain      = local.origin_domain
  hosted_zone_id     = var.hosted_zone_id
  waf_rate_limit     = var.waf_rate_limit
  price_class        = var.cloudfront_price_class
  log_retention_days = var.log_retention_days
}

# The tables used to be resources of the primary regional stack; they are global now.
moved {
  from = module.primary.aws_dynamodb_table.this
  to   = module.global.aws_dynamodb_table.this
}
