# Event-source mappings from the declaration: table streams (the outbox relay), Kinesis
# streams (the fraud scorer) and SQS queues (consumers), each reporting partial batch
# failures. Stream mappings bound retries and record age, bisect failing batches and send
# what they give up on to an on-failure queue.
#
# Table streams: with global tables every replica's stream carries every write, wherever
# it was made, so a relay in each region would publish each outbox item once per region.
# Only the home region's table-stream mappings are enabled; a standby region's are created
# disabled and switched on when it becomes the home region. They start at TRIM_HORIZON:
# whatever the old home had not published yet is published then (consumers dedupe by
# event_id).

locals {
  mappings = merge([
    for fn, spec in local.functions : {
      for i, source in try(spec.event_sources, []) : "${fn}#${i}" => merge(source, { function = fn })
    }
  ]...)
}

resource "aws_lambda_event_source_mapping" "this" {
  for_each = local.mappings

  function_name = aws_lambda_function.this[each.value.function].arn
  event_source_arn = (
    try(each.value.table_stream, null) != null ? var.tables[each.value.table_stream].stream_arn :
    try(each.value.kinesis_stream, null) != null ? aws_kinesis_stream.this[each.value.kinesis_stream].arn :
    aws_sqs_queue.this[each.value.queue].arn
  )
  enabled                            = try(each.value.table_stream, null) == null || local.is_home
  batch_size                         = try(each.value.batch_size, 10)
  maximum_batching_window_in_seconds = try(each.value.batching_window_s, 0)
  function_response_types            = ["ReportBatchItemFailures"]

  # Streams only: where to start, bounded retries and record age, bisect, failure record.
  starting_position              = try(each.value.starting_position, null)
  maximum_retry_attempts         = try(each.value.maximum_retry_attempts, null)
  maximum_record_age_in_seconds  = try(each.value.maximum_record_age_s, null)
  bisect_batch_on_function_error = try(each.value.bisect_on_error, null)
  parallelization_factor         = try(each.value.parallelization_factor, null)

  dynamic "destination_config" {
    for_each = try(each.value.on_failure_queue, null) == null ? [] : [each.value.on_failure_queue]
    content {
      on_failure {
        destination_arn = aws_sqs_queue.this[destination_config.value].arn
      }
    }
  }
}
