terraform {
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # State lives in S3 with native locking; pass the bucket at init time so no account
  # detail is committed:
  #   terraform init -backend-config="bucket=<state-bucket>" -backend-config="key=commerce/terraform.tfstate" \
  #     -backend-config="region=<region>" -backend-config="use_lockfile=true"
  backend "s3" {}
}
