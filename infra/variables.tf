variable "name_prefix" {
  description = "Prefix of every resource name (tables become <prefix>-<table>)."
  type        = string
  default     = "commerce"
}

variable "primary_region" {
  description = "Region of the first regional stack."
  type        = string
  default     = "eu-west-1"
}

variable "lambda_architecture" {
  description = "arm64 (Graviton, cheaper per ms) or x86_64; must match how `make build` built the zips."
  type        = string
  default     = "arm64"
  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture must be arm64 or x86_64."
  }
}

variable "lambda_artifacts_dir" {
  description = "Where `make build` leaves target/lambda/<function>/bootstrap.zip."
  type        = string
  default     = "../target/lambda"
}

variable "jwt_issuer" {
  description = "Issuer URL of the JWT authorizer (the Cognito user pool's, https://cognito-idp.<region>.amazonaws.com/<pool id>)."
  type        = string
}

variable "jwt_audience" {
  description = "Accepted audiences (the Cognito app client ids)."
  type        = list(string)
}

variable "log_retention_days" {
  description = "Retention of every function's and the API's log group."
  type        = number
  default     = 30
}
