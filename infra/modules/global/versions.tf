terraform {
  required_providers {
    aws = {
      source                = "hashicorp/aws"
      version               = "~> 6.37"
      configuration_aliases = [aws.secondary, aws.third]
    }
  }
}
