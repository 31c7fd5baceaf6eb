variable "declaration" {
  description = "infra/declaration.json, decoded."
  type        = any
}

variable "name_prefix" {
  type = string
}

variable "regions" {
  description = "primary (where this module's default provider points), optional secondary and third (the aws.secondary and aws.third providers)."
  type = object({
    primary   = string
    secondary = optional(string)
    third     = optional(string)
  })
}

variable "pitr_recovery_period_days" {
  description = "How far back point-in-time recovery reaches (1 to 35 days)."
  type        = number
  default     = 35
}
