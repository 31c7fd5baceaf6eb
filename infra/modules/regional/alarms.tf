# Alarms of this region, all to one encrypted topic (subscribe on-call to it):
#   - a message in any dead-letter queue (the bus's included), or in a stream mapping's
#     on-failure queue
#   - any function error
#   - iterator age of every stream mapping (table streams, Kinesis): the consumer is behind
#   - any failed state machine execution
#   - the API answering 5xx (any route, forwarded writes included)
#   - the payment provider's circuit breaker opening in a payment function
# plus the health route's 5xx alarm behind the region's health check (domain.tf).

locals {
  # Queues that only ever hold failures: every DLQ, and every on-failure destination.
  failure_destinations = toset(distinct(flatten([for fn, qs in local.failure_queues : qs])))
  stream_consumers = toset([
    for key, m in local.mappings : m.function
    if try(m.table_stream, null) != null || try(m.kinesis_stream, null) != null
  ])
  alarm_actions = [aws_sns_topic.alarms.arn]
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  kms_master_key_id = aws_kms_key.regional.arn
}

resource "aws_sns_topic_subscription" "alarms_email" {
  count = var.alarm_email == null ? 0 : 1

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  for_each = aws_sqs_queue.dlq

  alarm_name          = "${var.name_prefix}-${each.key}-dlq-not-empty"
  alarm_description   = "Messages the ${each.key} consumer gave up on are waiting in ${each.value.name}: inspect, fix, redrive"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = each.value.name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "failure_queue_depth" {
  for_each = local.failure_destinations

  alarm_name          = "${var.name_prefix}-${each.key}-not-empty"
  alarm_description   = "Stream records a mapping gave up on are waiting in ${aws_sqs_queue.this[each.key].name}"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.this[each.key].name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "bus_dlq_depth" {
  alarm_name          = "${var.name_prefix}-bus-undelivered"
  alarm_description   = "Events the bus could not deliver to a rule's queue are waiting in ${aws_sqs_queue.this[local.bus_dlq].name}: mend the cause (ERROR_CODE, TARGET_ARN), then commerce-ops redeliver"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.this[local.bus_dlq].name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# An event that could not go to the dead-letter queue either (its key or policy broken too)
# is gone: the only trace is this metric.
resource "aws_cloudwatch_metric_alarm" "bus_events_lost" {
  for_each = aws_cloudwatch_event_rule.this

  alarm_name          = "${var.name_prefix}-${each.key}-events-lost"
  alarm_description   = "The bus dropped events of rule ${each.value.name}: neither its queue nor the bus's dead-letter queue took them. Find them in the archive and replay to this rule"
  namespace           = "AWS/Events"
  metric_name         = "InvocationsFailedToBeSentToDlq"
  dimensions          = { EventBusName = aws_cloudwatch_event_bus.commerce.name, RuleName = each.value.name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = aws_lambda_function.this

  alarm_name          = "${var.name_prefix}-${each.key}-errors"
  alarm_description   = "${each.value.function_name} returned errors or crashed"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = each.value.function_name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "iterator_age" {
  for_each = local.stream_consumers

  alarm_name          = "${var.name_prefix}-${each.key}-iterator-age"
  alarm_description   = "${aws_lambda_function.this[each.key].function_name} is more than ${var.iterator_age_alarm_ms} ms behind its stream"
  namespace           = "AWS/Lambda"
  metric_name         = "IteratorAge"
  dimensions          = { FunctionName = aws_lambda_function.this[each.key].function_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.iterator_age_alarm_ms
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "executions_failed" {
  for_each = aws_sfn_state_machine.this

  alarm_name          = "${var.name_prefix}-${each.key}-executions-failed"
  alarm_description   = "${each.value.name} executions failed (an error no Catch handled, a timeout or an abort)"
  namespace           = "AWS/States"
  metric_name         = "ExecutionsFailed"
  dimensions          = { StateMachineArn = each.value.arn }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "api_5xx" {
  alarm_name          = "${var.name_prefix}-api-5xx"
  alarm_description   = "The ${var.region} API answers 5xx (forwarded writes included: outside the home region, a burst here can mean the home region is down)"
  namespace           = "AWS/ApiGateway"
  metric_name         = "5xx"
  dimensions          = { ApiId = aws_apigatewayv2_api.http.id, Stage = aws_apigatewayv2_stage.default.name }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 3
  threshold           = var.api_health_5xx_threshold
  comparison_operator = "GreaterThanOrEqualToThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}

# The payment provider's circuit breaker opened in a function instance (the functions'
# `PaymentProviderCircuitOpened` metrics line, functions/payments/src/breaker.rs): orders are
# being rejected PAYMENT_UNAVAILABLE until the provider answers again.
resource "aws_cloudwatch_metric_alarm" "payment_provider_circuit" {
  for_each = toset([for name, spec in local.functions : name if contains(keys(try(spec.secrets, {})), "payment-provider")])

  alarm_name          = "${var.name_prefix}-${each.key}-payment-provider-circuit-open"
  alarm_description   = "${each.key} stopped calling the payment provider after repeated failures: check the provider's status page and the function's logs"
  namespace           = "Commerce"
  metric_name         = "PaymentProviderCircuitOpened"
  dimensions          = { Function = "${var.name_prefix}-${each.key}" }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
}
