variable "name_prefix" {
  type = string
}

variable "api_domain_name" {
  description = "The public API name, served by CloudFront."
  type        = string
}

variable "origin_domain" {
  description = "CloudFront's origin: the latency-routed name over the regional APIs."
  type        = string
}

variable "hosted_zone_id" {
  type = string
}

variable "waf_rate_limit" {
  description = "Requests per client IP per 5 minutes above which the IP is blocked."
  type        = number
}

variable "price_class" {
  type = string
}

variable "log_retention_days" {
  type = number
}
