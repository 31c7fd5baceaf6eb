# Kinesis data streams from the declaration's `streams` section, e.g.
#   "streams": { "transactions": { "env": "TRANSACTIONS_STREAM", "shards": 1, "retention_hours": 24 } }
# With `shards` the stream is PROVISIONED with that many shards, without it ON_DEMAND
# (`mode` overrides either). Every stream is encrypted with the regional key.
# Functions that write a stream list it in `kinesis_put` (functions.tf); a consumer reads it
# through an event source {"kinesis_stream": "transactions", "starting_position": "LATEST",
# "maximum_retry_attempts": ..., "maximum_record_age_s": ..., "bisect_on_error": true,
# "on_failure_queue": ...} (mappings.tf).

locals {
  streams = try(var.declaration.streams, {})
  stream_modes = {
    for name, spec in local.streams : name => try(spec.mode, can(spec.shards) ? "PROVISIONED" : "ON_DEMAND")
  }
}

resource "aws_kinesis_stream" "this" {
  for_each = local.streams

  name             = "${var.name_prefix}-${each.key}"
  retention_period = try(each.value.retention_hours, 24)
  shard_count      = local.stream_modes[each.key] == "PROVISIONED" ? try(each.value.shards, 1) : null
  encryption_type  = "KMS"
  kms_key_id       = aws_kms_key.regional.arn

  stream_mode_details {
    stream_mode = local.stream_modes[each.key]
  }
}
