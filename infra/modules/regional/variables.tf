variable "declaration" {
  description = "infra/declaration.json, decoded: tables, functions, routes and what each function may touch."
  type        = any
}

variable "name_prefix" {
  type = string
}

variable "lambda_architecture" {
  type = string
}

variable "lambda_artifacts_dir" {
  type = string
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
