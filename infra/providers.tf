# One provider configuration per region. Terraform cannot create provider configurations
# from a variable, so there is one alias per slot of var.regions; an unused slot points at
# the primary region and no resource uses it (every resource of a slot is counted by it).

locals {
  default_tags = {
    project = "serverless-commerce"
    managed = "terraform"
  }
}

provider "aws" {
  alias  = "primary"
  region = var.regions.primary

  default_tags {
    tags = local.default_tags
  }
}

provider "aws" {
  alias  = "secondary"
  region = coalesce(var.regions.secondary, var.regions.primary)

  default_tags {
    tags = local.default_tags
  }
}

provider "aws" {
  alias  = "third"
  region = coalesce(var.regions.third, var.regions.primary)

  default_tags {
    tags = local.default_tags
  }
}

# CloudFront's certificate and a CLOUDFRONT-scope WAF web ACL must live in us-east-1.
provider "aws" {
  alias  = "edge"
  region = "us-east-1"

  default_tags {
    tags = local.default_tags
  }
}
