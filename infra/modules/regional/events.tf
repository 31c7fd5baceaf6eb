# The commerce bus, its archive, and every consumer's queue: rule -> SQS queue (with a
# dead-letter queue) -> Lambda, so a slow or failing consumer never loses events.
#
# Every region has the bus (same name: the EventBridge global endpoint needs it) and its
# archive, which also keeps what the endpoint replicates from the other region. Only the
# home region's rules are enabled: each event is processed once, where the writes happen.
# A standby region's rules are switched on when it becomes the home region (README.md,
# "Failover").

locals {
  bus_name = var.name_prefix
  queues   = try(var.declaration.queues, {})
  # Where the bus puts an event it could not deliver to a rule's queue (declaration: bus).
  bus_dlq = var.declaration.bus.dead_letter_queue
  dlq_queues = {
    for name, spec in local.queues : name => spec if try(spec.dlq, true)
  }
}

resource "aws_cloudwatch_event_bus" "commerce" {
  name = local.bus_name
}

resource "aws_cloudwatch_event_archive" "commerce" {
  name             = "${local.bus_name}-archive"
  description      = "Every event published on the bus, for replay"
  event_source_arn = aws_cloudwatch_event_bus.commerce.arn
  retention_days   = coalesce(var.event_archive_retention_days, try(var.declaration.bus.archive_retention_days, 0))
}

resource "aws_sqs_queue" "dlq" {
  for_each = local.dlq_queues

  name                              = "${var.name_prefix}-${each.key}-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.regional.arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sqs_queue" "this" {
  for_each = local.queues

  name                              = "${var.name_prefix}-${each.key}"
  visibility_timeout_seconds        = try(each.value.visibility_timeout_s, 30)
  message_retention_seconds         = try(each.value.message_retention_s, 345600)
  kms_master_key_id                 = aws_kms_key.regional.arn
  kms_data_key_reuse_period_seconds = 300

  redrive_policy = try(each.value.dlq, true) ? jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = try(each.value.max_receive_count, 5)
  }) : null
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each = local.dlq_queues

  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.this[each.key].arn]
  })
}

resource "aws_cloudwatch_event_rule" "this" {
  for_each = try(var.declaration.rules, {})

  name           = "${local.bus_name}-${each.key}"
  description    = each.value.description
  event_bus_name = aws_cloudwatch_event_bus.commerce.name
  event_pattern  = jsonencode(each.value.event_pattern)
  state          = local.is_home ? "ENABLED" : "DISABLED"
}

resource "aws_cloudwatch_event_target" "this" {
  for_each = try(var.declaration.rules, {})

  rule           = aws_cloudwatch_event_rule.this[each.key].name
  event_bus_name = aws_cloudwatch_event_bus.commerce.name
  target_id      = "queue"
  arn            = aws_sqs_queue.this[each.value.queue].arn

  # A delivery that keeps failing (the queue's key disabled, the queue policy broken) is
  # retried with backoff within these bounds, then kept in the bus's dead-letter queue
  # rather than dropped: its outbox item is already marked published, so nothing else
  # would send it again. `commerce-ops redeliver` sends it on once the cause is mended.
  retry_policy {
    maximum_event_age_in_seconds = var.declaration.bus.target_retry.maximum_event_age_s
    maximum_retry_attempts       = var.declaration.bus.target_retry.maximum_retry_attempts
  }

  dead_letter_config {
    arn = aws_sqs_queue.this[local.bus_dlq].arn
  }
}

# Each rule's queue accepts messages from that rule only.
data "aws_iam_policy_document" "queue_from_rules" {
  for_each = { for q in distinct([for r in values(try(var.declaration.rules, {})) : r.queue]) : q => q }

  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this[each.key].arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for name, r in try(var.declaration.rules, {}) : aws_cloudwatch_event_rule.this[name].arn if r.queue == each.key]
    }
  }
}

# The bus's dead-letter queue accepts messages from the bus's rules only.
data "aws_iam_policy_document" "bus_dlq_from_rules" {
  statement {
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this[local.bus_dlq].arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [for name, r in try(var.declaration.rules, {}) : aws_cloudwatch_event_rule.this[name].arn]
    }
  }
}

resource "aws_sqs_queue_policy" "bus_dlq_from_rules" {
  queue_url = aws_sqs_queue.this[local.bus_dlq].id
  policy    = data.aws_iam_policy_document.bus_dlq_from_rules.json
}

resource "aws_sqs_queue_policy" "from_rules" {
  for_each = data.aws_iam_policy_document.queue_from_rules

  queue_url = aws_sqs_queue.this[each.key].id
  policy    = each.value.json
}
