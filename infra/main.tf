# The root module. Everything the system is made of comes from declaration.json, the file
# the local stack provisions from too, so local and AWS cannot drift apart.

locals {
  declaration = jsondecode(file("${path.module}/declaration.json"))
}

provider "aws" {
  alias  = "primary"
  region = var.primary_region

  default_tags {
    tags = {
      project = "serverless-commerce"
      managed = "terraform"
    }
  }
}

module "primary" {
  source = "./modules/regional"
  providers = {
    aws = aws.primary
  }

  declaration          = local.declaration
  name_prefix          = var.name_prefix
  lambda_architecture  = var.lambda_architecture
  lambda_artifacts_dir = abspath("${path.module}/${var.lambda_artifacts_dir}")
  jwt_issuer           = var.jwt_issuer
  jwt_audience         = var.jwt_audience
  log_retention_days   = var.log_retention_days
}

output "api_endpoint" {
  description = "Base URL of the primary region's HTTP API."
  value       = module.primary.api_endpoint
}
