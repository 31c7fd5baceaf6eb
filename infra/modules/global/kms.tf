# One customer-managed, multi-Region KMS key for the tables: the primary key here, a replica
# key (same key material and id, its own policy) in every other region, so each table
# replica is encrypted by a key in its own region and a region can decrypt its replica
# without calling another region.

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"

  # The account administers the key and delegates its use to IAM policies: each function's
  # role is allowed to use it only through DynamoDB (kms:ViaService), only for the tables
  # it touches (modules/regional/functions.tf).
  tables_key_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid       = "AccountAdministersAndDelegatesToIam"
        Effect    = "Allow"
        Principal = { AWS = local.account_root }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "DynamoDbDescribesTheKey"
        Effect    = "Allow"
        Principal = { Service = "dynamodb.amazonaws.com" }
        Action    = ["kms:Describe*", "kms:Get*", "kms:List*"]
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_key" "tables" {
  description             = "${var.name_prefix}: DynamoDB global tables (multi-Region primary key)"
  multi_region            = true
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = local.tables_key_policy
}

resource "aws_kms_alias" "tables" {
  name          = "alias/${var.name_prefix}-tables"
  target_key_id = aws_kms_key.tables.key_id
}

resource "aws_kms_replica_key" "secondary" {
  provider = aws.secondary
  count    = var.regions.secondary == null ? 0 : 1

  description             = "${var.name_prefix}: DynamoDB global tables (replica of the multi-Region key)"
  primary_key_arn         = aws_kms_key.tables.arn
  deletion_window_in_days = 30
  policy                  = local.tables_key_policy
}

resource "aws_kms_alias" "tables_secondary" {
  provider = aws.secondary
  count    = var.regions.secondary == null ? 0 : 1

  name          = "alias/${var.name_prefix}-tables"
  target_key_id = aws_kms_replica_key.secondary[0].key_id
}

resource "aws_kms_replica_key" "third" {
  provider = aws.third
  count    = var.regions.third == null ? 0 : 1

  description             = "${var.name_prefix}: DynamoDB global tables (replica of the multi-Region key)"
  primary_key_arn         = aws_kms_key.tables.arn
  deletion_window_in_days = 30
  policy                  = local.tables_key_policy
}

resource "aws_kms_alias" "tables_third" {
  provider = aws.third
  count    = var.regions.third == null ? 0 : 1

  name          = "alias/${var.name_prefix}-tables"
  target_key_id = aws_kms_replica_key.third[0].key_id
}

locals {
  # Region -> the tables' key in that region.
  table_key_arns = merge(
    { (var.regions.primary) = aws_kms_key.tables.arn },
    var.regions.secondary == null ? {} : { (var.regions.secondary) = aws_kms_replica_key.secondary[0].arn },
    var.regions.third == null ? {} : { (var.regions.third) = aws_kms_replica_key.third[0].arn },
  )
}
