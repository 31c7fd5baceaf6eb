terraform {
  # 1.11: the S3 backend's native locking (use_lockfile, below) is generally available.
  required_version = ">= 1.11.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.37"
    }
  }

  # State lives in S3 with S3-native locking (use_lockfile, no DynamoDB lock table). Nothing
  # about the account is committed: pass the bucket at init time. Keep the state bucket out
  # of the home region (or replicate it), so a regional outage does not also lock you out
  # of the state you need to fail over (README.md, "Failover"):
  #   terraform init -backend-config="bucket=<state-bucket>" -backend-config="key=commerce/terraform.tfstate" \
  #     -backend-config="region=<bucket region>" -backend-config="use_lockfile=true" -backend-config="encrypt=true"
  backend "s3" {}
}
