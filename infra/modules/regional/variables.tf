variable "declaration" {
  description = "infra/declaration.json, decoded: tables, functions, routes and what each function may touch."
  type        = any
}

variable "name_prefix" {
  type = string
}

variable "region" {
  description = "The region of this stack (the region of the provider passed in)."
  type        = string
}

variable "primary_region" {
  description = "The deployment's primary region: its stack owns what all regions share (the origin name's certificate validation record)."
  type        = string
}

variable "home_region" {
  description = "The region that writes the home-written tables and runs the event pipeline."
  type        = string
}

variable "home_api_domain" {
  description = "The home region's own API name (<home region>.<api domain>): where this region forwards routes that write home-written tables."
  type        = string
}

variable "home_written_tables" {
  description = "Tables written only in the home region."
  type        = list(string)
}

variable "tables" {
  description = "Table -> {name, arn, stream_arn} of this region's replica of each global table."
  type = map(object({
    name       = string
    arn        = string
    stream_arn = string
  }))
}

variable "table_key_arn" {
  description = "The tables' KMS key (multi-Region primary or replica) in this region."
  type        = string
}

variable "lambda_artifacts_dir" {
  type = string
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of functions without `reserved_concurrency` in the declaration (-1: none)."
  type        = number
}

variable "jwt_issuer" {
  type = string
}

variable "jwt_audience" {
  type = list(string)
}

variable "log_retention_days" {
  type = number
}

variable "event_archive_retention_days" {
  description = "null: bus.archive_retention_days of the declaration."
  type        = number
  default     = null
}

variable "regional_domain" {
  description = "This region's own API name, <region>.<api domain>."
  type        = string
}

variable "origin_domain" {
  description = "The latency-routed name over every regional API (CloudFront's origin)."
  type        = string
}

variable "hosted_zone_id" {
  type = string
}

variable "api_throttling_rate_limit" {
  type = number
}

variable "api_throttling_burst_limit" {
  type = number
}

variable "api_health_5xx_threshold" {
  type = number
}

variable "api_health_route" {
  description = "The route whose 5xx answers decide the region's health."
  type        = string
}

variable "alarm_email" {
  type    = string
  default = null
}

variable "iterator_age_alarm_ms" {
  type = number
}

variable "state_machines_dir" {
  description = "Directory of the state machine definitions, <name>.asl.json."
  type        = string
}

variable "state_machine_template_vars" {
  type    = map(any)
  default = {}
}
