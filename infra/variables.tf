variable "name_prefix" {
  description = "Prefix of every resource name (tables become <prefix>-<table>, the bus <prefix>)."
  type        = string
  default     = "commerce"
}

variable "regions" {
  description = <<-EOT
    Where the system runs. primary: the first region; it holds the global pieces (the
    tables' primary replicas and KMS keys, the Cognito user pool, the EventBridge global
    endpoint). secondary: the second full regional stack, the other half of the event bus
    failover pair. third: optional third full regional stack (another table replica and
    API behind the latency records). MRSC would need three regions (or two and a witness);
    this design uses MREC with home-region writes (README.md), so two are enough.
  EOT
  type = object({
    primary   = string
    secondary = optional(string)
    third     = optional(string)
  })
  default = {
    primary = "eu-west-1"
  }

  validation {
    condition = length(compact([var.regions.primary, var.regions.secondary, var.regions.third])) == length(distinct(compact([
      var.regions.primary, var.regions.secondary, var.regions.third
    ])))
    error_message = "regions.primary, regions.secondary and regions.third must be different regions."
  }
  validation {
    condition     = var.regions.third == null || var.regions.secondary != null
    error_message = "Set regions.secondary before regions.third."
  }
}

variable "home_region" {
  description = "The region that takes every write to the home-written tables (home_written_tables) and runs the event pipeline (outbox relay, rules, saga). null: regions.primary. Changing it is the failover step (README.md)."
  type        = string
  default     = null

  validation {
    condition     = var.home_region == null || contains(compact([var.regions.primary, var.regions.secondary]), coalesce(var.home_region, "-"))
    error_message = "home_region must be regions.primary or regions.secondary: only they share the EventBridge global endpoint, whose replication keeps both archives complete."
  }
}

variable "home_written_tables" {
  description = "Tables whose writes must all happen in the home region (conditional writes and transactions are only correct against one replica). Routes of functions that write them are served by the home region from every region. idempotency: a key claimed in one region must be seen by a retry that lands in another."
  type        = list(string)
  default     = ["orders", "inventory", "payments", "idempotency"]
}

variable "lambda_artifacts_dir" {
  description = "Where `make build` leaves target/lambda/<lambda.package>/bootstrap.zip, the one zip every function runs."
  type        = string
  default     = "../target/lambda"
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency of every function without its own `reserved_concurrency` in the declaration (-1, the default: none reserved). Opt in only with the quota arithmetic of infra/README.md, \"Concurrency\": the sum of the reservations plus 100 must not exceed the account's concurrency quota in any region."
  type        = number
  default     = -1

  validation {
    condition     = var.lambda_reserved_concurrency == -1 || var.lambda_reserved_concurrency >= 1
    error_message = "lambda_reserved_concurrency is -1 (no reservation) or at least 1 (0 would stop every function)."
  }
}

variable "jwt_issuer" {
  description = "Override of the JWT authorizers' issuer. null: the Cognito user pool created here (https://cognito-idp.<primary>.amazonaws.com/<pool id>)."
  type        = string
  default     = null
}

variable "jwt_audience" {
  description = "Override of the accepted audiences (app client ids). null: the app client created here."
  type        = list(string)
  default     = null
}

variable "log_retention_days" {
  description = "Retention of every function's, state machine's, API's and WAF's log group."
  type        = number
  default     = 30
}

variable "event_archive_retention_days" {
  description = "Retention of the bus archive (0: forever). null: bus.archive_retention_days of the declaration."
  type        = number
  default     = null
}

variable "api_domain_name" {
  description = "Public name of the API (CloudFront + WAF), e.g. api.example.com. Also derived: origin.<it> (latency records over the regional APIs) and <region>.<it> (each regional API)."
  type        = string
}

variable "hosted_zone_id" {
  description = "Route 53 public hosted zone that holds api_domain_name (certificate validation, latency records, aliases)."
  type        = string
}

variable "api_throttling_rate_limit" {
  description = "Steady-state requests per second of each regional API stage, per route."
  type        = number
  default     = 100
}

variable "api_throttling_burst_limit" {
  description = "Burst of each regional API stage, per route."
  type        = number
  default     = 200
}

variable "api_health_5xx_threshold" {
  description = "5xx answers per minute of the health route (and, for the alarm only, of the whole regional API), three minutes in a row, that make a region unhealthy and take it out of the latency records."
  type        = number
  default     = 20
}

variable "api_health_route" {
  description = "The declared route whose 5xx answers decide a region's health: a read served locally in every region that goes through the authorizer, Lambda and the local table replica."
  type        = string
  default     = "GET /products"
}

variable "waf_rate_limit" {
  description = "Requests per client IP per 5 minutes above which WAF blocks the IP."
  type        = number
  default     = 2000
}

variable "cloudfront_price_class" {
  description = "CloudFront price class (PriceClass_100: North America and Europe edges only, cheapest)."
  type        = string
  default     = "PriceClass_100"
}

variable "alarm_email" {
  description = "Address subscribed to every region's alarm topic (null: no subscription; subscribe something else to the topics)."
  type        = string
  default     = null
}

variable "iterator_age_alarm_ms" {
  description = "Iterator age (ms) of a stream mapping above which its alarm fires."
  type        = number
  default     = 60000
}

variable "event_endpoint_treat_missing_data" {
  description = "How the global endpoint's health alarm treats missing data: breaching (AWS's prescriptive template: silence fails over, which is harmless with replication on) or notBreaching."
  type        = string
  default     = "breaching"
}

variable "state_machine_template_vars" {
  description = "Overrides of the state machine definitions' template parameters (the declaration's state_machines.<name>.parameters.<p>.aws), e.g. { retry_interval_seconds = 5 }."
  type        = map(any)
  default     = {}
}
