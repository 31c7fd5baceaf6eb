# One table per service, as declared, as a DynamoDB global table (version 2019.11.21): the
# table in the primary region and a replica in every other region, each encrypted with the
# tables' multi-Region key in its region, with point-in-time recovery and deletion
# protection. Consistency is multi-Region eventual (MREC), the only mode that supports the
# transactions and TTL this code relies on; conditional writes stay correct because the
# tables in var.home_written_tables are only written in the home region (README.md).

locals {
  replica_regions = { for region, key in local.table_key_arns : region => key if region != var.regions.primary }
}

resource "aws_dynamodb_table" "this" {
  for_each = var.declaration.tables

  name         = "${var.name_prefix}-${each.key}"
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = each.value.hash_key
  range_key    = try(each.value.range_key, null)

  dynamic "attribute" {
    for_each = each.value.attributes
    content {
      name = attribute.key
      type = attribute.value
    }
  }

  dynamic "global_secondary_index" {
    for_each = try(each.value.global_secondary_indexes, [])
    content {
      name            = global_secondary_index.value.name
      projection_type = try(global_secondary_index.value.projection, "ALL")

      # key_schema, not the index's hash_key/range_key (deprecated in provider 6.29; the
      # fixes up to 6.37 for dynamic blocks, range keys and index removal set the floor).
      key_schema {
        attribute_name = global_secondary_index.value.hash_key
        key_type       = "HASH"
      }
      dynamic "key_schema" {
        for_each = try(global_secondary_index.value.range_key, null) == null ? [] : [global_secondary_index.value.range_key]
        content {
          attribute_name = key_schema.value
          key_type       = "RANGE"
        }
      }
    }
  }

  # Global tables replicate through the table's stream and need it with new and old
  # images, on every table, even before a second region exists (switching the view type
  # later replaces the stream and every mapping on it). A declared `stream` (NEW_IMAGE for
  # the outbox relay) is a subset of this.
  stream_enabled   = true
  stream_view_type = "NEW_AND_OLD_IMAGES"

  dynamic "ttl" {
    for_each = try(each.value.ttl_attribute, null) == null ? [] : [each.value.ttl_attribute]
    content {
      attribute_name = ttl.value
      enabled        = true
    }
  }

  point_in_time_recovery {
    enabled                 = true
    recovery_period_in_days = var.pitr_recovery_period_days
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.tables.arn
  }

  deletion_protection_enabled = true

  dynamic "replica" {
    for_each = local.replica_regions
    content {
      region_name                 = replica.key
      kms_key_arn                 = replica.value
      point_in_time_recovery      = true
      deletion_protection_enabled = true # provider 6.x
      propagate_tags              = true
    }
  }
}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  # Region -> table -> what a regional stack needs: the name (the same everywhere), the
  # ARN of that region's replica (for IAM) and its stream.
  tables_by_region = {
    for region in keys(local.table_key_arns) : region => {
      for name, table in aws_dynamodb_table.this : name => {
        name = table.name
        arn  = "arn:${local.partition}:dynamodb:${region}:${local.account_id}:table/${table.name}"
        stream_arn = (
          region == var.regions.primary
          ? table.stream_arn
          : one([for r in table.replica : r.stream_arn if r.region_name == region])
        )
      }
    }
  }
}
